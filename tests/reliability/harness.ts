/**
 * The harness of the reliability suite (issue 6; the `*_test.ts` files beside
 * this one, one per concern): run sizes, the fuzz seed, a pool of workers for
 * cases, the compiled C fakes, host-side leak checks (open files, processes,
 * zombies) read from /proc, and the assertions several of the files share.
 *
 * `deno task test` runs the quick sizes; PHANTUN_RUNTIME_SOAK=1 (`deno task
 * test:soak`) the slow ones (SIZES below). Fuzz cases are seeded: a failure
 * names the seed and the command that replays it.
 */
import assert from "node:assert/strict";
import { caseSeed, Random } from "../fuzz.ts";
import {
  compileFixture,
  type FakeInstall,
  installFakePhantun,
  killFake,
  output,
  resetRecord,
  ROOT,
  supervisorCommand,
  waitFor,
} from "../helpers.ts";

/** PHANTUN_RUNTIME_SOAK=1 (`deno task test:soak`) selects the slow sizes. */
export const SOAK = Deno.env.get("PHANTUN_RUNTIME_SOAK") === "1";

/** How many of each thing a run tries: quick for `deno task test`, slow for the soak. */
export const SIZES = SOAK
  ? {
    argumentCases: 3000,
    prefixCases: 500,
    environmentCases: 1500,
    childFaults: 300,
    ignoredTermRounds: 50,
    cycles: 1000,
    signals: 10_000,
  }
  : {
    argumentCases: 200,
    prefixCases: 60,
    environmentCases: 150,
    childFaults: 30,
    ignoredTermRounds: 5,
    cycles: 50,
    signals: 1200,
  };

/** The fuzz seed: PHANTUN_RUNTIME_SEED to replay a failure, else random. */
export const SEED = Number(
  Deno.env.get("PHANTUN_RUNTIME_SEED") ??
    crypto.getRandomValues(new Uint32Array(1))[0],
) >>> 0;

/** The test file running, relative to the repository root (tests/reliability/NAME_test.ts). */
const TEST_FILE = new URL(Deno.mainModule).pathname.slice(ROOT.length);

/** How to replay case `index` of this run. */
export function replay(index: number): string {
  return `seed ${SEED}, case ${index}: replay with PHANTUN_RUNTIME_SEED=${SEED}${
    SOAK ? " PHANTUN_RUNTIME_SOAK=1" : ""
  } deno test --allow-read --allow-write --allow-run --allow-env --allow-sys=uid ${TEST_FILE}`;
}

/** Runs `fn`; a failure is rethrown naming the seed and how to replay it. */
export async function seeded(fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (error) {
    throw new Error(`${replay(0)}\n${(error as Error).message}`, {
      cause: error,
    });
  }
}

/** The temporary directory that holds a fake install. */
export function installBase(fake: FakeInstall): string {
  return fake.dir.slice(0, -"/bin".length);
}

/** Deletes a fake install and everything in it. */
export function removeInstall(fake: FakeInstall): void {
  Deno.removeSync(installBase(fake), { recursive: true });
}

/**
 * Runs cases 0 to count-1, `width` at a time. Each worker has its own fake
 * install, its record emptied before every case; each case gets its own
 * seeded generator. The first failure stops the run and is rethrown with the
 * seed and case number to replay it. At the end no process may mention any
 * worker's install (supervisor, fake phantun or a child of it).
 */
export async function runCases(
  count: number,
  run: (rng: Random, fake: FakeInstall, index: number) => Promise<void>,
  width = 4,
): Promise<void> {
  let next = 0;
  let failure: Error | null = null;
  const worker = async () => {
    const fake = installFakePhantun();
    try {
      while (failure === null && next < count) {
        const index = next++;
        resetRecord(fake);
        try {
          await run(new Random(caseSeed(SEED, index)), fake, index);
        } catch (error) {
          failure ??= new Error(
            `${replay(index)}\n${(error as Error).message}`,
            { cause: error },
          );
        }
      }
      if (failure === null) {
        const base = installBase(fake);
        await waitFor(
          "no process left",
          () => processesMentioning(base).length === 0,
        );
      }
    } finally {
      removeInstall(fake);
    }
  };
  await Promise.all(Array.from({ length: width }, worker));
  if (failure) throw failure;
}

