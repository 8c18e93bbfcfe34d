/**
 * compose.yaml: under Compose v2 the README's commands carry UDP echo and
 * stop with 143; a missing handoff file stops `up` instead of becoming a
 * directory; after a "reboot" (the engine restarted, /run emptied, the shipped
 * tmpfiles.d file applied) the services come back by their restart policy.
 * Compose v1 cannot read the file. And the engine's restart loop with a
 * phantun that crashes at every start.
 */
import assert from "node:assert/strict";
import { restartLoop } from "../restart_loop.ts";
import { cgroupFile, mib } from "./limits.ts";
import { missingCommand, waitFor } from "../helpers.ts";
import {
  assertEcho,
  boot,
  capEff,
  cmd,
  DOCKER,
  type Engine,
  engineExec,
  exec,
  IMAGE,
  imageTest,
  inspect,
  installTmpfiles,
  ipOf,
  isFile,
  lines,
  NET_ADMIN,
  ok,
  PREFIX,
  processChain,
  readme,
  readmeOk,
  remove,
  ROOT,
  SECCOMP,
  SECCOMP_FILE,
  tempDir,
  TMPFILES_CONF,
  tunNode,
  waitForLink,
  withHosts,
} from "./harness.ts";

/** README block docker-compose. */
const COMPOSE = String.raw`docker compose up -d phantun-server
PHANTUN_SERVER=server.example.com docker compose up -d phantun-client
docker compose stop`;

const PLUGIN = `${Deno.env.get("HOME")}/.docker/cli-plugins/docker-compose`;
const MISSING_PLUGIN = isFile(PLUGIN)
  ? null
  : "the docker compose plugin is missing (scripts/provision-tools.sh)";

/** The two services and their containers in project `project`. */
const SERVICES = ["phantun-server", "phantun-client"] as const;
const container = (project: string, service: string) =>
  `${project}-${service}-1`;

/**
 * compose.yaml as shipped, with its bind sources under `root` instead of /,
 * and an override of what would touch this machine: its network, its device.
 * Returns the `docker compose` words that use them as project `project`.
 */
function composeFiles(
  root: string,
  project: string,
  override: (service: string) => Record<string, unknown>,
): string {
  const dir = tempDir();
  const text = Deno.readTextFileSync(`${ROOT}compose.yaml`);
  const moved = text.replaceAll(
    "source: /run/phantun/",
    `source: ${root}/run/phantun/`,
  ).replaceAll(SECCOMP_FILE, SECCOMP);
  assert.notEqual(moved, text, "compose.yaml has no /run/phantun bind source");
  Deno.writeTextFileSync(`${dir}/compose.yaml`, moved);
  Deno.writeTextFileSync(
    `${dir}/override.yaml`,
    JSON.stringify({
      services: Object.fromEntries(
        SERVICES.map((service) => [service, override(service)]),
      ),
    }),
  );
  return `docker compose --project-directory ${ROOT} -f ${dir}/compose.yaml -f ${dir}/override.yaml -p ${project}`;
}

/** The override for a namespace of the container's own: no traffic, only the TUN. */
const isolated = (tun: string) => () => ({
  image: IMAGE,
  network_mode: "none",
  devices: [`${tun}:/dev/net/tun`],
});

/**
 * Each service's container runs under its mem_limit and pids_limit, as
 * `docker compose config` reads them from the file, and has stayed under
 * both (peak memory, tasks now). Prints the figures.
 */
async function assertLimits(compose: string, names: string[]): Promise<void> {
  const config = JSON.parse(
    await readmeOk(DOCKER, "docker compose config --format json", [[
      "docker compose",
      compose,
    ]]),
  );
  for (const [i, name] of names.entries()) {
    const service = config.services[SERVICES[i]];
    const memory = Number(service.mem_limit);
    const pids = Number(service.pids_limit);
    assert.ok(memory > 0 && pids > 0, JSON.stringify(service));
    assert.equal(
      Number(await inspect(DOCKER, "{{.HostConfig.Memory}}", name)),
      memory,
    );
    assert.equal(
      Number(await inspect(DOCKER, "{{.HostConfig.PidsLimit}}", name)),
      pids,
    );
    const [tini] = await processChain(DOCKER, name);
    assert.equal(
      Number(await cgroupFile(tini, "memory.limit_in_bytes")),
      memory,
    );
    const peak = Number(await cgroupFile(tini, "memory.max_usage_in_bytes"));
    const tasks = Number(await cgroupFile(tini, "pids.current", "pids"));
    console.log(
      `${SERVICES[i]}: memory peak ${mib(peak)} (mem_limit ${
        mib(memory)
      }), ${tasks} tasks (pids_limit ${pids})`,
    );
    assert.ok(peak < memory);
    assert.ok(tasks < pids);
  }
}

