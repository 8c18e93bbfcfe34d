/**
 * Orchestrators: compose.yaml under Compose v2 (`docker compose`) and v1
 * (`docker-compose`), the Kubernetes manifests of deploy/kubernetes/ (strict
 * schema validation offline, and run by `podman kube play` in a network
 * namespace made here), and the engine's restart loop.
 */
import assert from "node:assert/strict";
import { restartLoop } from "../restart_loop.ts";
import { missingCommand, testWhen } from "../helpers.ts";
import {
  assertEcho,
  CACHE,
  capEff,
  cmd,
  DOCKER,
  exec,
  IFACE,
  IFACE_FILES,
  IMAGE,
  imageTest,
  inspect,
  ipOf,
  isFile,
  lines,
  NET_ADMIN,
  ok,
  PODMAN,
  PREFIX,
  processChain,
  readme,
  readmeOk,
  ROOT,
  tempDir,
  tunNode,
  waitForLink,
  withHosts,
} from "./harness.ts";

/** README block docker-compose. */
const COMPOSE = String.raw`docker compose up -d phantun-server
PHANTUN_SERVER=server.example.com docker compose up -d phantun-client
docker compose stop`;

const FLAVOURS = [
  {
    name: "Compose v2 (docker compose)",
    command: "docker compose",
    container: (project: string, service: string) => `${project}-${service}-1`,
    missing:
      isFile(`${Deno.env.get("HOME")}/.docker/cli-plugins/docker-compose`)
        ? null
        : "the docker compose plugin is missing (scripts/provision-tools.sh)",
  },
  {
    name: "Compose v1 (docker-compose)",
    command: "docker-compose",
    container: (project: string, service: string) => `${project}_${service}_1`,
    missing: missingCommand("docker-compose"),
  },
] as const;

for (const flavour of FLAVOURS) {
  imageTest(
    `compose.yaml under ${flavour.name}: the README's commands start the server and the client, which carry UDP echo, and stop them with 143`,
    async () => {
      const tun = await tunNode();
      await withHosts(DOCKER, "compose", async (hosts) => {
        const dir = tempDir();
        // Only what would touch this machine: its network, device and files.
        const override = (mode: "server" | "client") => ({
          image: IMAGE,
          network_mode: `container:${hosts[mode]}`,
          devices: [`${tun}:/dev/net/tun`],
          volumes: [`${dir}/${mode}.iface:${IFACE}`],
        });
        const overrideFile = `${dir}/override.yaml`;
        Deno.writeTextFileSync(
          overrideFile,
          JSON.stringify({
            services: {
              "phantun-server": override("server"),
              "phantun-client": override("client"),
            },
          }),
        );
        const project = `${PREFIX}compose`;
        const compose = [
          "docker compose",
          `${flavour.command} -f compose.yaml -f ${overrideFile} -p ${project}`,
        ] as const;
        await readmeOk(DOCKER, IFACE_FILES, [["/run/phantun/", `${dir}/`]]);
        const names = ["phantun-server", "phantun-client"].map((service) =>
          flavour.container(project, service)
        );
        try {
          await readmeOk(DOCKER, lines(COMPOSE, 0, 2), [
            compose,
            ["server.example.com", await ipOf(DOCKER, hosts.server)],
          ]);
          for (const name of names) await waitForLink(DOCKER, name, "ptun0");
          assert.equal(Deno.readTextFileSync(`${dir}/server.iface`), "ptun0");
          await assertEcho(
            DOCKER,
            `container:${hosts.client}`,
            "127.0.0.1",
            1234,
          );
          const [, deno, phantun] = await processChain(DOCKER, names[1]);
          assert.equal(capEff(deno), 0n);
          assert.equal(capEff(phantun), NET_ADMIN);
          await readmeOk(DOCKER, lines(COMPOSE, 2), [compose]);
          for (const name of names) {
            assert.equal(
              await inspect(DOCKER, "{{.State.ExitCode}}", name),
              "143",
            );
          }
          assert.equal(Deno.readTextFileSync(`${dir}/server.iface`), "");
          assert.equal(Deno.readTextFileSync(`${dir}/client.iface`), "");
        } finally {
          await readme(DOCKER, "docker compose down", [compose]);
        }
      });
    },
    DOCKER,
    flavour.missing,
  );
}

const MANIFESTS = ["phantun-server", "phantun-client"] as const;
const KUBERNETES_VALIDATE = `${CACHE}/venv/bin/kubernetes-validate`;