/** The whole content of a file as bytes, or null when it does not exist. */
export function readBytes(path: string): Uint8Array | null {
  try {
    return Deno.readFileSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

/** `args` as the fake phantun records them: each argument's UTF-8, then a NUL. */
export function nulTerminated(args: readonly string[]): Uint8Array {
  return new TextEncoder().encode(args.map((arg) => `${arg}\0`).join(""));
}

/** True when two byte arrays are equal. */
export function sameBytes(a: Uint8Array | null, b: Uint8Array | null): boolean {
  return a !== null && b !== null && a.length === b.length &&
    a.every((byte, i) => byte === b[i]);
}

/** Replaces both fake binaries of `fake` with tests/fixtures/counting_phantun.c. */
export function installCountingPhantun(fake: FakeInstall): void {
  compileFixture("counting_phantun", `${fake.dir}/phantun_client`);
  Deno.copyFileSync(`${fake.dir}/phantun_client`, `${fake.dir}/phantun_server`);
}

// Deno guards /proc behind --allow-all, so these read it through ps, grep,
// ls and cat, as helpers.ts does.

/** The children of `pid` (zombies included), as "PID STATE COMMAND". */
export function childrenOf(pid: number): string[] {
  return output("ps", "-e", "-o", "pid=,ppid=,stat=,comm=").split("\n")
    .map((line) => line.trim().split(/\s+/))
    .filter(([, ppid, , comm]) => Number(ppid) === pid && comm !== "ps")
    .map(([child, , state, comm]) => `${child} ${state} ${comm}`);
}

/**
 * Processes whose command line or environment contains `marker` (a fake
 * install's directory: in the supervisor's --phantun-dir and in FAKE_RECORD,
 * which the fake and its own children inherit). The pattern starts with
 * `[/]`, so that grep and its shell, whose command lines hold the pattern,
 * do not match themselves.
 */
export function processesMentioning(marker: string): number[] {
  const pattern = `[${marker[0]}]${marker.slice(1).replaceAll(".", "\\.")}`;
  const found = output(
    "sh",
    "-c",
    'grep -ls -e "$1" /proc/[0-9]*/cmdline /proc/[0-9]*/environ; true',
    "sh",
    pattern,
  );
  const pids = found.split("\n").filter((line) => line !== "")
    .map((line) => Number(line.split("/")[2]));
  return [...new Set(pids)];
}

/** The number of file descriptors this process has open (ls's pipe included, always the same). */
export function openFdCount(): number {
  return output("ls", `/proc/${Deno.pid}/fd`).split("\n")
    .filter((l) => l).length;
}

/** A field of /proc/PID/status in kB (e.g. VmRSS), or null when the process is gone. */
export function statusKb(pid: number, field: string): number | null {
  const { success, stdout } = new Deno.Command("cat", {
    args: [`/proc/${pid}/status`],
    stderr: "null",
  }).outputSync();
  const match = new TextDecoder().decode(stdout)
    .match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"));
  return success && match ? Number(match[1]) : null;
}

/**
 * The real supervisor, like helpers.ts's startSupervisor, but with its stdout
 * (phantun's, inherited) read as it arrives: the counting fake writes one
 * acknowledgement byte per signal there.
 */
export class StreamingSupervisor {
  /** `deno run` itself: signals sent here reach the supervisor. */
  readonly process: Deno.ChildProcess;
  /** Set once the supervisor has exited. */
  exited = false;
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #stderr: Promise<string>;
  readonly #fake: FakeInstall;
  #buffer = "";

  constructor(
    fake: FakeInstall,
    options: {
      readonly args: readonly string[];
      readonly env: Record<string, string>;
      readonly flags: readonly string[];
    },
  ) {
    this.#fake = fake;
    this.process = supervisorCommand(fake, options).spawn();
    this.process.status.then(() => this.exited = true);
    this.#reader = this.process.stdout.getReader();
    this.#stderr = new Response(this.process.stderr).text();
  }

  /**
   * The next character phantun wrote. Fails (and kills both processes) when
   * nothing comes within `timeoutMs` or stdout ends: a lost signal would
   * otherwise hang the test.
   */
  async next(timeoutMs = 10_000): Promise<string> {
    while (this.#buffer === "") {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<"timeout">((resolve) => {
        timer = setTimeout(() => resolve("timeout"), timeoutMs);
      });
      const read = await Promise.race([this.#reader.read(), timeout]);
      clearTimeout(timer);
      if (read === "timeout" || read.done) {
        this.kill();
        throw new Error(
          read === "timeout"
            ? `nothing from phantun within ${timeoutMs} ms`
            : "phantun's stdout ended",
        );
      }
      this.#buffer = new TextDecoder().decode(read.value);
    }
    const first = this.#buffer[0];
    this.#buffer = this.#buffer.slice(1);
    return first;
  }

  /** Kills the supervisor and the fake phantun with SIGKILL. */
  kill(): void {
    try {
      this.process.kill("SIGKILL");
    } catch {
      // already gone
    }
    killFake(this.#fake);
  }

  /** Reads what is left, waits for the exit; fails after `timeoutMs`. */
  async finish(
    timeoutMs = 10_000,
  ): Promise<{ code: number; rest: string; stderr: string }> {
    const timer = setTimeout(() => this.kill(), timeoutMs);
    let rest = this.#buffer;
    for (;;) {
      const { done, value } = await this.#reader.read();
      if (done) break;
      rest += new TextDecoder().decode(value);
    }
    const [{ code }, stderr] = await Promise.all([
      this.process.status,
      this.#stderr,
    ]);
    clearTimeout(timer);
    return { code, rest, stderr };
  }
}

// ---------------------------------------------------------------------------
// Shared by the test files

/** Prints a figure for DESIGN.md §9's reliability table (soak runs only). */
export function figure(text: string): void {
  if (SOAK) console.log(`FIGURE ${text}`);
}

/** Seconds since `start`, for the figures. */
export function since(start: number): string {
  return `${((performance.now() - start) / 1000).toFixed(1)} s`;
}

/** `\ooo` escapes of every byte, for the shell's printf. */
export function octal(bytes: Uint8Array): string {
  return [...bytes].map((byte) => `\\${byte.toString(8).padStart(3, "0")}`)
    .join("");
}

/** A file the runtime must not touch: its content, inode and mtime. */
export function prepareUntouched(file: string): () => void {
  Deno.writeTextFileSync(file, "old");
  Deno.utimeSync(file, 1_000_000_000, 1_000_000_000);
  const before = Deno.statSync(file);
  return () => {
    const after = Deno.statSync(file);
    assert.equal(Deno.readTextFileSync(file), "old", "IFACE_FILE changed");
    assert.equal(after.ino, before.ino, "IFACE_FILE replaced");
    assert.equal(after.mtime?.getTime(), before.mtime?.getTime(), "mtime");
  };
}
