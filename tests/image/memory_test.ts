/**
 * No writable-executable memory (DESIGN.md §8): while real phantun runs, no
 * process of the runtime maps a page writable and executable at once, nor
 * executable memory that no file backs, in the image under the profile (both
 * engines) and under the flag form (Deno without its JIT). Two controls show
 * that the check and the profile bite: Deno with its JIT maps rwx memory
 * under the engine's default profile, and cannot start under the runtime's.
 */
import assert from "node:assert/strict";
import { phantunDir } from "../../e2e/topology.ts";
import { V8_FLAGS } from "../../scripts/launch.ts";
import {
  cmd,
  DENO_RUN,
  type Engine,
  engineExec,
  engineOk,
  ENGINES,
  exec,
  imageTest,
  inspect,
  ok,
  pidOf,
  PREFIX,
  processChain,
  remove,
  SECCOMP,
  server,
  tunNode,
  waitForLink,
} from "./harness.ts";
import {
  IS_ROOT,
  manifestFlags,
  missingCommand,
  output,
  startSupervisor,
  tempDir,
  testWhen,
  waitFor,
} from "../helpers.ts";

/**
 * The mappings of /proc/PID/maps that break writable xor executable: those
 * both writable and executable, and those executable with no file behind
 * them (anonymous, heap, stack, memfd, deleted), the vDSO and vsyscall pages
 * (the kernel's) aside. Also asserts that some executable mapping is there,
 * so that an unreadable or empty map cannot pass.
 */
async function wxMappings(pid: number): Promise<string[]> {
  const maps = (await ok(cmd`cat /proc/${pid}/maps`)).split("\n");
  const executable = maps
    .map((line) => line.match(/^\S+ (\S{4}) \S+ \S+ \S+\s*(.*)$/)!)
    .filter((m) => m[1].includes("x"));
  assert.ok(executable.length > 0, `no executable mapping in ${pid}'s maps`);
  const fromFile = (path: string) =>
    (path.startsWith("/") && !path.startsWith("/memfd:") &&
      !path.endsWith(" (deleted)")) || ["[vdso]", "[vsyscall]"].includes(path);
  return executable
    .filter(([, perms, path]) => perms.includes("w") || !fromFile(path))
    .map(([line]) => line);
}

/** A server container of the image, `flags` first, its TUN device added. */
async function runServer(
  engine: Engine,
  name: string,
  flags: string[],
): Promise<void> {
  const tun = await tunNode();
  await remove(engine, name);
  await engineOk(
    engine,
    cmd`run -d --name ${name} --network none --cap-add NET_ADMIN --device ${tun}:/dev/net/tun ${
      server(engine, flags)
    }`,
  );
}

for (const engine of ENGINES) {
  imageTest(
    `${engine.name}: under the profile, tini, Deno and phantun map nothing writable and executable and no anonymous executable memory while phantun runs; Deno with its JIT maps rwx memory under the engine's default profile and cannot start under the runtime's`,
    async () => {
      const name = `${PREFIX}memory`;
      try {
        await runServer(engine, name, cmd`--security-opt seccomp=${SECCOMP}`);
        await waitForLink(engine, name, "ptun0");
        for (const status of await processChain(engine, name)) {
          assert.deepEqual(await wxMappings(pidOf(status)), [], status);
        }
        await remove(engine, name);

        // The same supervisor with V8's JIT, through tini as the ENTRYPOINT has it.
        const jit = cmd`--entrypoint /usr/bin/tini`;
        const withJit = DENO_RUN.filter((word) => word !== V8_FLAGS);
        const start = (flags: string[]) =>
          engineOk(
            engine,
            cmd`run -d --name ${name} --network none --cap-add NET_ADMIN ${flags} ${jit} -e MODE=server ${engine.image} -- ${withJit} -- --local 4567 --remote 127.0.0.1:1234 --tun ptun0`,
          );
        await start(cmd`--device ${await tunNode()}:/dev/net/tun`);
        await waitForLink(engine, name, "ptun0");
        const [, deno] = await processChain(engine, name);
        assert.notDeepEqual(await wxMappings(pidOf(deno)), [], "the JIT's");
        await remove(engine, name);

        await start(cmd`--security-opt seccomp=${SECCOMP}`);
        await waitFor(
          "Deno with its JIT to fail under the profile",
          async () =>
            (await inspect(engine, "{{.State.Status}}", name)) === "exited",
          30_000,
          200,
        );
        const code = await inspect(engine, "{{.State.ExitCode}}", name);
        const { stderr } = await engineExec(engine, cmd`logs ${name}`);
        assert.notEqual(code, "0", stderr);
        // V8 expects ENOMEM when it cannot map its code space.
        assert.match(stderr, /Check failed: 12 == /);
      } finally {
        await remove(engine, name);
      }
    },
    engine,
  );
}

const PHANTUN = phantunDir();

/** Why the flag form cannot run real phantun here, or null. */
function missingFlagForm(): string | null {
  if (!IS_ROOT) return "needs root (a network namespace, TUN)";
  try {
    Deno.statSync(`${PHANTUN}/phantun_server`);
  } catch {
    return `no phantun binaries in ${PHANTUN} (run scripts/provision-phantun.sh)`;
  }
  return missingCommand("ip");
}

testWhen(
  missingFlagForm(),
  "under the flag form, Deno (without its JIT) and phantun map nothing writable and executable and no anonymous executable memory while phantun runs",
  async () => {
    const ns = `${PREFIX}memory-${Deno.pid}`;
    await exec(cmd`ip netns del ${ns}`);
    await ok(cmd`ip netns add ${ns}`);
    try {
      const scratch = tempDir();
      const ifaceFile = `${scratch}/iface`;
      const install = { dir: PHANTUN, record: scratch, scratch };
      const run = startSupervisor(install, {
        wrapper: cmd`ip netns exec ${ns}`,
        flags: manifestFlags(PHANTUN, ifaceFile),
        args:
          cmd`--phantun-dir=${PHANTUN} -- --local 4567 --remote 127.0.0.1:1234 --tun ptun0`,
        env: { MODE: "server", IFACE_NAME: "ptun0", IFACE_FILE: ifaceFile },
      });
      try {
        await waitFor(
          "phantun's ptun0",
          async () => (await exec(cmd`ip -n ${ns} link show ptun0`)).code === 0,
          15_000,
          100,
        );
        const deno = run.process.pid;
        const phantun = Number(
          output("sh", "-c", `cat /proc/${deno}/task/*/children`).trim(),
        );
        for (const pid of [deno, phantun]) {
          assert.deepEqual(await wxMappings(pid), [], `pid ${pid}`);
        }
      } finally {
        run.process.kill("SIGTERM");
        assert.equal((await run.finished).code, 143);
      }
    } finally {
      await exec(cmd`ip netns del ${ns}`);
    }
  },
);
