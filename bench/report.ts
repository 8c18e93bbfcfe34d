/** bench/results.json's shape, its headline figures and its markdown. */
import { type ImageResult } from "./image.ts";
import { round, type Summary } from "./stats.ts";
import { type ShutdownResult, WRAPPERS } from "./shutdown.ts";
import { type StartupResult } from "./startup.ts";
import { type SupervisionResult } from "./supervision.ts";
import {
  OFFERED_MBIT,
  PAYLOAD,
  SECONDS,
  type ThroughputResult,
  VARIANTS,
} from "./throughput.ts";

/** Where and with what the benchmarks ran. */
export type Machine = {
  readonly date: string;
  readonly nproc: string;
  readonly free: string;
  readonly kernel: string;
  readonly cpu: string;
  readonly loadavgStart: string;
  readonly loadavgEnd: string;
  readonly versions: Record<string, string>;
};

/** Everything one `deno task bench` measured, and how. */
export type Measurements = {
  readonly machine: Machine;
  /** The run's sizes and loads (rounds, instances, offered load). */
  readonly method: Record<string, number>;
  readonly startup: Record<string, StartupResult>;
  readonly supervision: SupervisionResult;
  readonly shutdown: ShutdownResult;
  readonly throughput: ThroughputResult;
  readonly image: ImageResult;
};

/** One headline metric: its value, the baselines it is read against, the target. */
type Headline = {
  readonly key: string;
  readonly value: number | null;
  readonly baselines: string;
  readonly target: string;
  readonly met: boolean | null;
};

const FLOOR = "deno run empty script (floor)";
const IDLE_FLOOR = "deno run idle script (floor)";

/** A ratio's headline, to three decimals; `met` checks the unrounded value. */
function ratioHeadline(
  key: string,
  value: number,
  baselines: string,
  target = "-",
  met?: (value: number) => boolean,
): Headline {
  return {
    key,
    value: round(value, 3),
    baselines,
    target,
    met: met ? met(value) : null,
  };
}