testWhen(
  isFile(KUBERNETES_VALIDATE)
    ? null
    : `${KUBERNETES_VALIDATE} not found (scripts/provision-tools.sh)`,
  "the Kubernetes manifests pass strict schema validation for Kubernetes 1.37, offline",
  async () => {
    for (const manifest of MANIFESTS) {
      const result = await exec([
        KUBERNETES_VALIDATE,
        "--strict",
        "-k",
        "1.37.0",
        `${ROOT}deploy/kubernetes/${manifest}.yaml`,
      ]);
      assert.equal(result.code, 0, result.stdout + result.stderr);
      assert.match(
        result.stdout + result.stderr,
        /passed for resource deployment\//,
      );
    }
  },
);

/**
 * A manifest as `podman kube play` runs it here: the image as loaded into
 * Podman, never pulled, the test's own device node and handoff file as the
 * hostPaths, and the client's server as an address.
 */
function forPodman(manifest: string, tun: string, iface: string): string {
  const text = Deno.readTextFileSync(
    `${ROOT}deploy/kubernetes/${manifest}.yaml`,
  );
  const replaced = text
    .replace(/^(\s+image:) phantun-runtime\b.*$/m, `$1 ${IMAGE}`)
    .replace(/imagePullPolicy: IfNotPresent/, "imagePullPolicy: Never")
    .replace(/path: \/dev\/net\/tun$/m, `path: ${tun}`)
    .replace(/path: \/run\/phantun\/\w+\.iface$/m, `path: ${iface}`)
    // The client resolves its --remote at start: a name needs DNS, absent here.
    .replace("server.example.com:4567", "127.0.0.1:4567");
  for (const field of [IMAGE, "Never", tun, iface]) {
    assert.ok(replaced.includes(field), `${manifest}: ${field} not set`);
  }
  return replaced;
}

imageTest(
  "podman kube play runs each Kubernetes manifest with hostNetwork in a namespace made here: ptun0 comes up, the handoff file holds it, and stopping the pod gives 143 and empties it",
  async () => {
    const tun = await tunNode();
    for (const manifest of MANIFESTS) {
      const dir = tempDir();
      const iface = `${dir}/iface`;
      await ok(cmd`install -o 65532 -g 65532 -m 0644 /dev/null ${iface}`);
      const file = `${dir}/${manifest}.yaml`;
      Deno.writeTextFileSync(file, forPodman(manifest, tun, iface));
      const ns = `${PREFIX}k8s-${manifest.slice(8)}`;
      await exec(cmd`ip netns del ${ns}`);
      await ok(cmd`ip netns add ${ns}`);
      const podman = (args: string[]) =>
        exec(
          // ip netns exec would remount /sys and hide the cgroups podman needs.
          cmd`nsenter --net=/run/netns/${ns} ${PODMAN.bin} ${args}`,
          { env: PODMAN.env },
        );
      const pod = `${manifest}-pod-0`;
      try {
        await ok(cmd`ip netns exec ${ns} ip link set lo up`);
        const played = await podman(cmd`kube play ${file}`);
        assert.equal(played.code, 0, played.stderr);
        const deadline = Date.now() + 15_000;
        while (
          (await exec(cmd`ip netns exec ${ns} ip link show ptun0`)).code !== 0
        ) {
          assert.ok(Date.now() < deadline, `${manifest}: no ptun0`);
          await new Promise((r) => setTimeout(r, 100));
        }
        assert.notEqual(
          (await exec(cmd`ip link show ptun0`)).code,
          0,
          "ptun0 on this machine",
        );
        assert.equal(Deno.readTextFileSync(iface), "ptun0");
        const container = `${pod}-phantun`;
        const [, , phantun] = await processChain(PODMAN, container);
        assert.equal(capEff(phantun), NET_ADMIN);
        assert.match(phantun, /^Uid:\s+65532\s/m);
        // kube down of Podman 4.3 kills with SIGKILL: stop the pod first,
        // as Kubernetes does (SIGTERM, then the grace period).
        assert.equal((await podman(cmd`pod stop ${pod}`)).code, 0);
        assert.equal(
          await inspect(PODMAN, "{{.State.ExitCode}}", container),
          "143",
        );
        assert.equal(Deno.readTextFileSync(iface), "");
      } finally {
        await podman(cmd`kube down ${file}`);
        await exec(cmd`ip netns del ${ns}`);
      }
    }
  },
  PODMAN,
  missingCommand("catatonit"),
);

imageTest(
  "docker run --restart on-failure with a phantun that crashes at every start keeps IFACE_FILE consistent at every step",
  async () => {
    const report = await restartLoop({ docker: DOCKER.bin, image: IMAGE });
    assert.equal(report.starts, 6);
  },
);
