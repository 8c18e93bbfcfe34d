/**
 * A Kubernetes node for the kubelet tests: the real kubelet that
 * scripts/provision-kubelet.sh builds, driving Debian's containerd and runc,
 * running static pods (no API server).
 *
 * Nothing of it reaches this machine. The node's host network is a network
 * namespace the test made: containerd and the kubelet start in it through
 * nsenter (`ip netns exec` would remount /sys, where the kubelet then finds no
 * cgroups), so a hostNetwork pod lands there. The two share a mount namespace
 * of their own in which the node's /run, /var/lib and /var/log are
 * directories of the test, /dev/net/tun is the test's 0666 device node, and
 * the six sysctls the kubelet sets at start are files that already hold the
 * values it wants, so it writes none of this machine's. The manifests'
 * hostPaths therefore stay as shipped, and the paths containerd and the
 * kubelet hard-code (/run/containerd/s, /var/lib/kubelet/device-plugins,
 * /var/log/containers) are the test's. Their cgroups live under a cgroup root
 * of the node's own, removed with every process it started when it stops.
 */
import assert from "node:assert/strict";
import { IS_ROOT, missingCommand, waitFor } from "../helpers.ts";
import {
  CACHE,
  cmd,
  DOCKER,
  exec,
  IMAGE,
  isFile,
  ok,
  PREFIX,
  tempDir,
  VERSION,
} from "./harness.ts";

/** The kubelet scripts/provision-kubelet.sh builds. */
const KUBELET = `${CACHE}/kubelet-v1.35.4`;
/** The pods' sandbox image, as scripts/provision-kubelet.sh writes and names it. */
const PAUSE = `${CACHE}/pause-1.tar`;
const PAUSE_IMAGE = "localhost/phantun-runtime-pause:1";

/** Why a node cannot run here, or null. */
export const MISSING_NODE: string | null = !IS_ROOT
  ? "needs root (namespaces, mounts, containerd)"
  : !isFile(KUBELET)
  ? `${KUBELET} not found (scripts/provision-kubelet.sh)`
  : !isFile(PAUSE)
  ? `${PAUSE} not found (scripts/provision-kubelet.sh)`
  : missingCommand("containerd", "ctr", "runc", "nsenter", "unshare", "curl");

/** The node's name: a static pod NAME runs as NAME-NODE_NAME. */
const NODE_NAME = `${PREFIX}node`;
/** The cgroup under which the kubelet puts every pod (cgroupRoot). */
const CGROUP_ROOT = `${PREFIX}kubelet`;
/** The kubelet's port for /pods and /stats/summary, on the node's loopback. */
const PORT = 10250;

/**
 * The sysctls the kubelet sets at start unless they hold these values
 * (setupKernelTunables in pkg/kubelet/cm), as paths under /proc/sys.
 */
const SYSCTLS: Record<string, number> = {
  "vm/overcommit_memory": 1,
  "vm/panic_on_oom": 0,
  "kernel/panic": 10,
  "kernel/panic_on_oops": 1,
  "kernel/keys/root_maxkeys": 1000000,
  "kernel/keys/root_maxbytes": 25000000,
};

let disk: string | undefined;
let imported = false;

/**
 * The node's disk: its /var/lib and /var/log, the configuration files, the
 * static pod directory and the sysctl files. containerd's images stay for the
 * whole test process; each node boots with no kubelet state and no logs.
 */
function nodeDisk(): string {
  if (disk) return disk;
  disk = tempDir();
  for (
    const dir of ["var/lib", "var/log", "etc/cni/net.d", "opt", "manifests"]
  ) {
    Deno.mkdirSync(`${disk}/${dir}`, { recursive: true });
  }
  for (const [key, value] of Object.entries(SYSCTLS)) {
    Deno.writeTextFileSync(`${disk}/${sysctlFile(key)}`, `${value}\n`);
  }
  // containerd's defaults but the sandbox image, oom_score_adj (this machine
  // lacks CAP_SYS_RESOURCE, so runc's -998 for the sandbox would fail), and
  // the two directories it would make outside /run and /var/lib.
  Deno.writeTextFileSync(
    `${disk}/containerd.toml`,
    `version = 2
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    conf_dir = "${disk}/etc/cni/net.d"
[plugins."io.containerd.internal.v1.opt"]
  path = "${disk}/opt"
`,
  );
  Deno.writeTextFileSync(
    `${disk}/kubelet.json`,
    JSON.stringify({
      apiVersion: "kubelet.config.k8s.io/v1beta1",
      kind: "KubeletConfiguration",
      staticPodPath: `${disk}/manifests`,
      fileCheckFrequency: "1s",
      cgroupDriver: "cgroupfs",
      cgroupRoot: `/${CGROUP_ROOT}`,
      // This machine's cgroups are v1; kubelet 1.35 refuses them by default.
      failCgroupV1: false,
      failSwapOn: false,
      address: "127.0.0.1",
      port: PORT,
      readOnlyPort: 0,
      healthzBindAddress: "127.0.0.1",
      authentication: {
        anonymous: { enabled: true },
        webhook: { enabled: false },
      },
      authorization: { mode: "AlwaysAllow" },
      // The disk is this machine's, shared: evict or collect images only
      // when it is nearly full, not at the defaults' 10-15 % free.
      evictionHard: { "nodefs.available": "1%", "imagefs.available": "1%" },
      imageGCHighThresholdPercent: 100,
      imageGCLowThresholdPercent: 99,
    }),
  );
  return disk;
}

