/**
 * A real kubelet (tests/image/kubelet.ts) runs each DaemonSet's pod template,
 * read from the shipped manifest, as a static pod on a node whose host
 * network is one of the end-to-end tests' two hosts (e2e/topology.ts, with the
 * README's host setup): the processes, the profile, the limits, UDP echo
 * through real phantun to a peer on the other host, the stop, a missing
 * handoff file, AppArmor, and deploy/README.md's root variant.
 */
import assert from "node:assert/strict";
import {
  applyHostSetup,
  createTopology,
  destroyTopology,
  inNamespace,
  phantunDir,
  readmeBlock,
  type Topology,
} from "../../e2e/topology.ts";
import { superviseInNamespace } from "../../e2e/supervisor.ts";
import {
  DENO,
  missingCommand,
  tempDir,
  testWhen,
  waitFor,
} from "../helpers.ts";
import {
  capEff,
  cmd,
  ensureImage,
  exec,
  installTmpfiles,
  isFile,
  NET_ADMIN,
  ok,
  ROOT,
  tunNode,
} from "./harness.ts";
import { bytes, cgroupFile, mib } from "./limits.ts";
import {
  containerProcesses,
  MISSING_NODE,
  type Node,
  withNode,
} from "./kubelet.ts";
import {
  asPod,
  manifest,
  MISSING_VENV,
  type Mode,
  parse,
  rootVariant,
} from "./manifests.ts";

const PHANTUN = phantunDir();
const MISSING = MISSING_NODE ?? MISSING_VENV ??
  missingCommand("ip", "nft", "systemd-tmpfiles") ??
  (isFile(`${PHANTUN}/phantun_client`)
    ? null
    : `no phantun binaries in ${PHANTUN} (scripts/provision-phantun.sh)`);

/** The port of the UDP service behind each end: the manifests' 127.0.0.1:1234. */
const SERVICE = 1234;
/** README's PORT, the server's --local. */
const PORT = 4567;
/** The peer's own UDP port or service, where the manifests' is on the node. */
const PEER_UDP = 5555;

/** Registers a kubelet test: the image in Docker, a node, phantun for the peer. */
function kubeletTest(name: string, fn: () => Promise<void>): void {
  testWhen(MISSING, name, async () => {
    await ensureImage();
    await fn();
  });
}

/**
 * The DaemonSet of `mode` as a node runs it, read from the shipped manifest;
 * the client's server is `server` (no DNS on the test's hosts).
 */
// deno-lint-ignore no-explicit-any
async function shippedPod(mode: Mode, server = ""): Promise<any> {
  const text = manifest(mode);
  const pointed = text.replace("server.example.com:4567", `${server}:${PORT}`);
  assert.equal(pointed !== text, mode === "client", "the client's --remote");
  return asPod(await parse(pointed));
}

/** The end-to-end hosts with the README's host setup, for `fn`. */
async function withHosts(
  tag: string,
  fn: (topology: Topology) => Promise<void>,
): Promise<void> {
  const topology = createTopology(`k${tag}${Deno.pid}`);
  try {
    applyHostSetup(topology, "nft");
    await fn(topology);
  } finally {
    destroyTopology(topology);
  }
}

/** Starts a UDP echo on 127.0.0.1:`port` in `ns` (ended with the namespace). */
function echo(ns: string, port: number): void {
  inNamespace(
    ns,
    `"$DENO" run --allow-net "$ROOT/e2e/udp_echo.ts" 127.0.0.1 ${port} >/dev/null 2>&1 &`,
    { DENO, ROOT },
  );
}

/** Datagrams of 64 and 1400 bytes to 127.0.0.1:`port` in `ns`: how many came back. */
function probe(ns: string, port: number): { sent: number; echoed: number } {
  return JSON.parse(inNamespace(
    ns,
    `"$DENO" run --allow-net=127.0.0.1,0.0.0.0 "$ROOT/e2e/udp_probe.ts" 127.0.0.1 ${port} 5 64,1400`,
    { DENO, ROOT },
  ));
}

const linkIn = (ns: string, link: string) =>
  exec(cmd`ip -n ${ns} link show ${link}`).then(({ code }) => code === 0);

