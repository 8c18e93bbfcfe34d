/**
 * `deno task bench`: what the runtime costs against its baselines, each
 * measured interleaved with them in the same run. Writes bench/results.json
 * and bench/RESULTS.md and prints the markdown. Needs root (network
 * namespaces, TUN), ip, nft, iptables, ss, iperf3, tini-static, cc with
 * libseccomp and tar, and the real phantun binaries
 * (scripts/provision-phantun.sh); npm reachable for `deno bundle` (esbuild);
 * Docker only for the image size. Takes about three minutes.
 */
import {
  applyHostSetup,
  createTopology,
  destroyTopology,
  phantunDir,
  run,
} from "../e2e/topology.ts";
import { measureImage } from "./image.ts";
import {
  type Machine,
  machineMarkdown,
  markdown,
  type Measurements,
  resultsJson,
} from "./report.ts";
import { measureShutdown } from "./shutdown.ts";
import { measureStartup } from "./startup.ts";
import { IDLE_MS, measureSupervision } from "./supervision.ts";
import {
  measureThroughput,
  OFFERED_MBIT,
  PAYLOAD,
  SECONDS,
} from "./throughput.ts";
import { createWorkspace, removeWorkspace, subjects } from "./workspace.ts";

const STARTUP_ROUNDS = 100;
const SUPERVISED_INSTANCES = 10;
const SHUTDOWN_ROUNDS = 20;
const THROUGHPUT_ROUNDS = 14;
const IMAGE = "phantun-runtime:test";
const COMMANDS = [
  "ip",
  "nft",
  "iptables",
  "ss",
  "iperf3",
  "tini-static",
  "cc",
  "tar",
];
const HERE = new URL("./", import.meta.url).pathname;

/** Why the benchmarks cannot run here, or null. */
function missingPrerequisite(phantun: string): string | null {
  if (Deno.uid() !== 0) return "needs root (network namespaces, TUN)";
  for (const command of COMMANDS) {
    try {
      run(["sh", "-c", 'command -v "$1"', "sh", command]);
    } catch {
      return `${command} not found (apt-get install iproute2 nftables iptables iperf3 tini gcc tar)`;
    }
  }
  try {
    Deno.statSync("/usr/include/seccomp.h");
  } catch {
    return "seccomp.h not found (apt-get install libseccomp-dev)";
  }
  try {
    Deno.statSync(`${phantun}/phantun_server`);
    Deno.statSync(`${phantun}/phantun_client`);
  } catch {
    return `no phantun binaries in ${phantun} (run scripts/provision-phantun.sh)`;
  }
  return null;
}

function firstLine(argv: string[]): string {
  return run(argv).split("\n")[0].trim();
}

/** The 1, 5 and 15 minute load averages. */
function loadavg(): string {
  return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(
    " ",
  );
}

function describeMachine(phantun: string, loadavgStart: string): Machine {
  const cpu = Deno.readTextFileSync("/proc/cpuinfo").match(
    /^model name\s*:\s*(.*)$/m,
  );
  return {
    date: new Date().toISOString(),
    nproc: firstLine(["nproc"]),
    free: run(["free", "-h"]),
    kernel: firstLine(["uname", "-srvm"]),
    cpu: cpu ? cpu[1] : "unknown",
    loadavgStart,
    loadavgEnd: loadavg(),
    versions: {
      deno: Deno.version.deno,
      phantun: firstLine([`${phantun}/phantun_server`, "--version"]),
      iperf3: firstLine(["iperf3", "--version"]),
      tini: firstLine(["tini-static", "--version"]),
    },
  };
}

/** Runs every measurement; always removes what it created. */
async function measure(phantun: string): Promise<Measurements> {
  const loadavgStart = loadavg();
  const progress = (what: string) =>
    console.error(`bench: ${(performance.now() / 1000).toFixed(0)} s: ${what}`);
  progress("workspace (compiling stamp.c, warming the Deno cache)");
  const ws = createWorkspace(phantun);
  try {
    const s = subjects(ws);
    progress(`startup, ${STARTUP_ROUNDS} rounds`);
    const startup = await measureStartup(ws, s, STARTUP_ROUNDS);
    const topology = createTopology(`bench${Deno.pid}`);
    try {
      applyHostSetup(topology, "nft");
      progress(`supervision, ${SUPERVISED_INSTANCES} instances of each, 10 s`);
      const supervision = await measureSupervision(
        ws,
        s,
        topology.server,
        SUPERVISED_INSTANCES,
      );
      progress(`shutdown, ${SHUTDOWN_ROUNDS} rounds`);
      const shutdown = await measureShutdown(
        ws,
        s,
        topology.server,
        SHUTDOWN_ROUNDS,
      );
      progress(`throughput, ${THROUGHPUT_ROUNDS} rounds`);
      const throughput = await measureThroughput(
        ws,
        s,
        topology,
        THROUGHPUT_ROUNDS,
      );
      progress(`image ${IMAGE}`);
      const image = await measureImage(IMAGE);
      const machine = describeMachine(phantun, loadavgStart);
      const method = {
        startup_rounds: STARTUP_ROUNDS,
        supervised_instances: SUPERVISED_INSTANCES,
        idle_window_s: IDLE_MS / 1000,
        shutdown_rounds: SHUTDOWN_ROUNDS,
        throughput_rounds: THROUGHPUT_ROUNDS,
        offered_mbit: OFFERED_MBIT,
        payload_bytes: PAYLOAD,
        seconds_per_run: SECONDS,
      };
      return {
        machine,
        method,
        startup,
        supervision,
        shutdown,
        throughput,
        image,
      };
    } finally {
      destroyTopology(topology);
    }
  } finally {
    removeWorkspace(ws);
  }
}

async function main(): Promise<void> {
  const phantun = phantunDir();
  const missing = missingPrerequisite(phantun);
  if (missing) {
    console.error(`bench: ${missing}`);
    Deno.exit(1);
  }
  const measurements = await measure(phantun);
  const results = resultsJson(measurements);
  Deno.writeTextFileSync(
    `${HERE}results.json`,
    JSON.stringify(results, null, 2) + "\n",
  );
  const tables = markdown(measurements);
  Deno.writeTextFileSync(
    `${HERE}RESULTS.md`,
    [
      "# Benchmark results",
      "",
      "Written by `deno task bench` (bench/bench.ts); the same figures are in",
      "bench/results.json. Medians, with (min–max) where shown.",
      "",
      tables,
      "## Machine",
      "",
      machineMarkdown(measurements.machine),
    ].join("\n"),
  );
  run([
    Deno.execPath(),
    "fmt",
    "--quiet",
    `${HERE}results.json`,
    `${HERE}RESULTS.md`,
  ]);
  console.log(tables);
}

await main();