const sysctlFile = (key: string) => `sysctl-${key.replaceAll("/", ".")}`;

/** The pod the kubelet reports, as in its /pods. */
// deno-lint-ignore no-explicit-any
export type PodStatus = any;

/** A running node; see the module's description. */
export type Node = {
  /** The network namespace that is the node's host network. */
  readonly ns: string;
  /** The directory that is the node's /run. */
  readonly run: string;
  /** Runs `pod` (a Pod object) as a static pod. */
  readonly start: (pod: { metadata: { name: string } }) => void;
  /** Removes the static pod `name`. */
  readonly remove: (name: string) => void;
  /** The kubelet's status of the static pod `name`, if it knows it. */
  readonly pod: (name: string) => Promise<PodStatus | undefined>;
  /** The kubelet's events about pods so far, one line each: `reason: message`. */
  readonly events: () => string[];
  /** The kubelet's /stats/summary entry of the pod `name`, once it has one. */
  // deno-lint-ignore no-explicit-any
  readonly stats: (name: string) => Promise<any>;
  /** Runs `script` (sh) in the node's mount namespace, from `cwd`. */
  readonly shell: (script: string, cwd: string) => Promise<string>;
};

/** The pid and the /proc/PID/status of each process in a container, from its first. */
export async function containerProcesses(
  node: Node,
  name: string,
): Promise<string[]> {
  const status = await node.pod(name);
  const id = status.status.containerStatuses[0].containerID.replace(
    "containerd://",
    "",
  );
  const tasks = await ctr(node, cmd`task ls`);
  const first = tasks.match(new RegExp(`^${id}\\s+(\\d+)\\s`, "m"))![1];
  const pids = [first];
  for (;;) {
    const children = await ok(
      cmd`sh -c ${"cat /proc/$0/task/*/children"} ${pids[pids.length - 1]}`,
    );
    if (children === "") break;
    assert.match(children, /^\d+$/, `children of ${pids[pids.length - 1]}`);
    pids.push(children);
  }
  return await Promise.all(pids.map((pid) => ok(cmd`cat /proc/${pid}/status`)));
}

/** `ctr` against the node's containerd, in the kubelet's namespace k8s.io. */
function ctr(node: { run: string }, args: string[]): Promise<string> {
  return ok(
    cmd`ctr --address ${node.run}/containerd/containerd.sock --namespace k8s.io ${args}`,
  );
}

/** GET a path of the kubelet's API on the node's loopback. */
async function kubeletApi(ns: string, path: string): Promise<string> {
  return await ok(
    cmd`nsenter --net=/run/netns/${ns} curl -sfk https://127.0.0.1:${PORT}${path}`,
  );
}

/**
 * Boots a node labeled `role` (phantun-runtime/role, as `kubectl label node`
 * sets it) whose host network is `ns`, whose /run is the directory `run` and
 * whose /dev/net/tun is the device node `tun`; runs `fn` with it, then stops
 * every process it started and removes its cgroups. The image under test is
 * in its containerd as the shipped manifests name it, phantun-runtime:VERSION.
 */