/** {@link waitFor} on `node`: a timeout tells the kubelet's events so far. */
async function waitOn(
  node: Node,
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 60_000,
): Promise<void> {
  await waitFor(what, check, timeoutMs, 200).catch((error) => {
    throw new Error(`${error.message}; events: ${node.events().join(" | ")}`);
  });
}

/**
 * Waits until the pod `name` runs (as the kubelet reports it), handed off
 * ptun0 in `file`, and ptun0 is up on the node.
 */
async function waitForTunnel(
  node: Node,
  name: string,
  file: string,
  timeoutMs = 60_000,
): Promise<void> {
  await waitOn(
    node,
    `${name} to run and hand off ptun0`,
    async () =>
      isFile(file) && Deno.readTextFileSync(file) === "ptun0" &&
      await linkIn(node.ns, "ptun0") &&
      (await node.pod(name))?.status.containerStatuses?.[0].state.running !==
        undefined,
    timeoutMs,
  );
}

/**
 * Removes the static pod `name`: the kubelet stops it (SIGTERM to tini, which
 * forwards it), the supervisor empties `file` once phantun has died, and ptun0
 * goes away.
 */
async function removeAndCheck(
  node: Node,
  name: string,
  file: string,
): Promise<void> {
  node.remove(name);
  await waitOn(
    node,
    `${name} to stop`,
    async () =>
      Deno.readTextFileSync(file) === "" &&
      !(await linkIn(node.ns, "ptun0")) &&
      (await node.pod(name)) === undefined,
    30_000,
  );
}

/**
 * The resources of the pod `name` against its manifest: the container's memory
 * cgroup limited to `limits.memory`, its peak below it, its working set (the
 * kubelet's figure) within `requests.memory` and its ephemeral storage within
 * its limit. Prints the figures.
 */
async function assertResources(
  node: Node,
  name: string,
  phantun: string,
  // deno-lint-ignore no-explicit-any
  pod: any,
): Promise<void> {
  const { requests, limits } = pod.spec.containers[0].resources;
  const limit = bytes(limits.memory);
  assert.equal(
    Number(await cgroupFile(phantun, "memory.limit_in_bytes")),
    limit,
  );
  const peak = Number(await cgroupFile(phantun, "memory.max_usage_in_bytes"));
  const stats = await node.stats(name);
  const workingSet = stats.containers[0].memory.workingSetBytes;
  const storage = stats["ephemeral-storage"].usedBytes;
  console.log(
    `${name}: memory working set ${
      mib(workingSet)
    } (request ${requests.memory}), peak ${
      mib(peak)
    } (limit ${limits.memory}); ephemeral storage ${
      (storage / 1024).toFixed(0)
    } KiB (request ${requests["ephemeral-storage"]}, limit ${
      limits["ephemeral-storage"]
    })`,
  );
  assert.ok(peak < limit, `peak ${peak} >= limit ${limit}`);
  assert.ok(workingSet <= bytes(requests.memory), `working set ${workingSet}`);
  assert.ok(storage < bytes(limits["ephemeral-storage"]), `storage ${storage}`);
}

/**
 * UDP echo through the tunnel of the pod on `node`: the peer is the other
 * host, running real phantun under the supervisor. The service answers on the
 * server host (behind the pod, or behind the peer), and the datagrams go into
 * the client host's end (the peer's, or the pod's).
 */
async function echoThrough(
  node: Node,
  topology: Topology,
  mode: Mode,
): Promise<void> {
  const [peerNs, peerMode, peerArgs] = mode === "server"
    ? [topology.client, "client", [
      "--local",
      `127.0.0.1:${PEER_UDP}`,
      "--remote",
      `${topology.serverAddr4}:${PORT}`,
    ]] as const
    : [topology.server, "server", [
      "--local",
      String(PORT),
      "--remote",
      `127.0.0.1:${PEER_UDP}`,
    ]] as const;
  assert.notEqual(peerNs, node.ns);
  echo(topology.server, mode === "server" ? SERVICE : PEER_UDP);
  const peer = superviseInNamespace({
    ns: peerNs,
    mode: peerMode,
    tun: "ptun0",
    ifaceFile: `${tempDir()}/peer.iface`,
    phantunDir: PHANTUN,
    phantunArgs: peerArgs,
    stdio: "null",
  });
  try {
    const result = probe(
      topology.client,
      mode === "server" ? PEER_UDP : SERVICE,
    );
    assert.ok(result.sent > 0);
    assert.equal(result.echoed, result.sent);
  } finally {
    peer.kill("SIGTERM");
    await peer.status;
  }
}

