/**
 * Shutdown: SIGTERM to the wrapper until the wrapper has exited, one process
 * at a time, all variants interleaved. Each wrapper runs either real
 * phantun_server, whose exit includes the kernel removing its TUN (tens of ms,
 * and noisy), or the fake phantun, which isolates the wrapper's own cost.
 * Neither has a signal handler: SIGTERM kills them. The idle Deno script has
 * no listener either: its figure is the kernel tearing down a Deno process,
 * the floor of any Deno supervisor's exit.
 */
import {
  interfaces,
  readStamps,
  sleep,
  spawnIn,
  terminate,
  waitUntil,
} from "./proc.ts";
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
  /**
   * Over real phantun_server, paired within each run: from phantun's exit to
   * the wrapper's, both seen through pidfds. The kernel's TUN removal is
   * inside phantun's exit, so this is the wrapper's own part, without its noise.
   */
  readonly afterPhantun: Record<Exclude<Wrapper, "bare">, Summary>;
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
  const overPhantun = async (wrapper: Wrapper): Promise<Run> => {
    const process = start(argv(wrapper, ws.phantunDir));
    await waitUntil(`${TUN} up`, () => interfaces(ns).has(TUN));
    await sleep(100);
    const watcher = wrapper === "bare" ? null : await watch(ws, process.pid);
    const ms = await terminate(process);
    const after = watcher && await watcher();
    await waitUntil(`${TUN} gone`, () => !interfaces(ns).has(TUN));
    return { ms, after };
  };
  const overFake = async (wrapper: Wrapper): Promise<Run> => {
    const process = start(argv(wrapper, ws.fakeDir));
    await waitUntil("the fake phantun", () => exists(stamps));
    await sleep(100);
    return { ms: await terminate(process), after: null };
  };
  const denoFloor = async (): Promise<Run> => {
    const process = start(s.denoIdle());
    await sleep(300);
    return { ms: await terminate(process), after: null };
  };
  const variants: Record<string, () => Promise<Run>> = {};
  for (const wrapper of WRAPPERS) {
    variants[`phantun ${wrapper}`] = () => overPhantun(wrapper);
    variants[`fake ${wrapper}`] = () => overFake(wrapper);
  }
  variants.floor = denoFloor;
  const runs = await interleave(rounds, variants);
  const ms = (name: string) => summarize(runs[name].map((run) => run.ms));
  const per = (child: string) =>
    Object.fromEntries(
      WRAPPERS.map((w) => [w, ms(`${child} ${w}`)]),
    ) as Record<Wrapper, Summary>;
  return {
    phantun: per("phantun"),
    afterPhantun: Object.fromEntries(
      WRAPPERS.filter((w) => w !== "bare").map((w) => [
        w,
        summarize(runs[`phantun ${w}`].map((run) => run.after!)),
      ]),
    ) as Record<Exclude<Wrapper, "bare">, Summary>,
    fake: per("fake"),
    denoFloor: ms("floor"),
  };
}

/** One shutdown: SIGTERM to exit, and phantun's exit to the wrapper's. */
type Run = { readonly ms: number; readonly after: number | null };

/**
 * Watches `wrapper` and its one child through pidfds (`stamp --watch`); the
 * returned function awaits both exits and gives the milliseconds between them.
 */
async function watch(
  ws: Workspace,
  wrapper: number,
): Promise<() => Promise<number>> {
  const tasks = [...Deno.readDirSync(`/proc/${wrapper}/task`)];
  const children = tasks.flatMap((task) =>
    Deno.readTextFileSync(`/proc/${wrapper}/task/${task.name}/children`)
      .trim().split(" ").filter((pid) => pid !== "")
  );
  if (children.length !== 1) {
    throw new Error(`${wrapper} has children ${children.join(" ")}`);
  }
  const file = `${ws.dir}/watch.stamps`;
  const watcher = new Deno.Command(ws.stamp, {
    args: ["--watch", children[0], `${wrapper}`],
    clearEnv: true,
    env: { STAMP_FILE: file },
  }).spawn();
  await waitUntil("the pidfd watcher", () => readStamps(file).has("watching"));
  return async () => {
    if (!(await watcher.status).success) throw new Error("stamp --watch");
    const gone = readStamps(file);
    Deno.removeSync(file);
    return Number(
      gone.get(`gone-${wrapper}`)! - gone.get(`gone-${children[0]}`)!,
    ) / 1e6;
  };
}
