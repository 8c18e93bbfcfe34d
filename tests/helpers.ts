/**
 * Test helpers: the manifest flags, a fake phantun that records what it sees,
 * and a way to run the real supervisor as a process.
 */
import assert from "node:assert/strict";
import { dirname } from "node:path";
import { LAUNCHER, manifestFlags } from "../e2e/supervisor.ts";
import { V8_FLAGS } from "../scripts/launch.ts";

export { LAUNCHER, manifestFlags };

/** The repository root, with a trailing slash. */
export const ROOT = new URL("../", import.meta.url).pathname;
/** The supervisor's entry point. */
export const MAIN = `${ROOT}main.ts`;
/** The deno binary running the tests: the same one runs the supervisor. */
export const DENO = Deno.execPath();
/** Set in CI: a missing prerequisite fails its test instead of skipping it. */
export const NO_SKIP = Deno.env.get("PHANTUN_RUNTIME_NO_SKIP") === "1";
/** True when running as root. */
export const IS_ROOT = Deno.uid() === 0;

/**
 * Registers a test that needs `missing === null`. Otherwise it prints
 * `SKIP name: reason` and is ignored, or fails when PHANTUN_RUNTIME_NO_SKIP=1.
 */
export function testWhen(
  missing: string | null,
  name: string,
  fn: () => Promise<void> | void,
): void {
  if (missing === null) {
    Deno.test(name, fn);
  } else if (NO_SKIP) {
    Deno.test(name, () => {
      throw new Error(
        `prerequisite missing (PHANTUN_RUNTIME_NO_SKIP=1): ${missing}`,
      );
    });
  } else {
    console.log(`SKIP ${name}: ${missing}`);
    Deno.test({ name, ignore: true, fn });
  }
}

/** The first of `commands` not found on PATH, as a reason, or null. */
export function missingCommand(...commands: string[]): string | null {
  const path = (Deno.env.get("PATH") ?? "").split(":");
  for (const command of commands) {
    const found = path.some((dir) => {
      try {
        return Deno.statSync(`${dir}/${command}`).isFile;
      } catch {
        return false;
      }
    });
    if (!found) return `${command} not found on PATH`;
  }
  return null;
}

/**
 * A POSIX sh stand-in for phantun. It records into $FAKE_RECORD: `program`
 * ($0), `argv` (NUL-terminated arguments), `env` (env -0), `iface` (IFACE_FILE
 * at start), `pid`, one line per signal in
 * `signals`, then `ready`. FAKE_EXIT=N exits N, FAKE_SIGNAL=SIG kills itself,
 * FAKE_IGNORE_TERM=1 records SIGTERM/SIGINT but keeps running; otherwise
 * SIGTERM and SIGINT are recorded and then kill it for real.
 */
const FAKE_PHANTUN = `#!/bin/sh
r="$FAKE_RECORD"
for a in "$@"; do printf '%s\\0' "$a"; done > "$r/argv.tmp" && mv "$r/argv.tmp" "$r/argv"
printf '%s' "$0" > "$r/program"
echo $$ > "$r/pid"
env -0 > "$r/env"
if [ -n "\${IFACE_FILE:-}" ]; then cat "$IFACE_FILE" > "$r/iface"; fi
[ -n "\${FAKE_EXIT:-}" ] && exit "$FAKE_EXIT"
[ -n "\${FAKE_SIGNAL:-}" ] && kill -s "$FAKE_SIGNAL" $$
sleeper=
record() { echo "$1" >> "$r/signals"; }
die() { record "$1"; [ -n "\${FAKE_IGNORE_TERM:-}" ] && return; kill $sleeper 2>/dev/null; trap - "$1"; kill -s "$1" $$; }
for s in HUP QUIT USR1 USR2; do trap "record $s" $s; done
for s in TERM INT; do trap "die $s" $s; done
: > "$r/ready"
while :; do sleep 1 </dev/null >/dev/null 2>&1 & sleeper=$!; wait $sleeper; done
`;

/** A directory with fake `phantun_client` and `phantun_server`, and a record directory. */
export type FakeInstall = {
  /** The --phantun-dir for the fakes. */
  readonly dir: string;
  /** Where the fake writes what it saw (FAKE_RECORD). */
  readonly record: string;
  /** A scratch directory for IFACE files and the like. */
  readonly scratch: string;
};

