/**
 * Security: the permission audit. Across every supervisor scenario Deno's
 * permission audit log holds only the manifest's accesses, and strace shows
 * the supervisor executes only the chosen phantun binary and opens no socket.
 */
import assert from "node:assert/strict";
import {
  DENO,
  type FakeInstall,
  installFakePhantun,
  killFake,
  manifestFlags,
  missingCommand,
  output,
  readRecord,
  type RunResult,
  startSupervisor,
  testWhen,
  waitFor,
} from "../helpers.ts";
import { removeInstall } from "./harness.ts";

/** One supervisor scenario for the audit. */
type Scenario = {
  readonly name: string;
  readonly mode?: string;
  /** With IFACE_FILE (granted) and IFACE_NAME. */
  readonly handoff?: boolean;
  readonly env?: Record<string, string>;
  readonly args?: (fake: FakeInstall) => string[];
  readonly setup?: (fake: FakeInstall, file: string) => void;
  /** Drives a running supervisor; without it phantun ends by itself. */
  readonly drive?: (
    run: ReturnType<typeof startSupervisor>,
    fake: FakeInstall,
  ) => Promise<void>;
  readonly code: number;
};

const ready = (fake: FakeInstall) =>
  waitFor("fake ready", () => readRecord(fake, "ready") !== null);

const SCENARIOS: readonly Scenario[] = [
  {
    name: "client, handoff, exit 0",
    handoff: true,
    env: { FAKE_EXIT: "0" },
    code: 0,
  },
  {
    name: "server, handoff, exit 3",
    mode: "server",
    handoff: true,
    env: { FAKE_EXIT: "3" },
    code: 3,
  },
  {
    name: "no handoff, IFACE_NAME only",
    env: { FAKE_EXIT: "0", IFACE_NAME: "ptun0" },
    code: 0,
  },
  {
    name: "phantun dies of SIGSEGV",
    handoff: true,
    env: { FAKE_SIGNAL: "SEGV" },
    code: 139,
  },
  {
    name: "forwarded signals, then SIGTERM",
    mode: "server",
    handoff: true,
    drive: async (run, fake) => {
      await ready(fake);
      for (
        const signal of ["SIGHUP", "SIGQUIT", "SIGUSR2"] as const
      ) {
        run.process.kill(signal);
        await waitFor(
          signal,
          () => readRecord(fake, "signals")?.includes(signal.slice(3)) ?? false,
        );
      }
      run.process.kill("SIGTERM");
    },
    code: 143,
  },
  {
    name: "phantun ignores SIGINT, then SIGKILL",
    handoff: true,
    env: { FAKE_IGNORE_TERM: "1" },
    drive: async (run, fake) => {
      await ready(fake);
      run.process.kill("SIGINT");
      await waitFor("INT", () => readRecord(fake, "signals") === "INT\n");
      killFake(fake);
    },
    code: 137,
  },
  { name: "bad MODE", mode: "Client", handoff: true, code: 2 },
  {
    name: "bad IFACE_NAME",
    handoff: true,
    env: { IFACE_NAME: "a/b" },
    code: 2,
  },
  {
    name: "IFACE_FILE is a link",
    handoff: true,
    setup: (fake, file) => Deno.symlinkSync(`${fake.scratch}/target`, file),
    code: 2,
  },
  {
    name: "IFACE_FILE is a FIFO",
    handoff: true,
    setup: (_fake, file) => output("mkfifo", file),
    code: 2,
  },
  {
    name: "IFACE_FILE outside the grant",
    env: { IFACE_FILE: "/etc/passwd", IFACE_NAME: "ptun0", FAKE_EXIT: "0" },
    code: 2,
  },
  {
    name: "binary missing",
    handoff: true,
    setup: (fake) => Deno.removeSync(`${fake.dir}/phantun_client`),
    code: 127,
  },
  {
    name: "binary not executable",
    handoff: true,
    setup: (fake) => Deno.chmodSync(`${fake.dir}/phantun_client`, 0o644),
    code: 126,
  },
  { name: "--help", args: () => ["--help"], code: 0 },
  { name: "--version", args: () => ["--version"], code: 0 },
  { name: "no --", args: (fake) => [`--phantun-dir=${fake.dir}`], code: 2 },
];

