/**
 * SIGUSR1 never opens a debugger port. Deno (2.9.2 and later) opens its V8
 * inspector on 127.0.0.1:9229 when SIGUSR1 arrives more than half a second
 * after start, whatever the permissions; every launcher therefore starts Deno
 * with SIGUSR1 blocked (`env --block-signal=USR1`, see LAUNCHER). Each test
 * runs in a network namespace of its own, with only loopback, and reads the
 * listening sockets of that namespace from /proc.
 */
import assert from "node:assert/strict";
import {
  installFakePhantun,
  IS_ROOT,
  killFake,
  listeners,
  missingCommand,
  output,
  readRecord,
  startSupervisor,
  taskCommand,
  tempDir,
  testWhen,
  waitFor,
} from "./helpers.ts";

const MISSING = IS_ROOT
  ? missingCommand("ip", "unshare", "mount", "env")
  : "needs root (a network namespace of its own)";

/** Runs `fn` with a fresh network namespace whose loopback is up. */
async function withNamespace(fn: (ns: string) => Promise<void>) {
  const ns = `phantun-runtime-usr1-${Deno.pid}-${
    crypto.randomUUID().slice(0, 8)
  }`;
  output("ip", "netns", "add", ns);
  try {
    output("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up");
    await fn(ns);
  } finally {
    output("ip", "netns", "del", ns);
  }
}

/** True when SIGUSR1 is blocked in every thread of `pid` and pending. */
function usr1BlockedAndPending(pid: number): boolean {
  const bit = 1n << 9n;
  const threads = output("ls", `/proc/${pid}/task`).trim().split("\n");
  const all = (field: string, status: string) =>
    (BigInt(`0x${status.match(new RegExp(`^${field}:\\s+(\\w+)$`, "m"))![1]}`) &
      bit) !== 0n;
  const process = output("cat", `/proc/${pid}/status`);
  return threads.every((task) =>
    all("SigBlk", output("cat", `/proc/${pid}/task/${task}/status`))
  ) && all("ShdPnd", process);
}

/** True when `pid` has a handler for SIGUSR1 (its SigCgt has bit 10). */
function usr1Caught(pid: number): boolean {
  const status = output("cat", `/proc/${pid}/status`);
  return (BigInt(`0x${status.match(/^SigCgt:\s+(\w+)$/m)![1]}`) &
    (1n << 9n)) !== 0n;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Sends SIGUSR1 to each of `pids` early (0.15 s after `started`, before
 * Deno's own listener at 0.5 s) and late (0.8 s and 2 s), and each time
 * watches the namespace for a second: no listener may appear.
 */
async function assertNoListenerAfterSigusr1(started: number, pids: number[]) {
  for (const at of [150, 800, 2_000]) {
    await sleep(Math.max(0, started + at - Date.now()));
    for (const pid of pids) Deno.kill(pid, "SIGUSR1");
    for (let i = 0; i < 10; i++) {
      await sleep(100);
      for (const pid of pids) {
        assert.deepEqual(listeners(pid), [], `${at} ms, pid ${pid}`);
      }
    }
  }
}

testWhen(
  MISSING,
  "launched as documented, SIGUSR1 at any time opens no listening socket, is not forwarded to a phantun that would survive it, and SIGTERM still gives 143",
  async () => {
    await withNamespace(async (ns) => {
      const fake = installFakePhantun(); // its SIGUSR1 trap records and survives
      const started = Date.now();
      const run = startSupervisor(fake, {
        args: [`--phantun-dir=${fake.dir}`, "--"],
        env: { MODE: "server" },
        wrapper: ["ip", "netns", "exec", ns],
      });
      try {
        // env has exec'd deno long before the first signal, at 150 ms.
        await assertNoListenerAfterSigusr1(started, [run.process.pid]);
        await waitFor("fake ready", () => readRecord(fake, "ready") !== null);
        assert.ok(usr1BlockedAndPending(run.process.pid));
        assert.equal(readRecord(fake, "signals"), null, "forwarded");
        run.process.kill("SIGTERM");
        const result = await run.finished;
        assert.equal(result.code, 143);
        assert.equal(result.stderr, "");
        assert.equal(readRecord(fake, "signals"), "TERM\n");
      } finally {
        killFake(fake);
      }
    });
  },
);

testWhen(
  MISSING,
  "Deno itself still opens its inspector on SIGUSR1 when it is not blocked (if this fails, Deno changed: revisit DESIGN.md, Signals)",
  async () => {
    await withNamespace(async (ns) => {
      const fake = installFakePhantun();
      const run = startSupervisor(fake, {
        args: [`--phantun-dir=${fake.dir}`, "--"],
        env: { MODE: "server" },
        launcher: [],
        wrapper: ["ip", "netns", "exec", ns],
      });
      try {
        await waitFor("fake ready", () => readRecord(fake, "ready") !== null);
        // Deno's listener comes 0.5 s after start, later on a loaded machine:
        // before it, SIGUSR1 would kill Deno.
        await waitFor(
          "Deno's SIGUSR1 handler",
          () => usr1Caught(run.process.pid),
          10_000,
        );
        run.process.kill("SIGUSR1");
        await waitFor(
          "the inspector on 127.0.0.1:9229",
          () =>
            listeners(run.process.pid).some((line) =>
              line.includes(" 0100007F:240D ")
            ),
          5_000,
        );
        run.process.kill("SIGTERM");
        const result = await run.finished;
        assert.equal(result.code, 143);
        assert.match(
          result.stderr,
          /Debugger listening on ws:\/\/127\.0\.0\.1:9229\//,
        );
      } finally {
        killFake(fake);
      }
    });
  },
);

testWhen(
  MISSING,
  "deno task start (env --block-signal=USR1, -P=production): SIGUSR1 to the task or the supervisor opens no listening socket; the handoff and the status are the contract's",
  async () => {
    await withNamespace(async (ns) => {
      // The production grants name /usr/local/bin/phantun_* and
      // /run/phantun/iface: taskCommand's private mount namespace puts the
      // fakes and a state directory of this test there.
      const fake = installFakePhantun();
      const state = tempDir();
      const task = taskCommand(fake, state, {
        prefix: ["ip", "netns", "exec", ns],
        args: ["--local", "4567"],
      }).spawn();
      const started = Date.now();
      let supervisor = 0;
      try {
        await waitFor("fake ready", () => readRecord(fake, "ready") !== null);
        supervisor = Number(
          output("sh", "-c", `cat /proc/${task.pid}/task/*/children`).trim(),
        );
        assert.equal(
          readRecord(fake, "program"),
          "/usr/local/bin/phantun_server",
        );
        assert.equal(Deno.readTextFileSync(`${state}/iface`), "ptun0");
        await assertNoListenerAfterSigusr1(started, [task.pid, supervisor]);
        assert.ok(usr1BlockedAndPending(supervisor));
        assert.equal(readRecord(fake, "signals"), null, "forwarded");
        Deno.kill(supervisor, "SIGTERM");
        const { code, stderr } = await task.output();
        assert.equal(code, 143, new TextDecoder().decode(stderr));
        assert.equal(Deno.readTextFileSync(`${state}/iface`), "");
        assert.equal(readRecord(fake, "signals"), "TERM\n");
      } finally {
        killFake(fake);
        try {
          task.kill("SIGKILL");
        } catch {
          // exited
        }
      }
    });
  },
);
