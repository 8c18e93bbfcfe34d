/**
 * Exit statuses and the handoff file on every way phantun ends or fails to
 * start, plus the runtime's own one-line errors.
 */
import assert from "node:assert/strict";
import {
  assertRuntimeError,
  fakeTest,
  installFakePhantun,
  manifestFlags,
  readRecord,
  runSupervisor,
  startSupervisor,
  waitFor,
} from "./helpers.ts";

/** Runs a client with the handoff on; returns the result and the file's content afterwards. */
async function runWithHandoff(
  setup: (dir: string) => void,
  env: Record<string, string>,
) {
  const fake = installFakePhantun();
  setup(fake.dir);
  const file = `${fake.scratch}/iface`;
  const result = await runSupervisor(fake, {
    args: [`--phantun-dir=${fake.dir}`, "--"],
    env: { MODE: "client", IFACE_FILE: file, IFACE_NAME: "ptun0", ...env },
    flags: manifestFlags(fake.dir, file),
  });
  return { result, fake, after: Deno.readTextFileSync(file) };
}

const untouched = () => {};

for (const code of [0, 1, 2, 3, 42, 255]) {
  Deno.test(`phantun exiting ${code} makes the supervisor exit ${code} and empties IFACE_FILE`, async () => {
    const { result, fake, after } = await runWithHandoff(untouched, {
      FAKE_EXIT: String(code),
    });
    assert.equal(result.code, code);
    assert.equal(result.signal, null);
    assert.equal(readRecord(fake, "iface"), "ptun0");
    assert.equal(after, "");
  });
}

for (
  const [signal, code] of [["KILL", 137], ["SEGV", 139], ["ABRT", 134], [
    "TERM",
    143,
  ]] as const
) {
  Deno.test(`phantun dying of SIG${signal} makes the supervisor exit ${code} and empties IFACE_FILE`, async () => {
    const { result, after } = await runWithHandoff(untouched, {
      FAKE_SIGNAL: signal,
    });
    assert.equal(result.code, code);
    assert.equal(result.signal, null);
    assert.equal(result.stderr, "");
    assert.equal(after, "");
  });
}

Deno.test("a missing phantun binary exits 127 with one line naming it, IFACE_FILE emptied", async () => {
  const { result, after } = await runWithHandoff(
    (dir) => Deno.removeSync(`${dir}/phantun_client`),
    {},
  );
  assert.equal(result.code, 127);
  assertRuntimeError(result, "phantun_client");
  assert.equal(after, "");
});

Deno.test("a phantun binary that is not executable exits 126 with one line, IFACE_FILE emptied", async () => {
  const { result, after } = await runWithHandoff(
    (dir) => Deno.chmodSync(`${dir}/phantun_client`, 0o644),
    {},
  );
  assert.equal(result.code, 126);
  assertRuntimeError(result, "phantun_client");
  assert.equal(after, "");
});

Deno.test("a phantun binary that is a directory exits 126", async () => {
  const { result, after } = await runWithHandoff((dir) => {
    Deno.removeSync(`${dir}/phantun_client`);
    Deno.mkdirSync(`${dir}/phantun_client`);
  }, {});
  assert.equal(result.code, 126);
  assertRuntimeError(result, "phantun_client");
  assert.equal(after, "");
});

for (const variable of ["LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT"]) {
  Deno.test(`${variable} set under the scoped run grant ends in one clear line and exit 2, not a stack trace`, async () => {
    const { result, fake, after } = await runWithHandoff(untouched, {
      [variable]: "/nonexistent",
    });
    assert.equal(result.code, 2);
    const ours = result.stderr.split("\n").filter((line) =>
      line.startsWith("phantun-runtime:")
    );
    assert.equal(ours.length, 1, result.stderr);
    assert.ok(ours[0].includes(variable), ours[0]);
    assert.ok(!result.stderr.includes("    at "), result.stderr);
    assert.equal(readRecord(fake, "pid"), null);
    assert.equal(after, "");
  });
}

fakeTest(
  "a burst of hundreds of signals neither crashes nor stalls the supervisor",
  async (fake) => {
    const run = startSupervisor(fake, {
      args: [`--phantun-dir=${fake.dir}`, "--"],
      env: { MODE: "client" },
    });
    await waitFor("fake ready", () => readRecord(fake, "ready") !== null);
    const burst = ["SIGHUP", "SIGUSR1", "SIGUSR2", "SIGQUIT"] as const;
    for (let i = 0; i < 400; i++) run.process.kill(burst[i % burst.length]);
    // Standard signals coalesce while pending, so each forwarded kind arrives
    // at least once; SIGUSR1 is blocked, never forwarded.
    const forwarded = burst.filter((signal) => signal !== "SIGUSR1");
    await waitFor("every forwarded kind", () => {
      const seen = new Set((readRecord(fake, "signals") ?? "").split("\n"));
      return forwarded.every((signal) => seen.has(signal.slice(3)));
    });
    run.process.kill("SIGTERM");
    const result = await run.finished;
    assert.equal(result.code, 143);
    assert.equal(result.stderr, "");
    assert.ok(!readRecord(fake, "signals")!.includes("USR1"));
  },
);