/** Runs one scenario; returns its fake install and IFACE_FILE path. */
async function runScenario(
  scenario: Scenario,
  extra: { env?: Record<string, string>; wrapper?: string[] } = {},
): Promise<{ fake: FakeInstall; file: string; result: RunResult }> {
  const fake = installFakePhantun();
  const file = `${fake.scratch}/iface`;
  scenario.setup?.(fake, file);
  const env: Record<string, string> = {
    MODE: scenario.mode ?? "client",
    ...(scenario.handoff ? { IFACE_FILE: file, IFACE_NAME: "ptun0" } : {}),
    ...scenario.env,
    ...extra.env,
  };
  const run = startSupervisor(fake, {
    args: scenario.args?.(fake) ?? [`--phantun-dir=${fake.dir}`, "--", "-4"],
    env,
    flags: manifestFlags(fake.dir, scenario.handoff ? file : undefined),
    wrapper: extra.wrapper,
  });
  await scenario.drive?.(run, fake);
  const result = await run.finished;
  assert.equal(
    result.code,
    scenario.code,
    `${scenario.name}: ${result.stderr}`,
  );
  return { fake, file, result };
}

type AuditEntry = { permission: string; value: string | null };

Deno.test("across every supervisor scenario the permission audit log holds only the manifest's accesses", async () => {
  const seen = new Set<string>();
  for (const scenario of SCENARIOS) {
    const audit = Deno.makeTempFileSync({ suffix: ".jsonl" });
    // After the launcher, which removes DENO_AUDIT_PERMISSIONS (scripts/deno_env.ts).
    const { fake, file } = await runScenario(scenario, {
      wrapper: ["env", `DENO_AUDIT_PERMISSIONS=${audit}`],
    });
    const binary = `${fake.dir}/phantun_${scenario.mode ?? "client"}`;
    const allowed = new Set([
      "env MODE",
      "env IFACE_NAME",
      "env IFACE_FILE",
      `read ${file}`,
      `write ${file}`,
      `run ${binary}`,
    ]);
    const entries = Deno.readTextFileSync(audit).split("\n").filter((l) => l)
      .map((line) => JSON.parse(line) as AuditEntry);
    for (const { permission, value } of entries) {
      const access = `${permission} ${value}`;
      assert.ok(allowed.has(access), `${scenario.name}: ${access}`);
      seen.add(access.replace(file, "IFACE_FILE").replace(binary, "BINARY"));
    }
    if (scenario.name === "client, handoff, exit 0") {
      // The log is not vacuous: a normal run reads the three variables,
      // lstats and writes the file, then lstats and empties it.
      assert.deepEqual(entries.map((e) => `${e.permission} ${e.value}`), [
        "env MODE",
        "env IFACE_FILE",
        "env IFACE_NAME",
        `read ${file}`,
        `write ${file}`,
        `read ${file}`,
        `write ${file}`,
      ]);
    }
    Deno.removeSync(audit);
    removeInstall(fake);
  }
  // Deno 2.9.6 logs no `run` access, granted or denied: strace covers it below.
  assert.deepEqual([...seen].toSorted(), [
    "env IFACE_FILE",
    "env IFACE_NAME",
    "env MODE",
    "read IFACE_FILE",
    "write IFACE_FILE",
  ]);
});

testWhen(
  missingCommand("strace"),
  "across the scenarios where phantun ends by itself the supervisor executes only the chosen binary and opens no socket",
  async () => {
    for (const scenario of SCENARIOS.filter((s) => !s.drive)) {
      const trace = Deno.makeTempFileSync();
      // -b execve: stop tracing a process once it has become phantun.
      const { fake } = await runScenario(scenario, {
        wrapper: [
          "strace",
          "-f",
          "-qq",
          "-b",
          "execve",
          "-o",
          trace,
          "-e",
          "trace=execve,execveat,socket,connect,bind,listen",
        ],
      });
      const binary = `${fake.dir}/phantun_${scenario.mode ?? "client"}`;
      const calls = Deno.readTextFileSync(trace).split("\n")
        .map((line) => line.match(/^\d+\s+(\w+)\("([^"]*)"/))
        .filter((match) => match !== null)
        .map((match) => `${match![1]} ${match![2]}`);
      const expected = [`execve ${DENO}`];
      if (scenario.code !== 2 && !scenario.args) {
        expected.push(`execve ${binary}`);
      }
      assert.deepEqual(calls, expected, scenario.name);
      Deno.removeSync(trace);
      removeInstall(fake);
    }
  },
);