/** One directory per test process for every fake install, removed on unload. */
const TEMP_ROOT = Deno.makeTempDirSync({ prefix: "phantun-runtime-test-" });
Deno.chmodSync(TEMP_ROOT, 0o755); // reachable by the non-root users some tests run as
globalThis.addEventListener("unload", () => {
  Deno.removeSync(TEMP_ROOT, { recursive: true });
});

/** A fresh directory under this test process's temporary root. */
export function tempDir(): string {
  return Deno.makeTempDirSync({ dir: TEMP_ROOT });
}

let readable: string | undefined;

/**
 * A copy of what the supervisor loads (main.ts, lib/, deno.json, deno.lock)
 * under this process's temporary root, which every user can read: the entry
 * point for the tests that run the supervisor as another user, who may not
 * reach the checkout (a clone in root's 0700 home). Made once per process.
 */
export function readableMain(): string {
  if (readable === undefined) {
    const dir = tempDir();
    Deno.chmodSync(dir, 0o755);
    Deno.mkdirSync(`${dir}/lib`, { mode: 0o755 });
    const files = [
      "main.ts",
      "deno.json",
      "deno.lock",
      ...[...Deno.readDirSync(`${ROOT}lib`)]
        .map((entry) => `lib/${entry.name}`),
    ];
    for (const file of files) {
      Deno.copyFileSync(`${ROOT}${file}`, `${dir}/${file}`);
      Deno.chmodSync(`${dir}/${file}`, 0o644);
    }
    readable = `${dir}/main.ts`;
  }
  return readable;
}

/** Writes the fake phantun binaries into a fresh temporary directory. */
export function installFakePhantun(): FakeInstall {
  const base = tempDir();
  const dir = `${base}/bin`;
  const record = `${base}/record`;
  const scratch = `${base}/scratch`;
  for (const d of [dir, record, scratch]) Deno.mkdirSync(d);
  for (const name of ["phantun_client", "phantun_server"]) {
    Deno.writeTextFileSync(`${dir}/${name}`, FAKE_PHANTUN, { mode: 0o755 });
  }
  return { dir, record, scratch };
}

/** Kills the fake phantun if it started and still runs. */
export function killFake(fake: FakeInstall): void {
  const pid = readRecord(fake, "pid");
  try {
    if (pid !== null) Deno.kill(Number(pid), "SIGKILL");
  } catch {
    // already gone
  }
}