/**
 * The processes of the pod `name` (tini, Deno, phantun), each under a seccomp
 * filter as `uid`; NET_ADMIN effective where `netAdmin` says; no_new_privs as
 * `noNewPrivs`. Returns phantun's /proc/PID/status.
 */
async function assertProcesses(
  node: Node,
  name: string,
  uid: number,
  netAdmin: readonly boolean[],
  noNewPrivs: number,
): Promise<string> {
  const chain = await containerProcesses(node, name);
  assert.equal(chain.length, 3, chain.join("\n"));
  assert.match(chain[1], /^Name:\s+deno$/m);
  chain.forEach((status, i) => {
    assert.match(status, /^Seccomp:\s+2$/m);
    assert.match(status, new RegExp(`^Uid:\\s+${uid}\\s`, "m"));
    assert.match(status, new RegExp(`^NoNewPrivs:\\s+${noNewPrivs}$`, "m"));
    assert.equal(capEff(status), netAdmin[i] ? NET_ADMIN : 0n, status);
  });
  return chain[2];
}

/** README's seccomp-install line, run on the node: the profile in the kubelet's seccomp directory. */
const installProfile = (node: Node) =>
  node.shell(readmeBlock("seccomp-install"), ROOT);

kubeletTest(
  "a real kubelet runs the server and the client DaemonSets' pod templates from deploy/kubernetes/ as static pods on nodes whose host network is a namespace made here: refused until README's line puts the profile in the kubelet's seccomp directory, then tini, Deno and phantun as 65532 under it, NET_ADMIN only in phantun (its file capability); UDP echo through real phantun to a peer on the other host, the handoff file holding ptun0; within the memory limit and requests; removing the pod stops phantun through the supervisor, which empties the file",
  async () => {
    for (const mode of ["server", "client"] as const) {
      await withHosts(mode, async (topology) => {
        const pod = await shippedPod(mode, topology.serverAddr4);
        const name = pod.metadata.name;
        const root = await installTmpfiles();
        const file = `${root}/run/phantun/${mode}.iface`;
        const ns = mode === "server" ? topology.server : topology.client;
        await withNode(
          mode,
          ns,
          `${root}/run`,
          await tunNode(),
          async (node) => {
            node.start(pod);
            await waitOn(
              node,
              `${mode}: the kubelet to miss the profile`,
              () =>
                node.events().some((event) =>
                  /seccomp/i.test(event) &&
                  event.includes(
                    "/var/lib/kubelet/seccomp/phantun-runtime.json",
                  )
                ),
              60_000,
            );
            assert.equal(Deno.readTextFileSync(file), "");
            await installProfile(node);
            await waitForTunnel(node, name, file);
            assert.notEqual((await exec(cmd`ip link show ptun0`)).code, 0);
            const phantun = await assertProcesses(node, name, 65532, [
              false,
              false,
              true,
            ], 0);
            await echoThrough(node, topology, mode);
            await assertResources(node, name, phantun, pod);
            const { status } = await node.pod(name);
            assert.equal(
              status.containerStatuses[0].restartCount,
              0,
              JSON.stringify(status.containerStatuses[0].lastState),
            );
            await removeAndCheck(node, name, file);
          },
        );
      });
    }
  },
);

/**
 * Runs `pod` on `node` until the kubelet has admitted (Pending: it waits for
 * its handoff file) or rejected it; removes it. Its phase, reason and message.
 */
async function admission(
  node: Node,
  // deno-lint-ignore no-explicit-any
  pod: any,
): Promise<{ phase: string; reason?: string; message?: string }> {
  const name = pod.metadata.name;
  node.start(pod);
  // deno-lint-ignore no-explicit-any
  let status: any;
  await waitOn(node, `the kubelet to admit or reject ${name}`, async () => {
    status = (await node.pod(name))?.status;
    return status?.phase !== undefined;
  }, 30_000);
  node.remove(name);
  await waitOn(
    node,
    `${name} to go`,
    async () => (await node.pod(name)) === undefined,
    30_000,
  );
  return status;
}

