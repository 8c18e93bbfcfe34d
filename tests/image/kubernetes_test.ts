/**
 * The Kubernetes manifests of deploy/kubernetes/: strict schema validation
 * offline, the shape that keeps two tunnels off one node, and a run by
 * `podman kube play` in a network namespace made here, before and after a
 * "reboot" of the handoff files' /run.
 */
import assert from "node:assert/strict";
import { missingCommand, testWhen } from "../helpers.ts";
import {
  boot,
  capEff,
  cmd,
  exec,
  IMAGE,
  imageTest,
  inspect,
  installTmpfiles,
  NET_ADMIN,
  ok,
  PODMAN,
  PREFIX,
  processChain,
  ROOT,
  tempDir,
  tunNode,
  VERSION,
} from "./harness.ts";
import { bytes, cgroupFile } from "./limits.ts";
import {
  asPod,
  manifest,
  MANIFEST_DIR,
  MISSING_VENV,
  type Mode,
  MODES,
  parse,
  parseAll,
  rootVariant,
  VENV,
} from "./manifests.ts";

/** The label a node carries to run one role. */
const ROLE = "phantun-runtime/role";

/** Strict schema validation of the manifest `file` for Kubernetes 1.37, offline. */
const validate = (file: string) =>
  exec([`${VENV}/kubernetes-validate`, "--strict", "-k", "1.37.0", file]);

testWhen(
  MISSING_VENV,
  "the Kubernetes manifests pass strict schema validation for Kubernetes 1.37, offline",
  async () => {
    const resources = {
      "cluster.yaml": [
        "namespace/phantun-runtime",
        "priorityclass/phantun-runtime",
      ],
      "phantun-server.yaml": ["daemonset/phantun-server"],
      "phantun-client.yaml": ["daemonset/phantun-client"],
    };
    for (const [file, names] of Object.entries(resources)) {
      const result = await validate(`${MANIFEST_DIR}/${file}`);
      assert.equal(result.code, 0, result.stdout + result.stderr);
      for (const name of names) {
        assert.match(
          result.stdout + result.stderr,
          new RegExp(`passed for resource ${name} `),
        );
      }
    }
  },
);

testWhen(
  MISSING_VENV,
  "deploy/README.md's root variant, as each manifest's container securityContext, passes the same strict validation, runs as root and allows no privilege escalation",
  async () => {
    const variant = (await parse(rootVariant())).securityContext;
    assert.equal(variant.runAsUser, 0);
    assert.equal(variant.allowPrivilegeEscalation, false);
    assert.equal("runAsNonRoot" in variant, false);
    for (const mode of MODES) {
      const object = await parse(manifest(mode));
      // The pod's own securityContext leaves the choice of root to the container.
      assert.equal(
        "runAsNonRoot" in object.spec.template.spec.securityContext,
        false,
      );
      object.spec.template.spec.containers[0].securityContext = variant;
      const file = `${tempDir()}/phantun-${mode}.yaml`;
      Deno.writeTextFileSync(file, JSON.stringify(object)); // JSON is YAML
      const result = await validate(file);
      assert.equal(result.code, 0, result.stdout + result.stderr);
    }
  },
);

testWhen(
  MISSING_VENV,
  "kubectl apply -f deploy/kubernetes/ never puts two tunnels on one node: a DaemonSet per role on nodes labeled with that role (one value per node), the old pod gone before an update starts the new one; each under the runtime's seccomp profile",
  async () => {
    for (const mode of MODES) {
      const text = manifest(mode);
      const object = await parse(text);
      assert.equal(object.kind, "DaemonSet", mode);
      const spec = object.spec.template.spec;
      assert.deepEqual(spec.nodeSelector, { [ROLE]: mode }, mode);
      assert.equal(spec.hostNetwork, true, mode);
      assert.deepEqual(spec.securityContext.seccompProfile, {
        type: "Localhost",
        localhostProfile: "phantun-runtime.json",
      });
      assert.deepEqual(object.spec.updateStrategy, {
        type: "RollingUpdate",
        rollingUpdate: { maxUnavailable: 1, maxSurge: 0 },
      });
      assert.ok(
        text.includes(`kubectl label node NODE ${ROLE}=${mode}`),
        `${mode}: how to label a node`,
      );
    }
  },
);

testWhen(
  MISSING_VENV,
  "kubectl apply -f deploy/kubernetes/ applies cluster.yaml first (files go in name order): the namespace at Pod Security's privileged level and the priority class the DaemonSets name; each DaemonSet runs this release's tag with no service-account token, requests and a memory limit",
  async () => {
    // kubectl reads the .yaml, .yml and .json files of a directory.
    const files = [...Deno.readDirSync(MANIFEST_DIR)].map((entry) => entry.name)
      .filter((name) => /\.(ya?ml|json)$/.test(name)).toSorted();
    assert.deepEqual(files, [
      "cluster.yaml",
      "phantun-client.yaml",
      "phantun-server.yaml",
    ]);
    const [namespace, priorityClass] = await parseAll(
      Deno.readTextFileSync(`${MANIFEST_DIR}/cluster.yaml`),
    );
    assert.equal(namespace.kind, "Namespace");
    assert.equal(
      namespace.metadata.labels["pod-security.kubernetes.io/enforce"],
      "privileged",
    );
    assert.equal(priorityClass.kind, "PriorityClass");
    assert.equal(priorityClass.globalDefault, false);
    for (const mode of MODES) {
      const object = await parse(manifest(mode));
      assert.equal(object.metadata.namespace, namespace.metadata.name);
      const spec = object.spec.template.spec;
      assert.equal(spec.priorityClassName, priorityClass.metadata.name);
      assert.equal(spec.automountServiceAccountToken, false);
      const [container] = spec.containers;
      assert.equal(container.image, `phantun-runtime:${VERSION}`);
      const { requests, limits } = container.resources;
      assert.deepEqual(Object.keys(requests).toSorted(), [
        "cpu",
        "ephemeral-storage",
        "memory",
      ]);
      assert.deepEqual(Object.keys(limits).toSorted(), [
        "ephemeral-storage",
        "memory",
      ]);
      assert.ok(bytes(requests.memory) <= bytes(limits.memory));
    }
  },
);