export async function withNode(
  role: string,
  ns: string,
  run: string,
  tun: string,
  fn: (node: Node) => Promise<void>,
): Promise<void> {
  const dir = nodeDisk();
  // A fresh node but for containerd's images: no kubelet state, no pod
  // logs (whose count the kubelet takes for restarts), empty logs of its own.
  await ok(
    cmd`rm -rf ${dir}/var/lib/kubelet ${dir}/var/log/pods ${dir}/var/log/containers`,
  );
  for (const log of ["kubelet.log", "containerd.log"]) {
    Deno.writeTextFileSync(`${dir}/${log}`, "");
  }
  const machine = await sysctls();
  await makeCgroupRoot();
  const mounts = [
    [run, "/run"],
    [`${dir}/var/lib`, "/var/lib"],
    [`${dir}/var/log`, "/var/log"],
    [tun, "/dev/net/tun"],
    ...Object.keys(SYSCTLS).map((key) => [
      `${dir}/${sysctlFile(key)}`,
      `/proc/sys/${key}`,
    ]),
  ].map(([from, to]) => `mount --bind ${from} ${to}`);
  const containerd = new Deno.Command("nsenter", {
    args: cmd`--net=/run/netns/${ns} unshare --mount --propagation private
      sh -ec ${`${mounts.join("\n")}
exec containerd --config ${dir}/containerd.toml >>${dir}/containerd.log 2>&1`}`,
    stdin: "null",
  }).spawn();
  const mountNs = await waitForMountNs(containerd.pid);
  let kubelet: Deno.ChildProcess | undefined;
  const node: Node = {
    ns,
    run,
    start: (pod) =>
      Deno.writeTextFileSync(
        `${dir}/manifests/${pod.metadata.name}.json`,
        JSON.stringify(pod),
      ),
    remove: (name) => Deno.removeSync(`${dir}/manifests/${name}.json`),
    pod: async (name) =>
      (JSON.parse(await kubeletApi(ns, "/pods")).items ?? []).find(
        (pod: PodStatus) => pod.metadata.name === `${name}-${NODE_NAME}`,
      ),
    events: () =>
      Deno.readTextFileSync(`${dir}/kubelet.log`).split("\n")
        .filter((line) =>
          line.includes('"Event occurred"') && line.includes(' kind="Pod" ')
        )
        .map((line) =>
          `${line.match(/ reason="([^"]*)"/)?.[1]}: ${
            JSON.parse(`"${line.match(/ message="((?:[^"\\]|\\.)*)"/)?.[1]}"`)
          }`
        ),
    stats: async (name) => {
      let found;
      await waitFor(
        "the kubelet's stats of the pod",
        async () => {
          const summary = JSON.parse(await kubeletApi(ns, "/stats/summary"));
          found = (summary.pods ?? []).find(
            // deno-lint-ignore no-explicit-any
            (pod: any) =>
              pod.podRef.name === `${name}-${NODE_NAME}` &&
              pod.containers?.[0]?.memory?.workingSetBytes !== undefined &&
              pod["ephemeral-storage"]?.usedBytes !== undefined,
          );
          return found !== undefined;
        },
        60_000,
        1_000,
      );
      return found;
    },
    shell: (script, cwd) =>
      ok(
        cmd`nsenter --target ${containerd.pid} --mount --wd=${cwd} sh -ec ${script}`,
      ),
  };
  try {
    await waitFor(
      "containerd to listen",
      () => isSocket(`${run}/containerd/containerd.sock`),
      30_000,
      100,
    );
    await importImages(node);
    kubelet = new Deno.Command("nsenter", {
      args: cmd`--target ${containerd.pid} --mount --net
        sh -c ${`exec "$0" "$@" >>${dir}/kubelet.log 2>&1`} ${KUBELET}
        --config ${dir}/kubelet.json --hostname-override ${NODE_NAME}
        --node-labels phantun-runtime/role=${role} --v=3`,
      stdin: "null",
    }).spawn();
    await waitFor(
      "the kubelet's API",
      async () =>
        (await exec(
          cmd`nsenter --net=/run/netns/${ns} curl -sfk https://127.0.0.1:${PORT}/healthz`,
        )).code === 0,
      60_000,
      200,
    );
    await fn(node);
  } finally {
    await stop(node, containerd, kubelet, mountNs);
  }
  assert.deepEqual(await sysctls(), machine, "the machine's sysctls changed");
}

/** This machine's values of the sysctls the kubelet sets. */
async function sysctls(): Promise<string[]> {
  return await Promise.all(
    Object.keys(SYSCTLS).map((key) => ok(cmd`cat /proc/sys/${key}`)),
  );
}

/** Whether `path` is a socket (Deno's stat tells). */
function isSocket(path: string): boolean {
  try {
    return Deno.statSync(path).isSocket === true;
  } catch {
    return false;
  }
}

/** The mount namespace of `pid`, once it has left this machine's. */
async function waitForMountNs(pid: number): Promise<string> {
  const own = await ok(cmd`readlink /proc/self/ns/mnt`);
  let ns = own;
  await waitFor(
    "containerd's mount namespace",
    async () => {
      ns = (await exec(cmd`readlink /proc/${pid}/ns/mnt`)).stdout.trim();
      return ns !== own && ns !== "";
    },
    10_000,
    20,
  );
  return ns;
}