/**
 * On a node labeled for the server, the kubelet itself rejects the client's
 * pod (its nodeSelector), and a server pod that asks for AppArmor's runtime
 * default unless the host has AppArmor.
 */
async function assertRejections(
  node: Node,
  // deno-lint-ignore no-explicit-any
  server: any,
): Promise<void> {
  const client = await admission(node, await shippedPod("client", "10.0.0.1"));
  assert.equal(client.phase, "Failed");
  assert.equal(client.reason, "NodeAffinity");
  const asking = structuredClone(server);
  asking.metadata.name += "-apparmor";
  asking.spec.securityContext.appArmorProfile = { type: "RuntimeDefault" };
  const appArmor = await admission(node, asking);
  const enabled = (await exec(
    cmd`cat /sys/module/apparmor/parameters/enabled`,
  )).stdout.trim() === "Y";
  if (enabled) {
    assert.equal(appArmor.phase, "Pending", appArmor.message);
  } else {
    assert.equal(appArmor.phase, "Failed");
    assert.equal(appArmor.reason, "AppArmor");
    assert.match(
      appArmor.message ?? "",
      /Cannot enforce AppArmor: AppArmor is not enabled on the host$/,
    );
  }
}

kubeletTest(
  "a server node booted without the handoff file: the kubelet reports FailedMount (hostPath type check failed), makes no directory, and starts the server pod once the shipped tmpfiles.d file is applied, with no restart; it rejects the client's pod (nodeSelector) and a pod asking for AppArmor where the host has none (why the manifests do not ask)",
  async () => {
    await withHosts("missing", async (topology) => {
      const pod = await shippedPod("server");
      const name = pod.metadata.name;
      const root = await installTmpfiles();
      Deno.removeSync(`${root}/run/phantun`, { recursive: true }); // not applied at boot
      const file = `${root}/run/phantun/server.iface`;
      await withNode(
        "server",
        topology.server,
        `${root}/run`,
        await tunNode(),
        async (node) => {
          await installProfile(node);
          await assertRejections(node, pod);
          node.start(pod);
          const failed = () =>
            node.events().filter((event) =>
              event ===
                'FailedMount: MountVolume.SetUp failed for volume "iface" : hostPath type check failed: /run/phantun/server.iface is not a file'
            ).length;
          await waitOn(
            node,
            "two FailedMount events",
            () => failed() >= 2,
            60_000,
          );
          assert.equal((await exec(cmd`test -e ${root}/run/phantun`)).code, 1);
          assert.equal((await node.pod(name)).status.phase, "Pending");
          await ok(cmd`systemd-tmpfiles --root=${root} --create`);
          const applied = Date.now();
          await waitForTunnel(node, name, file, 180_000);
          console.log(
            `${name}: up ${
              ((Date.now() - applied) / 1000).toFixed(1)
            } s after the handoff file appeared (the kubelet's mount retry back-off, after ${failed()} FailedMount events)`,
          );
          const { status } = await node.pod(name);
          assert.equal(
            status.containerStatuses[0].restartCount,
            0,
            JSON.stringify(status.containerStatuses[0].lastState),
          );
          await removeAndCheck(node, name, file);
        },
      );
    });
  },
);

kubeletTest(
  "deploy/README.md's root variant (allowPrivilegeEscalation: false) as the server pod's container securityContext under the real kubelet: tini, Deno and phantun as root with no_new_privs under the profile, NET_ADMIN from the bounding set, and UDP echoes through it",
  async () => {
    await withHosts("root", async (topology) => {
      const pod = await shippedPod("server");
      const name = pod.metadata.name;
      pod.spec.containers[0].securityContext =
        (await parse(rootVariant())).securityContext;
      const root = await installTmpfiles();
      const file = `${root}/run/phantun/server.iface`;
      await ok(cmd`chown 0:0 ${file}`); // the root variant's file is root's
      await withNode(
        "server",
        topology.server,
        `${root}/run`,
        await tunNode(),
        async (node) => {
          await installProfile(node);
          node.start(pod);
          await waitForTunnel(node, name, file);
          await assertProcesses(node, name, 0, [true, true, true], 1);
          await echoThrough(node, topology, "server");
          await removeAndCheck(node, name, file);
        },
      );
    });
  },
);