/**
 * A manifest as `podman kube play` runs it here. Podman 4.3 plays Pods and
 * Deployments, not DaemonSets, so the DaemonSet's pod template becomes a Pod;
 * the image is the one loaded into Podman, never pulled; the hostPaths are
 * the test's device node and handoff file; the client's server an address;
 * the pod's seccomp profile also as the annotation Podman reads.
 */
/** The memory and ephemeral-storage limits of the DaemonSet of `mode`, as written. */
const limits = (mode: Mode) =>
  parse(manifest(mode)).then((object) =>
    object.spec.template.spec.containers[0].resources.limits
  );

async function forPodman(
  mode: Mode,
  tun: string,
  iface: string,
): Promise<string> {
  const replaced = manifest(mode)
    .replace(/^(\s+image:) phantun-runtime\b.*$/m, `$1 ${IMAGE}`)
    .replace(/imagePullPolicy: IfNotPresent/, "imagePullPolicy: Never")
    .replace(/path: \/dev\/net\/tun$/m, `path: ${tun}`)
    .replace(/path: \/run\/phantun\/\w+\.iface$/m, `path: ${iface}`)
    // The client resolves its --remote at start: a name needs DNS, absent here.
    .replace("server.example.com:4567", "127.0.0.1:4567");
  for (const field of [IMAGE, "Never", tun, iface]) {
    assert.ok(replaced.includes(field), `${mode}: ${field} not set`);
  }
  const pod = asPod(await parse(replaced));
  // Podman 4.3 reads no seccompProfile field, only the annotation.
  const { localhostProfile } = pod.spec.securityContext.seccompProfile;
  pod.metadata.annotations = {
    "seccomp.security.alpha.kubernetes.io/pod": `localhost/${localhostProfile}`,
  };
  return JSON.stringify(pod);
}

imageTest(
  "podman kube play runs each Kubernetes manifest with hostNetwork in a namespace made here, with the handoff file the tmpfiles.d file made, and again after a reboot: ptun0 comes up under the manifest's memory limit, the file holds it, and stopping the pod gives 143 and empties it",
  async () => {
    const tun = await tunNode();
    const root = await installTmpfiles();
    for (const mode of MODES) {
      const iface = `${root}/run/phantun/${mode}.iface`;
      const file = `${root}/${mode}.json`;
      Deno.writeTextFileSync(file, await forPodman(mode, tun, iface));
      const ns = `${PREFIX}k8s-${mode}`;
      await exec(cmd`ip netns del ${ns}`);
      await ok(cmd`ip netns add ${ns}`);
      const podman = (args: string[]) =>
        exec(
          // ip netns exec would remount /sys and hide the cgroups podman needs.
          cmd`nsenter --net=/run/netns/${ns} ${PODMAN.bin} ${args}`,
          { env: PODMAN.env },
        );
      const pod = `phantun-${mode}`;
      try {
        await ok(cmd`ip netns exec ${ns} ip link set lo up`);
        for (const when of ["first boot", "after a reboot"]) {
          const played = await podman(
            cmd`kube play --seccomp-profile-root ${ROOT}deploy/seccomp ${file}`,
          );
          assert.equal(played.code, 0, `${when}: ${played.stderr}`);
          const deadline = Date.now() + 15_000;
          while (
            (await exec(cmd`ip netns exec ${ns} ip link show ptun0`)).code !== 0
          ) {
            assert.ok(Date.now() < deadline, `${mode}, ${when}: no ptun0`);
            await new Promise((r) => setTimeout(r, 100));
          }
          assert.notEqual(
            (await exec(cmd`ip link show ptun0`)).code,
            0,
            "ptun0 on this machine",
          );
          assert.equal(Deno.readTextFileSync(iface), "ptun0", when);
          const container = `${pod}-phantun`;
          const [, , phantun] = await processChain(PODMAN, container);
          assert.equal(capEff(phantun), NET_ADMIN);
          assert.match(phantun, /^Uid:\s+65532\s/m);
          const limit = bytes((await limits(mode)).memory);
          assert.equal(
            Number(await inspect(PODMAN, "{{.HostConfig.Memory}}", container)),
            limit,
          );
          assert.equal(
            Number(await cgroupFile(phantun, "memory.limit_in_bytes")),
            limit,
          );
          assert.ok(
            Number(await cgroupFile(phantun, "memory.max_usage_in_bytes")) <
              limit,
          );
          // kube down of Podman 4.3 kills with SIGKILL: stop the pod first,
          // as Kubernetes does (SIGTERM, then the grace period).
          assert.equal((await podman(cmd`pod stop ${pod}`)).code, 0);
          assert.equal(
            await inspect(PODMAN, "{{.State.ExitCode}}", container),
            "143",
          );
          assert.equal(Deno.readTextFileSync(iface), "", when);
          assert.equal((await podman(cmd`kube down ${file}`)).code, 0);
          await boot(root);
        }
      } finally {
        await podman(cmd`kube down ${file}`);
        await exec(cmd`ip netns del ${ns}`);
      }
    }
  },
  PODMAN,
  missingCommand("catatonit", "systemd-tmpfiles") ?? MISSING_VENV,
);