/**
 * Imports the sandbox image and the image under test (once per test process:
 * the disk keeps them), the latter under the name the manifests give it.
 */
async function importImages(node: Node): Promise<void> {
  if (imported) return;
  await ctr(node, cmd`images import ${PAUSE}`);
  const socket = `${node.run}/containerd/containerd.sock`;
  await ok([
    "sh",
    "-c",
    `${DOCKER.bin} save ${IMAGE} | ctr --address ${socket} --namespace k8s.io images import -`,
  ]);
  await ctr(
    node,
    cmd`images tag --force docker.io/library/${IMAGE} docker.io/library/phantun-runtime:${VERSION}`,
  );
  imported = true;
}

/** The cgroup hierarchies of this machine: v1's one per controller, or v2's one. */
async function hierarchies(): Promise<string[]> {
  const mounts = await ok(cmd`cat /proc/self/mounts`);
  return [...mounts.matchAll(/^\S+ (\/sys\/fs\/cgroup\S*) cgroup2? /gm)]
    .map((match) => match[1]);
}

/** Makes the node's cgroup root in every hierarchy (cpuset's with its parent's CPUs and memory nodes). */
async function makeCgroupRoot(): Promise<void> {
  for (const hierarchy of await hierarchies()) {
    const dir = `${hierarchy}/${CGROUP_ROOT}`;
    await ok(cmd`mkdir -p ${dir}`);
    if (hierarchy.endsWith("/cpuset")) {
      for (const file of ["cpuset.cpus", "cpuset.mems"]) {
        await ok(cmd`sh -c ${`cat ${hierarchy}/${file} > ${dir}/${file}`}`);
      }
    }
  }
}

/** SIGTERM to `child`, unless it has ended; waits for it. */
async function end(child: Deno.ChildProcess): Promise<void> {
  try {
    child.kill("SIGTERM");
  } catch {
    // it has ended
  }
  await child.status;
}

/** The pids of the processes in the mount namespace `mountNs`. */
async function processesIn(mountNs: string): Promise<string[]> {
  const pids = await ok(cmd`sh -c ${`for p in /proc/[0-9]*; do
    [ "$(readlink $p/ns/mnt 2>/dev/null)" = "$0" ] && echo \${p#/proc/}; done; true`} ${mountNs}`);
  return pids.split("\n").filter((pid) => pid !== "");
}

/**
 * Stops the kubelet, then every container and containerd, then whatever
 * still runs in the node's mount namespace (the containers' shims, all
 * started by its containerd); removes the static pods and the node's cgroups.
 */
async function stop(
  node: Node,
  containerd: Deno.ChildProcess,
  kubelet: Deno.ChildProcess | undefined,
  mountNs: string,
): Promise<void> {
  const dir = nodeDisk();
  for (const entry of Deno.readDirSync(`${dir}/manifests`)) {
    Deno.removeSync(`${dir}/manifests/${entry.name}`);
  }
  if (kubelet) await end(kubelet);
  const containerdCtl = (args: string[]) =>
    exec(cmd`ctr --address ${node.run}/containerd/containerd.sock
      --namespace k8s.io ${args}`);
  const ids = async (args: string[]) =>
    (await containerdCtl(args)).stdout.split("\n").filter((id) => id !== "");
  for (const id of await ids(cmd`task ls -q`)) {
    await containerdCtl(cmd`task kill --signal SIGKILL ${id}`);
    await waitFor(
      `task ${id} to end`,
      async () =>
        (await containerdCtl(cmd`task delete ${id}`)).code === 0 ||
        !(await ids(cmd`task ls -q`)).includes(id),
      10_000,
      100,
    );
  }
  for (const id of await ids(cmd`containers ls -q`)) {
    await containerdCtl(cmd`containers delete ${id}`);
  }
  await end(containerd);
  for (const pid of await processesIn(mountNs)) {
    await exec(cmd`kill -KILL ${pid}`);
  }
  await waitFor(
    "the node's processes to end",
    async () => (await processesIn(mountNs)).length === 0,
    10_000,
    100,
  );
  for (const hierarchy of await hierarchies()) {
    const root = `${hierarchy}/${CGROUP_ROOT}`;
    await ok(
      cmd`sh -c ${'[ ! -d "$0" ] || find "$0" -depth -type d -exec rmdir {} +'} ${root}`,
    );
  }
}