/** The issue's metrics, from the medians. */
export function headlines(m: Measurements): Headline[] {
  const { startup, supervision: sup, shutdown, throughput: tp, image } = m;
  const exec = (name: string) => startup[name].exec!.median;
  const startupMs = exec("supervisor");
  const floorMs = startup[FLOOR].exit.median;
  const unfiltered = "supervisor, seccomp_exec without a filter";
  const anon = (kind: keyof typeof sup.rssAnonMib) =>
    sup.rssAnonMib[kind].median;
  const cpu = (kind: keyof typeof sup.idleCpuMs) => sup.idleCpuMs[kind].median;
  const down = (wrapper: keyof ShutdownResult["phantun"]) =>
    shutdown.phantun[wrapper].median;
  const downFake = (wrapper: keyof ShutdownResult["fake"]) =>
    shutdown.fake[wrapper].median;
  const shutdownExtra = down("supervisor") - down("bare");
  const ratio = tp.ratio.median;
  const f = (value: number, digits = 2) => round(value, digits);
  return [
    {
      key: "startup_ms",
      value: f(startupMs),
      baselines: `floor (empty script, to exit) ${f(floorMs)}; direct exec ${
        f(exec("direct exec"))
      }; tini ${f(exec("tini --"))}; sh ${
        f(exec("sh entrypoint (exec)"))
      }; Deno spawn-only script ${
        f(exec("deno run spawn-only script"))
      }; Deno contract script ${
        f(exec("deno run contract script"))
      }; supervisor from sources ${
        f(exec("supervisor from sources (12 modules)"))
      }`,
      target: `≤ startup_floor_ms + 2 = ${f(floorMs + 2)}`,
      met: startupMs <= floorMs + 2,
    },
    {
      key: "startup_floor_ms",
      value: f(floorMs),
      baselines: "-",
      target: "-",
      met: null,
    },
    {
      key: "rss_anon_mib",
      value: f(anon("supervisor")),
      baselines: `floor ${f(anon(IDLE_FLOOR))}; tini ${
        f(anon("tini"), 3)
      }; RssFile ${f(sup.rssFileMib.supervisor.median)}`,
      target: `≤ rss_anon_floor_mib × 1.05 = ${f(anon(IDLE_FLOOR) * 1.05)}`,
      met: anon("supervisor") <= anon(IDLE_FLOOR) * 1.05,
    },
    {
      key: "rss_anon_floor_mib",
      value: f(anon(IDLE_FLOOR)),
      baselines: "-",
      target: "-",
      met: null,
    },
    {
      key: "idle_cpu_ms_10s",
      value: f(cpu("supervisor"), 3),
      baselines: `tini ${f(cpu("tini"), 3)}`,
      target: "< 1",
      met: cpu("supervisor") < 1,
    },
    {
      key: "shutdown_extra_ms",
      value: f(shutdownExtra),
      baselines: `supervisor ${f(down("supervisor"))}, bare phantun ${
        f(down("bare"))
      }; paired, supervisor's exit after phantun's ${
        f(shutdown.afterPhantun.supervisor.median)
      }; over the fake phantun (no TUN): extra ${
        f(downFake("supervisor") - downFake("bare"))
      }, Deno's exit floor ${f(shutdown.denoFloor.median)}`,
      target: "≤ 5",
      met: shutdownExtra <= 5,
    },
    {
      key: "throughput_ratio",
      value: f(ratio, 3),
      baselines: `bare ${f(tp.mbitPerS.bare.median, 1)} Mbit/s, ${
        f(tp.packetsPerS.bare.median, 0)
      } pkt/s; supervised ${f(tp.mbitPerS.supervised.median, 1)} Mbit/s, ${
        f(tp.packetsPerS.supervised.median, 0)
      } pkt/s; per-round ratio ${f(tp.ratio.min, 3)}–${
        f(tp.ratio.max, 3)
      }; A/A control (bare again ÷ bare, per round) ${
        f(tp.controlRatio.median, 3)
      } (${f(tp.controlRatio.min, 3)}–${f(tp.controlRatio.max, 3)})`,
      target: "≥ 0.99",
      met: ratio >= 0.99,
    },
    ratioHeadline(
      "jitless_startup_ratio",
      exec("supervisor") / exec("supervisor with V8's JIT"),
      `without V8's JIT (the image's --jitless) ${
        f(exec("supervisor"))
      } ms, with it ${f(exec("supervisor with V8's JIT"))} ms`,
      "≤ 1.02",
      (r) => r <= 1.02,
    ),
    ratioHeadline(
      "jitless_rss_anon_ratio",
      anon("supervisor") / anon("supervisor with V8's JIT"),
      `RssAnon without V8's JIT ${f(anon("supervisor"))} MiB, with it ${
        f(anon("supervisor with V8's JIT"))
      } MiB`,
    ),
    ratioHeadline(
      "code_cache_startup_ratio",
      exec("supervisor") / exec("supervisor with V8's code cache"),
      `without a code cache (the image) ${
        f(exec("supervisor"))
      } ms, with V8's code cache made under the same flags ${
        f(exec("supervisor with V8's code cache"))
      } ms (what startup pays for a reproducible image: DESIGN.md §8)`,
    ),
    ratioHeadline(
      "seccomp_startup_ratio",
      exec("supervisor under the seccomp profile") / exec(unfiltered),
      `under the profile ${
        f(exec("supervisor under the seccomp profile"))
      } ms, through seccomp_exec without a filter ${
        f(exec(unfiltered))
      } ms; A/A control (the same without a filter again ÷ without) ${
        f(exec(`${unfiltered}, again`) / exec(unfiltered), 3)
      }; loading the profile alone, then phantun without Deno ${
        f(exec("seccomp_exec loading the profile, then phantun"))
      } ms against ${
        f(exec("seccomp_exec without a filter, then phantun"))
      } ms`,
      "≤ 1.02",
      (r) => r <= 1.02,
    ),
    ratioHeadline(
      "seccomp_throughput_ratio",
      tp.seccompRatio.median,
      `under the profile ${
        f(tp.mbitPerS["supervised under the seccomp profile"].median, 1)
      } Mbit/s; per-round ratio ${f(tp.seccompRatio.min, 3)}–${
        f(tp.seccompRatio.max, 3)
      }`,
      "≥ 0.99",
      (r) => r >= 0.99,
    ),
    image.sizeMb === null
      ? {
        key: "image_size_mb",
        value: null,
        baselines: `not measured: ${image.reason}`,
        target: "≤ 125 and ≤ parts × 1.05",
        met: null,
      }
      : {
        key: "image_size_mb",
        value: f(image.sizeMb),
        baselines: `parts ${f(image.partsMb)}`,
        target: `≤ 125 and ≤ parts × 1.05 = ${f(image.partsMb * 1.05)}`,
        met: image.sizeMb <= 125 && image.sizeMb <= image.partsMb * 1.05,
      },
  ];
}

/** results.json: the issue's keys at the top level, then everything measured. */
export function resultsJson(m: Measurements): Record<string, unknown> {
  const lines = headlines(m);
  return {
    ...Object.fromEntries(lines.map((h) => [h.key, h.value])),
    rss_file_mib: round(m.supervision.rssFileMib.supervisor.median),
    packets_per_s: {
      bare: round(m.throughput.packetsPerS.bare.median, 0),
      supervised: round(m.throughput.packetsPerS.supervised.median, 0),
    },
    throughput_control_ratio: round(m.throughput.controlRatio.median, 3),
    targets: Object.fromEntries(
      lines.filter((h) => h.met !== null).map((h) => [h.key, {
        target: h.target,
        met: h.met,
      }]),
    ),
    machine: m.machine,
    method: m.method,
    startup: m.startup,
    supervision: m.supervision,
    shutdown: m.shutdown,
    throughput: m.throughput,
    image: m.image,
  };
}

