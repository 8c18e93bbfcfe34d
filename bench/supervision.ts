/**
 * Supervision: memory and CPU of each wrapper while real phantun_server runs
 * idle under it. Every kind runs `instances` times side by side in one
 * network namespace, started interleaved (A B C A B C ...), each phantun with
 * its own TUN and port. Idle processes do not compete for the CPU, so all of
 * them share one 10 s window, which opens 1 s after the last TUN is up.
 */
import {
  CpuMeter,
  interfaces,
  sleep,
  spawnIn,
  terminateAll,
  waitUntil,
} from "./proc.ts";
import { summarize, type Summary } from "./stats.ts";
import { type Subjects, type Workspace } from "./workspace.ts";

/** Length of the idle window. */
export const IDLE_MS = 10_000;
/** How often the window polls per-thread CPU time (see {@link CpuMeter}). */
const POLL_MS = 100;

/** The wrappers and baselines compared. */
export const KINDS = [
  "supervisor",
  "supervisor with V8's JIT",
  "tini",
  "bare phantun",
  "deno run spawn-only script",
  "deno run idle script (floor)",
] as const;
/** One of {@link KINDS}. */
export type Kind = typeof KINDS[number];

/** Per kind: RssAnon and RssFile (MiB), CPU in the idle window (ms). */
export type SupervisionResult = {
  readonly rssAnonMib: Record<Kind, Summary>;
  readonly rssFileMib: Record<Kind, Summary>;
  readonly idleCpuMs: Record<Kind, Summary>;
};

type Instance = {
  readonly kind: Kind;
  /** phantun's TUN, null for the idle script. */
  readonly tun: string | null;
  readonly process: Deno.ChildProcess;
};

/** RssAnon and RssFile of `pid`, in MiB. */
function rss(pid: number): { anon: number; file: number } {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kib = (field: string) =>
    Number(status.match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"))![1]);
  return { anon: kib("RssAnon") / 1024, file: kib("RssFile") / 1024 };
}

/** Starts `instances` of every kind in namespace `ns`, measures, stops them. */
export async function measureSupervision(
  ws: Workspace,
  s: Subjects,
  ns: string,
  instances: number,
): Promise<SupervisionResult> {
  const server = `${ws.phantunDir}/phantun_server`;
  const argv = (kind: Kind, args: string[]): string[] => {
    switch (kind) {
      case "supervisor":
        return s.supervisor(ws.phantunDir, args);
      case "supervisor with V8's JIT":
        return s.supervisorJit(ws.phantunDir, args);
      case "tini":
        return s.tini(server, args);
      case "bare phantun":
        return [server, ...args];
      case "deno run spawn-only script":
        return s.denoSpawn(server, args);
      case "deno run idle script (floor)":
        return s.denoIdle();
    }
  };
  const started: Instance[] = [];
  try {
    for (let i = 0; i < instances; i++) {
      KINDS.forEach((kind, k) => {
        const tun = `pb${k}-${i}`;
        const port = `${46000 + 100 * k + i}`;
        const args = [
          "--local",
          port,
          "--remote",
          "127.0.0.1:7777",
          "--tun",
          tun,
        ];
        const process = spawnIn(ws, ns, argv(kind, args), {
          MODE: "server",
          IFACE_NAME: tun,
        });
        const runsPhantun = kind !== "deno run idle script (floor)";
        started.push({ kind, tun: runsPhantun ? tun : null, process });
      });
    }
    await waitUntil("every phantun's TUN", () => {
      const present = interfaces(ns);
      return started.every((it) => it.tun === null || present.has(it.tun));
    });
    await sleep(1000);

    const meters = started.map((it) => new CpuMeter(it.process.pid));
    const end = Date.now() + IDLE_MS;
    while (Date.now() < end) {
      await sleep(POLL_MS);
      for (const meter of meters) meter.poll();
    }
    const memory = started.map((it) => rss(it.process.pid));

    const per = (values: number[]) =>
      Object.fromEntries(
        KINDS.map((kind) => [
          kind,
          summarize(values.filter((_, i) => started[i].kind === kind)),
        ]),
      ) as Record<Kind, Summary>;
    return {
      rssAnonMib: per(memory.map((m) => m.anon)),
      rssFileMib: per(memory.map((m) => m.file)),
      idleCpuMs: per(meters.map((m) => m.ms())),
    };
  } finally {
    await terminateAll(started.map((it) => it.process));
  }
}
