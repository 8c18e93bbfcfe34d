/** Starting, awaiting and stopping the measured programs. */
import { run } from "../e2e/topology.ts";
import { type Workspace } from "./workspace.ts";

/**
 * Starts `argv` inside network namespace `ns` (`ip netns exec` execs it, so
 * the pid is the program's) with the workspace environment plus `env`, and
 * all output discarded.
 */
export function spawnIn(
  ws: Workspace,
  ns: string,
  argv: readonly string[],
  env: Record<string, string> = {},
): Deno.ChildProcess {
  return new Deno.Command("ip", {
    args: ["netns", "exec", ns, ...argv],
    clearEnv: true,
    env: { ...ws.env, ...env },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
}

/**
 * The stamps bench/stamp.c appended to `file`, "WHAT NANOSECONDS" per line, as
 * a map; empty while the file does not exist yet.
 */
export function readStamps(file: string): Map<string, bigint> {
  let text: string;
  try {
    text = Deno.readTextFileSync(file);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return new Map();
    throw error;
  }
  return new Map(
    text.trim().split("\n").map((line) => {
      const [what, ns] = line.split(" ");
      return [what, BigInt(ns)];
    }),
  );
}

/** Polls `check` every 50 ms; throws after `timeoutMs`. */
export async function waitUntil(
  what: string,
  check: () => boolean,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The names of the network interfaces in `ns`. */
export function interfaces(ns: string): Set<string> {
  return new Set(
    run(["ip", "-n", ns, "-o", "link", "show"]).split("\n")
      .map((line) => line.split(": ")[1]?.split("@")[0])
      .filter((name) => name !== undefined),
  );
}

/** True when something in `ns` listens on `proto` ("tcp" or "udp") `port`. */
export function listening(
  ns: string,
  proto: "tcp" | "udp",
  port: number,
): boolean {
  const flag = proto === "tcp" ? "-Hltn" : "-Hlun";
  return run(["ip", "netns", "exec", ns, "ss", flag, `sport = :${port}`])
    .trim() !== "";
}

/**
 * Sends SIGTERM (unless it already exited) and waits; returns the
 * milliseconds from the signal to the exit.
 */
export async function terminate(process: Deno.ChildProcess): Promise<number> {
  const t0 = performance.now();
  try {
    process.kill("SIGTERM");
  } catch {
    // already exited
  }
  await process.status;
  return performance.now() - t0;
}

/** Terminates all of `processes` at once (see {@link terminate}). */
export async function terminateAll(
  processes: Deno.ChildProcess[],
): Promise<void> {
  await Promise.all(processes.map(terminate));
}

/**
 * CPU time of all threads of a process, from /proc/PID/task/TID/schedstat
 * (nanoseconds on CPU). A thread that exits takes its counter with it, so the
 * meter is polled and keeps each thread's last value.
 */
export class CpuMeter {
  readonly #pid: number;
  readonly #first: Map<string, number>;
  readonly #last: Map<string, number>;

  constructor(pid: number) {
    this.#pid = pid;
    this.#first = this.#read();
    this.#last = new Map(this.#first);
  }

  #read(): Map<string, number> {
    const times = new Map<string, number>();
    for (const task of Deno.readDirSync(`/proc/${this.#pid}/task`)) {
      try {
        const line = Deno.readTextFileSync(
          `/proc/${this.#pid}/task/${task.name}/schedstat`,
        );
        times.set(task.name, Number(line.split(" ")[0]));
      } catch {
        // the thread exited meanwhile
      }
    }
    return times;
  }

  /** Records the current value of every live thread. */
  poll(): void {
    for (const [tid, ns] of this.#read()) this.#last.set(tid, ns);
  }

  /** Milliseconds on CPU from construction to the last poll. */
  ms(): number {
    let ns = 0;
    for (const [tid, last] of this.#last) {
      ns += last - (this.#first.get(tid) ?? 0);
    }
    return ns / 1e6;
  }
}