/** `docker compose down` of the project `compose` (from {@link composeFiles}) runs. */
function down(compose: string) {
  return readme(DOCKER, "docker compose down", [["docker compose", compose]]);
}

imageTest(
  "compose.yaml under Compose v2: the README's commands start the server and the client, which carry UDP echo within their mem_limit and pids_limit, and stop them with 143",
  async () => {
    const tun = await tunNode();
    const root = await installTmpfiles();
    await withHosts(DOCKER, "compose", async (hosts) => {
      const project = `${PREFIX}compose`;
      const compose = composeFiles(root, project, (service) => ({
        image: IMAGE,
        network_mode: `container:${hosts[service.slice(8) as "server"]}`,
        devices: [`${tun}:/dev/net/tun`],
      }));
      const names = SERVICES.map((service) => container(project, service));
      const file = (mode: string) => `${root}/run/phantun/${mode}.iface`;
      try {
        await readmeOk(DOCKER, lines(COMPOSE, 0, 2), [
          ["docker compose", compose],
          ["server.example.com", await ipOf(DOCKER, hosts.server)],
        ]);
        for (const name of names) await waitForLink(DOCKER, name, "ptun0");
        assert.equal(Deno.readTextFileSync(file("server")), "ptun0");
        await assertEcho(
          DOCKER,
          `container:${hosts.client}`,
          "127.0.0.1",
          1234,
        );
        const [, deno, phantun] = await processChain(DOCKER, names[1]);
        assert.equal(capEff(deno), 0n);
        assert.equal(capEff(phantun), NET_ADMIN);
        await assertLimits(compose, names);
        await readmeOk(DOCKER, lines(COMPOSE, 2), [[
          "docker compose",
          compose,
        ]]);
        for (const name of names) {
          assert.equal(
            await inspect(DOCKER, "{{.State.ExitCode}}", name),
            "143",
          );
        }
        assert.equal(Deno.readTextFileSync(file("server")), "");
        assert.equal(Deno.readTextFileSync(file("client")), "");
      } finally {
        await down(compose);
      }
    });
  },
  DOCKER,
  MISSING_PLUGIN,
);

imageTest(
  "compose.yaml under Compose v2 refuses to start a service whose handoff file is missing, once and loudly, and makes no directory in its place",
  async () => {
    const tun = await tunNode();
    const root = tempDir(); // a fresh /run: no /run/phantun at all
    await ok(cmd`install -d ${root}/run/phantun`);
    const project = `${PREFIX}compose-missing`;
    const compose = composeFiles(root, project, isolated(tun));
    try {
      const result = await readme(DOCKER, lines(COMPOSE, 0, 1), [
        ["docker compose", compose],
      ]);
      assert.notEqual(result.code, 0);
      assert.match(
        result.stderr,
        new RegExp(
          `bind source path does not exist: ${root}/run/phantun/server\\.iface`,
        ),
      );
      assert.deepEqual([...Deno.readDirSync(`${root}/run/phantun`)], []);
    } finally {
      await down(compose);
    }
  },
  DOCKER,
  MISSING_PLUGIN,
);

/**
 * A Docker engine of the test's own (its own data, sockets, containerd
 * namespace and network namespace, so that its bridge and rules never reach
 * this machine's), so that the test can stop and start it as a reboot does
 * without touching this machine's engine. The image is loaded into it.
 */