function cell(s: Summary, digits = 2): string {
  return `${round(s.median, digits)} (${round(s.min, digits)}–${
    round(s.max, digits)
  })`;
}

function table(header: string[], rows: string[][]): string {
  return [
    `| ${header.join(" | ")} |`,
    `|${header.map(() => "---").join("|")}|`,
    ...rows.map((row) => `| ${row.join(" | ")} |`),
  ].join("\n");
}

/** The headline table and the per-variant tables, as markdown. */
export function markdown(m: Measurements): string {
  const mark = (met: boolean | null) => met === null ? "" : met ? "yes" : "NO";
  const { supervision: sup, shutdown } = m;
  const kinds = Object.keys(sup.rssAnonMib) as (keyof typeof sup.rssAnonMib)[];
  const n = (s: Summary) => `n=${s.n}`;
  const sections = [
    table(
      ["key", "value", "baselines (same run, medians)", "target", "met"],
      headlines(m).map((h) => [
        `\`${h.key}\``,
        h.value === null ? "null" : `${h.value}`,
        h.baselines,
        h.target,
        mark(h.met),
      ]),
    ),
    `Startup, ms from start to phantun's exec and to exit: median (min–max), ${
      n(Object.values(m.startup)[0].exit)
    } interleaved rounds, each starting one variant later than the last.`,
    table(
      ["variant", "start → phantun exec", "start → exit"],
      Object.entries(m.startup).map(([name, r]) => [
        name,
        r.exec ? cell(r.exec) : "-",
        cell(r.exit),
      ]),
    ),
    `Supervising real phantun_server in a network namespace: median (min–max), ${
      n(sup.rssAnonMib.supervisor)
    } instances of each side by side, started interleaved. RSS in MiB, CPU in ms over one shared 10 s idle window.`,
    table(
      ["kind", "RssAnon", "RssFile", "CPU in 10 s idle"],
      kinds.map((kind) => [
        kind,
        cell(sup.rssAnonMib[kind], 3),
        cell(sup.rssFileMib[kind]),
        cell(sup.idleCpuMs[kind], 3),
      ]),
    ),
    `SIGTERM → exit, ms, one process at a time: median (min–max), ${
      n(shutdown.phantun.supervisor)
    } interleaved rounds. Under real phantun_server the kernel's removal of its TUN is part of every figure; the paired column is, within each run, the wrapper's exit minus phantun's (both seen through pidfds), which leaves that removal out.`,
    table(
      [
        "wrapper",
        "over phantun_server (TUN)",
        "paired: after phantun's exit",
        "over the fake phantun",
      ],
      [
        ...WRAPPERS.map((w) => [
          w,
          cell(shutdown.phantun[w]),
          w === "bare" ? "-" : cell(shutdown.afterPhantun[w]),
          cell(shutdown.fake[w]),
        ]),
        [
          "deno run idle script (floor), killed",
          "-",
          "-",
          cell(shutdown.denoFloor),
        ],
      ],
    ),
    `UDP through phantun (iperf3, ${PAYLOAD}-byte datagrams offered at ${OFFERED_MBIT} Mbit/s, ${SECONDS} s per run): received payload, median (min–max), ${
      n(m.throughput.mbitPerS.bare)
    } interleaved runs of each.`,
    table(
      ["both ends", "Mbit/s", "packets/s"],
      VARIANTS.map((v) => [
        v,
        cell(m.throughput.mbitPerS[v], 1),
        cell(m.throughput.packetsPerS[v], 0),
      ]),
    ),
    `CPU time both supervisors used during one ${SECONDS} s supervised run: ${
      cell(m.throughput.supervisorCpuMs, 3)
    } ms.`,
  ];
  if (m.image.sizeMb !== null) {
    sections.push(
      "Image `phantun-runtime:test`, MB (10^6 bytes), from `docker export`:",
      table(
        ["part", "MB"],
        Object.entries(m.image.breakdownMb).map((
          [part, mb],
        ) => [part, `${round(mb)}`]),
      ),
    );
  }
  return sections.join("\n\n") + "\n";
}

/** The machine description, as markdown. */
export function machineMarkdown(machine: Machine): string {
  return [
    `- date: ${machine.date}`,
    `- nproc: ${machine.nproc}`,
    `- kernel: ${machine.kernel}`,
    `- CPU: ${machine.cpu}`,
    `- load average at start / end: ${machine.loadavgStart} / ${machine.loadavgEnd}`,
    `- ${
      Object.entries(machine.versions).map(([k, v]) => `${k}: ${v}`).join("; ")
    }`,
    "",
    "```",
    "$ free -h",
    machine.free.trimEnd(),
    "```",
  ].join("\n") + "\n";
}