/** Reads a file of the record, or null when the fake never wrote it. */
export function readRecord(fake: FakeInstall, name: string): string | null {
  try {
    return Deno.readTextFileSync(`${fake.record}/${name}`);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

/** Empties the fake's record directory between two runs. */
export function resetRecord(fake: FakeInstall): void {
  for (const entry of Deno.readDirSync(fake.record)) {
    Deno.removeSync(`${fake.record}/${entry.name}`, { recursive: true });
  }
}

/** The arguments the fake received, decoded from its NUL-terminated record. */
export function recordedArgv(fake: FakeInstall): string[] | null {
  const raw = readRecord(fake, "argv");
  return raw === null ? null : raw.split("\0").slice(0, -1);
}

/** The environment the fake received, as NAME -> value. */
export function recordedEnv(fake: FakeInstall): Map<string, string> {
  const raw = readRecord(fake, "env");
  assert.ok(raw !== null, "the fake recorded no environment");
  return new Map(
    raw.split("\0").filter((entry) => entry !== "").map((
      entry,
    ) => [
      entry.slice(0, entry.indexOf("=")),
      entry.slice(entry.indexOf("=") + 1),
    ]),
  );
}

/** True when the fake phantun was never started. */
export function nothingLaunched(fake: FakeInstall): boolean {
  return [...Deno.readDirSync(fake.record)].length === 0;
}

/** What a finished supervisor run gave. */
export type RunResult = {
  readonly code: number;
  readonly signal: Deno.Signal | null;
  readonly stdout: string;
  readonly stderr: string;
};

/** A running supervisor. */
export type Supervisor = {
  readonly process: Deno.ChildProcess;
  /** Resolves when the process exits; fails the test after `timeoutMs`. */
  readonly finished: Promise<RunResult>;
};

/** Options for {@link startSupervisor}. */
export type StartOptions = {
  /** Arguments to main.ts. */
  readonly args: readonly string[];
  /** The entry point; {@link MAIN} by default ({@link readableMain} for another user). */
  readonly main?: string;
  /** The whole environment besides PATH and FAKE_RECORD. */
  readonly env?: Record<string, string>;
  /** What comes before the wrapper and `deno`; {@link LAUNCHER} by default. */
  readonly launcher?: readonly string[];
  /** Deno permission flags; the manifest for the fake by default. */
  readonly flags?: readonly string[];
  /**
   * Words placed between the {@link LAUNCHER} and `deno` (e.g. strace, which
   * keeps the blocked SIGUSR1; a shell that forks would unblock it).
   */
  readonly wrapper?: readonly string[];
  /** Kill and fail after this long. */
  readonly timeoutMs?: number;
};

/**
 * `env --block-signal=USR1 [wrapper] deno run --v8-flags=--jitless <flags> main.ts <args>`, as the
 * supervisor is launched, from the entry point's directory, with a controlled
 * environment: PATH, FAKE_RECORD and `options.env` only.
 */
export function supervisorCommand(
  fake: FakeInstall,
  options: StartOptions,
): Deno.Command {
  const command = [
    ...(options.launcher ?? LAUNCHER),
    ...(options.wrapper ?? []),
    DENO,
    "run",
    V8_FLAGS,
    ...(options.flags ?? manifestFlags(fake.dir)),
    options.main ?? MAIN,
    ...options.args,
  ];
  return new Deno.Command(command[0], {
    args: command.slice(1),
    // The entry point's directory: a user who cannot reach the checkout could
    // not start phantun from it (Deno's spawn fails in such a directory).
    cwd: dirname(options.main ?? MAIN),
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      FAKE_RECORD: fake.record,
      ...options.env,
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

/** Spawns {@link supervisorCommand} and collects its output. */
export function startSupervisor(
  fake: FakeInstall,
  options: StartOptions,
): Supervisor {
  const process = supervisorCommand(fake, options).spawn();
  const finished = collect(process, fake, options.timeoutMs ?? 20_000);
  finished.catch(() => {}); // a test that failed earlier never awaits it
  return { process, finished };
}

async function collect(
  process: Deno.ChildProcess,
  fake: FakeInstall,
  timeoutMs: number,
): Promise<RunResult> {
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      process.kill("SIGKILL");
    } catch {
      // it exited meanwhile
    }
    killFake(fake); // it holds the output pipes open
  }, timeoutMs);
  const [status, stdout, stderr] = await Promise.all([
    process.status,
    new Response(process.stdout).text(),
    new Response(process.stderr).text(),
  ]);
  clearTimeout(timer);
  assert(
    !timedOut,
    `supervisor still running after ${timeoutMs} ms; stderr: ${stderr}`,
  );
  return { code: status.code, signal: status.signal, stdout, stderr };
}

/** Runs the supervisor to completion. */
export function runSupervisor(
  fake: FakeInstall,
  options: StartOptions,
): Promise<RunResult> {
  return startSupervisor(fake, options).finished;
}

/** Output of a helper program (e.g. readlink, cat on /proc, which Deno guards). */
export function output(program: string, ...args: string[]): string {
  const { success, stdout, stderr } = new Deno.Command(program, { args })
    .outputSync();
  const decoder = new TextDecoder();
  assert.ok(success, `${program} ${args.join(" ")}: ${decoder.decode(stderr)}`);
  return decoder.decode(stdout);
}

/**
 * Waits until `check` (which may be async) is true, polling every
 * `intervalMs`, or fails after `timeoutMs`.
 */
export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  intervalMs = 5,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    assert(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Asserts stderr is exactly one `phantun-runtime:` line containing `needle`. */
export function assertRuntimeError(result: RunResult, needle: string): void {
  const lines = result.stderr.split("\n").filter((line) => line !== "");
  assert.equal(
    lines.length,
    1,
    `expected one stderr line, got: ${result.stderr}`,
  );
  assert(
    lines[0].startsWith("phantun-runtime: "),
    `not a runtime line: ${lines[0]}`,
  );
  assert(
    lines[0].includes(needle),
    `${JSON.stringify(needle)} not in: ${lines[0]}`,
  );
}

/** Asserts a refusal by the runtime itself: exit 2, one stderr line, nothing launched. */
export function assertRefused(
  result: RunResult,
  fake: FakeInstall,
  needle = "",
): void {
  assert.equal(result.code, 2, result.stderr);
  assertRuntimeError(result, needle);
  assert.equal(result.stdout, "");
  assert.ok(nothingLaunched(fake), "phantun was launched");
}

/** Why the C fixtures cannot be built here, or null. */
export const CC_MISSING: string | null = missingCommand("cc");

/** Compiles tests/fixtures/NAME.c to `out`, with extra cc `flags` (e.g. -static). */
export function compileFixture(
  name: string,
  out: string,
  ...flags: string[]
): void {
  output("cc", "-O2", ...flags, "-o", out, `${ROOT}tests/fixtures/${name}.c`);
}

/**
 * A wrapper that runs `setup` (sh) in a private mount namespace, then execs
 * the command after it; mounts made there vanish with the process.
 */
export function inPrivateMount(setup: string): string[] {
  return [
    "unshare",
    "--mount",
    "--propagation",
    "private",
    "sh",
    "-c",
    `${setup} && exec "$@"`,
    "sh",
  ];
}

/** Why a private mount namespace cannot be made here, or null. */
export const NEEDS_MOUNT = !IS_ROOT
  ? "needs root for a private mount namespace"
  : missingCommand("unshare", "mount");

/** Options for {@link taskCommand}. */
export type TaskOptions = {
  /** Words before it all, e.g. `ip netns exec NS`. */
  readonly prefix?: readonly string[];
  /** Arguments after `deno task start --` (phantun's). */
  readonly args?: readonly string[];
  /** Added to the environment, after the handoff variables. */
  readonly env?: Record<string, string>;
};

/**
 * `deno task start -- <args>` from the repository root, as an operator runs
 * it, under the production layout: the production grants name
 * /usr/local/bin/phantun_* and /run/phantun/iface, so a private mount
 * namespace binds the fakes of `fake` on /usr/local/bin and `state` (a
 * directory of the test's) on /run/phantun. A server with the handoff on
 * (IFACE_FILE=/run/phantun/iface, IFACE_NAME=ptun0), with PATH, FAKE_RECORD
 * and `options.env` besides; stdout and stderr piped.
 */
export function taskCommand(
  fake: FakeInstall,
  state: string,
  options: TaskOptions = {},
): Deno.Command {
  const mounts = `mount --bind "${fake.dir}" /usr/local/bin` +
    " && mount -t tmpfs tmpfs /run && mkdir /run/phantun" +
    ` && mount --bind "${state}" /run/phantun`;
  const command = [
    ...(options.prefix ?? []),
    ...inPrivateMount(mounts),
    DENO,
    "task",
    "--quiet",
    "start",
    "--",
    ...(options.args ?? []),
  ];
  return new Deno.Command(command[0], {
    args: command.slice(1),
    cwd: ROOT,
    clearEnv: true,
    env: {
      // The task's env finds deno on the PATH as an operator's would.
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      FAKE_RECORD: fake.record,
      MODE: "server",
      IFACE_FILE: "/run/phantun/iface",
      IFACE_NAME: "ptun0",
      ...options.env,
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

/**
 * Runs a client with IFACE_FILE=`file` (granted as `options.grant`, by default
 * `file` itself) and expects a refusal: exit 2, one runtime line naming
 * IFACE_FILE and `needle` with none of Deno's own wording ("(os error N)",
 * "writefile '...'"), nothing on stdout, nothing launched, no hang. Returns
 * the run, for checks of the caller's own.
 */
export async function assertHandoffRefused(
  fake: FakeInstall,
  file: string,
  needle: string,
  options: { grant?: string; wrapper?: string[]; main?: string } = {},
): Promise<RunResult> {
  const result = await runSupervisor(fake, {
    args: [`--phantun-dir=${fake.dir}`, "--"],
    env: {
      MODE: "client",
      FAKE_EXIT: "0",
      IFACE_FILE: file,
      IFACE_NAME: "ptun0",
    },
    flags: manifestFlags(fake.dir, options.grant ?? file),
    wrapper: options.wrapper,
    main: options.main,
    timeoutMs: 10_000, // a hang fails the test
  });
  assertRefused(result, fake, "IFACE_FILE");
  assertRuntimeError(result, needle);
  assert.doesNotMatch(result.stderr, /\(os error \d+\)|[a-z]+ '\//);
  return result;
}

/**
 * A test with a fresh fake install, whose fake phantun is killed when the
 * test ends, failed or not.
 */
export function fakeTest(
  name: string,
  fn: (fake: FakeInstall) => Promise<void>,
): void {
  Deno.test(name, async () => {
    const fake = installFakePhantun();
    try {
      await fn(fake);
    } finally {
      killFake(fake);
    }
  });
}

/** The TCP sockets in LISTEN state in the network namespace of `pid`. */
export function listeners(pid: number): string[] {
  return ["tcp", "tcp6"].flatMap((table) =>
    output("cat", `/proc/${pid}/net/${table}`).split("\n").slice(1)
      .filter((line) => line.trim().split(/\s+/)[3] === "0A")
  );
}