async function withOwnEngine(
  fn: (
    engine: Engine,
    restart: (between: () => Promise<void>) => Promise<void>,
  ) => Promise<void>,
): Promise<void> {
  const dir = tempDir();
  const socket = `${dir}/docker.sock`;
  const ns = `${PREFIX}engine`;
  const engine: Engine = {
    ...DOCKER,
    env: { ...DOCKER.env, DOCKER_HOST: `unix://${socket}` },
  };
  await exec(cmd`ip netns del ${ns}`);
  await ok(cmd`ip netns add ${ns}`);
  const start = async () => {
    const daemon = new Deno.Command("nsenter", {
      args:
        cmd`--net=/run/netns/${ns} dockerd --data-root ${dir}/data --exec-root ${dir}/exec
        --pidfile ${dir}/dockerd.pid --host unix://${socket} --iptables=false --ip6tables=false
        --ip-forward=false --ip-masq=false --containerd-namespace ${PREFIX}reboot
        --containerd-plugins-namespace ${PREFIX}reboot-plugins`,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    await waitFor(
      "the test's dockerd to start",
      async () => (await engineExec(engine, cmd`info`)).code === 0,
      30_000,
      200,
    );
    return daemon;
  };
  // dockerd stops its containers (SIGTERM, their stop timeout) as it exits.
  const stop = async (daemon: Deno.ChildProcess) => {
    daemon.kill("SIGTERM");
    await daemon.status;
  };
  let daemon = await start();
  try {
    await ok([
      "sh",
      "-c",
      `${DOCKER.bin} save ${IMAGE} | DOCKER_HOST=unix://${socket} ${DOCKER.bin} load -q`,
    ]);
    await fn(engine, async (between) => {
      await stop(daemon);
      await between();
      daemon = await start();
    });
  } finally {
    const left = await engineExec(engine, cmd`ps -aq`);
    await remove(engine, ...left.stdout.split(/\s+/).filter((id) => id !== ""));
    await stop(daemon);
    await exec(cmd`umount -R ${dir}/data`);
    await exec(cmd`ip netns del ${ns}`);
  }
}

imageTest(
  "after a reboot (engine restarted, /run emptied, the shipped tmpfiles.d file applied) the compose services come back by their restart policy and hand off ptun0; without the file applied they stay down with the engine's error and no directory is made",
  async () => {
    const tun = await tunNode();
    const root = await installTmpfiles();
    const project = `${PREFIX}compose-reboot`;
    const compose = composeFiles(root, project, isolated(tun));
    const names = SERVICES.map((service) => container(project, service));
    const files = ["server", "client"].map((mode) =>
      `${root}/run/phantun/${mode}.iface`
    );
    await withOwnEngine(async (engine, reboot) => {
      const up = () =>
        waitFor(
          "the services to hand off ptun0",
          () => files.every((file) => Deno.readTextFileSync(file) === "ptun0"),
          20_000,
          200,
        );
      await readmeOk(DOCKER, lines(COMPOSE, 0, 2), [
        ["docker compose", compose],
        // No DNS in a namespace of its own: the server as an address.
        ["server.example.com", "127.0.0.1"],
      ], { env: engine.env });
      await up();
      // A reboot with the tmpfiles.d file installed: the files are back, empty.
      await reboot(async () => {
        for (const file of files) assert.equal(Deno.readTextFileSync(file), "");
        await boot(root);
      });
      await up();
      for (const name of names) {
        assert.equal(await inspect(engine, "{{.State.Running}}", name), "true");
        assert.equal(await inspect(engine, "{{.RestartCount}}", name), "0");
      }
      // A reboot without it: the engine cannot mount what is not there.
      await reboot(async () => {
        Deno.removeSync(`${root}${TMPFILES_CONF}`);
        await boot(root);
      });
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      for (const name of names) {
        assert.equal(
          await inspect(engine, "{{.State.Running}}", name),
          "false",
        );
        assert.match(
          await inspect(engine, "{{.State.Error}}", name),
          /bind source path does not exist|no such file or directory/,
        );
      }
      assert.ok(!isFile(files[0]));
      assert.equal((await exec(cmd`test -e ${root}/run/phantun`)).code, 1);
    });
  },
  DOCKER,
  MISSING_PLUGIN ?? missingCommand("systemd-tmpfiles"),
);

imageTest(
  "Compose v1 (docker-compose) cannot read compose.yaml: it refuses create_host_path, as README says",
  async () => {
    const result = await exec(
      cmd`docker-compose -f ${ROOT}compose.yaml config`,
    );
    assert.notEqual(result.code, 0);
    assert.match(
      result.stderr,
      /volumes contains unsupported option: 'create_host_path'/,
    );
  },
  DOCKER,
  missingCommand("docker-compose"),
);

imageTest(
  "docker run --restart on-failure with a phantun that crashes at every start keeps IFACE_FILE consistent at every step",
  async () => {
    const report = await restartLoop({ docker: DOCKER.bin, image: IMAGE });
    assert.equal(report.starts, 6);
  },
);
