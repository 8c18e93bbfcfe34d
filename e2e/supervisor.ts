/** How the tests, the demo and the benchmarks start the real supervisor. */
import { envWords, V8_FLAGS } from "../scripts/launch.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

/**
 * What every launch of the supervisor outside the image puts before `deno`:
 * GNU env starting it with SIGUSR1 blocked in all its threads, so that Deno
 * never opens its V8 inspector (DESIGN.md, "Signals"), and with the variables
 * Deno reads for itself removed or pinned (scripts/launch.ts). The deno.json task
 * does the same, the image's ENTRYPOINT with DENO_DIR pinned. Anything
 * between this and the Deno binary that forks before running it (a shell,
 * npm's bin.cjs shim) would unblock SIGUSR1 again.
 */
export const LAUNCHER: readonly string[] = ["env", ...envWords(false)];

/**
 * The contract's permission manifest as flags, for binaries in `dir` and,
 * when the handoff is used, write and read grants for `ifaceFile` alone.
 */
export function manifestFlags(dir: string, ifaceFile?: string): string[] {
  const flags = [
    "--allow-env=MODE,IFACE_NAME,IFACE_FILE",
    `--allow-run=${dir}/phantun_client,${dir}/phantun_server`,
  ];
  if (ifaceFile !== undefined) {
    flags.push(`--allow-write=${ifaceFile}`, `--allow-read=${ifaceFile}`);
  }
  return flags;
}

/** What {@link superviseInNamespace} runs. */
export type Supervised = {
  readonly ns: string;
  readonly mode: "client" | "server";
  /** The TUN name: IFACE_NAME and phantun's `--tun`. */
  readonly tun: string;
  readonly ifaceFile: string;
  readonly phantunDir: string;
  /** phantun's arguments, `--tun` excluded. */
  readonly phantunArgs: readonly string[];
  readonly stdio: "inherit" | "null";
};

/**
 * Starts `env --block-signal=USR1 deno run --v8-flags=--jitless <manifest> main.ts` inside network namespace `ns` with
 * MODE, IFACE_NAME and IFACE_FILE set and `--tun` passed to phantun.
 */
export function superviseInNamespace(s: Supervised): Deno.ChildProcess {
  return new Deno.Command("ip", {
    args: [
      "netns",
      "exec",
      s.ns,
      ...LAUNCHER,
      Deno.execPath(),
      "run",
      V8_FLAGS,
      ...manifestFlags(s.phantunDir, s.ifaceFile),
      MAIN,
      `--phantun-dir=${s.phantunDir}`,
      "--",
      ...s.phantunArgs,
      "--tun",
      s.tun,
    ],
    env: { MODE: s.mode, IFACE_NAME: s.tun, IFACE_FILE: s.ifaceFile },
    stdin: "null",
    stdout: s.stdio,
    stderr: s.stdio,
  }).spawn();
}
