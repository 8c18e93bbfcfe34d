/**
 * Shutdown: SIGTERM to the wrapper until the wrapper has exited, one process
 * at a time, all variants interleaved. Each wrapper runs either real
 * phantun_server, whose exit includes the kernel removing its TUN (tens of ms,
 * and noisy), or the fake phantun, which isolates the wrapper's own cost.
 * Neither has a signal handler: SIGTERM kills them. The idle Deno script has
 * no listener either: its figure is the kernel tearing down a Deno process,
 * the floor of any Deno supervisor's exit.
 */
import { interfaces, sleep, spawnIn, terminate, waitUntil } from "./proc.ts";
import { interleave, summarize, type Summary } from "./stats.ts";
import { type Subjects, type Workspace } from "./workspace.ts";

const TUN = "ptun-bench";

/** The wrappers compared; "bare" is phantun (or the fake) alone. */
export const WRAPPERS = [
  "supervisor",
  "bare",
  "tini",
  "deno run spawn-only script",
] as const;
/** One of {@link WRAPPERS}. */
export type Wrapper = typeof WRAPPERS[number];

/** Milliseconds from SIGTERM to exit. */
export type ShutdownResult = {
  /** Over real phantun_server and its TUN. */
  readonly phantun: Record<Wrapper, Summary>;
  /** Over the fake phantun. */
  readonly fake: Record<Wrapper, Summary>;
  /** The idle Deno script, killed by SIGTERM. */
  readonly denoFloor: Summary;
};

/** Measures every variant `rounds` times in namespace `ns`. */
export async function measureShutdown(
  ws: Workspace,
  s: Subjects,
  ns: string,
  rounds: number,
): Promise<ShutdownResult> {
  const stamps = `${ws.dir}/shutdown.stamps`;
  const argv = (wrapper: Wrapper, dir: string): string[] => {
    const server = `${dir}/phantun_server`;
    const args = [
      "--local",
      "4567",
      "--remote",
      "127.0.0.1:7777",
      "--tun",
      TUN,
    ];
    switch (wrapper) {
      case "supervisor":
        return s.supervisor(dir, args);
      case "bare":
        return [server, ...args];
      case "tini":
        return s.tini(server, args);
      case "deno run spawn-only script":
        return s.denoSpawn(server, args);
    }
  };
  const start = (command: string[]) => {
    try {
      Deno.removeSync(stamps);
    } catch {
      // no earlier run left one
    }
    return spawnIn(ws, ns, command, {
      MODE: "server",
      IFACE_NAME: TUN,
      STAMP_FILE: stamps,
      STAMP_WAIT: "1",
    });
  };
  const exists = (path: string) => {
    try {
      Deno.statSync(path);
      return true;
    } catch {
      return false;
    }
  };
  const overPhantun = async (wrapper: Wrapper) => {
    const process = start(argv(wrapper, ws.phantunDir));
    await waitUntil(`${TUN} up`, () => interfaces(ns).has(TUN));
    await sleep(100);
    const ms = await terminate(process);
    await waitUntil(`${TUN} gone`, () => !interfaces(ns).has(TUN));
    return ms;
  };
  const overFake = async (wrapper: Wrapper) => {
    const process = start(argv(wrapper, ws.fakeDir));
    await waitUntil("the fake phantun", () => exists(stamps));
    await sleep(100);
    return await terminate(process);
  };
  const denoFloor = async () => {
    const process = start(s.denoIdle());
    await sleep(300);
    return await terminate(process);
  };
  const variants: Record<string, () => Promise<number>> = {};
  for (const wrapper of WRAPPERS) {
    variants[`phantun ${wrapper}`] = () => overPhantun(wrapper);
    variants[`fake ${wrapper}`] = () => overFake(wrapper);
  }
  variants.floor = denoFloor;
  const runs = await interleave(rounds, variants);
  const per = (child: string) =>
    Object.fromEntries(
      WRAPPERS.map((w) => [w, summarize(runs[`${child} ${w}`])]),
    ) as Record<Wrapper, Summary>;
  return {
    phantun: per("phantun"),
    fake: per("fake"),
    denoFloor: summarize(runs.floor),
  };
}
