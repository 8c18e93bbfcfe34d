/**
 * Throughput: iperf3 in UDP mode through real phantun_client and
 * phantun_server in the README's two-host topology, both ends bare or both
 * ends supervised, interleaved, with the same phantun arguments and rules.
 *
 *   client host: iperf3 -c 127.0.0.1 -p 5555 -u  (UDP -> phantun_client;
 *                its TCP control connection -> tcp_relay.ts -> server host)
 *   server host: phantun_server --remote 127.0.0.1:5201 -> iperf3 -s
 *
 * Each round offers {@link PAYLOAD}-byte datagrams at {@link OFFERED_MBIT}
 * Mbit/s for {@link SECONDS} s, about half of what the tunnel carries at
 * iperf3's unlimited rate on a 2-vCPU machine: unlimited runs there varied from
 * 37 to 351 Mbit/s between identical setups (the scheduler's placement of five
 * busy processes on two CPUs), which swamps any ratio. The figure is what
 * reached the iperf3 server (sent minus lost). A second bare variant in every
 * round, "bare again", is an A/A control: how far two identical setups differ
 * on this machine. The ratio is taken within each round, supervised against
 * the bare runs on either side.
 */
import { type Topology } from "../e2e/topology.ts";
import {
  CpuMeter,
  interfaces,
  listening,
  spawnIn,
  terminate,
  terminateAll,
  waitUntil,
} from "./proc.ts";
import { interleave, summarize, type Summary } from "./stats.ts";
import { type Subjects, type Workspace } from "./workspace.ts";

/** UDP payload bytes per datagram. */
export const PAYLOAD = 1400;
/** The offered load, Mbit/s of UDP payload. */
export const OFFERED_MBIT = 150;
/** Length of one iperf3 run. */
export const SECONDS = 2;
const PORT = 4567; // README's PORT
const CLIENT_TUN = "ptun0"; // README's TUN
const SERVER_TUN = "ptun0"; // README's TUN, at both ends
const CLIENT_UDP = 5555;
const IPERF = 5201;

/** The variants, in their order within a round. */
export const VARIANTS = [
  "bare",
  "supervised",
  "supervised under the seccomp profile",
  "bare again",
] as const;
/** One of {@link VARIANTS}. */
export type Variant = typeof VARIANTS[number];

/** Received payload rate and datagram rate, per variant. */
export type ThroughputResult = {
  readonly mbitPerS: Record<Variant, Summary>;
  readonly packetsPerS: Record<Variant, Summary>;
  /**
   * Per round, supervised ÷ the mean of the round's two bare runs (one just
   * before it, one just after, so a drift in the machine's speed cancels).
   */
  readonly ratio: Summary;
  /** Per round, the A/A control: bare again ÷ bare. */
  readonly controlRatio: Summary;
  /** Per round, both ends under the seccomp profile ÷ supervised without it. */
  readonly seccompRatio: Summary;
  /** CPU ms both supervisors used during one supervised iperf3 run. */
  readonly supervisorCpuMs: Summary;
};

type Rate = { mbitPerS: number; packetsPerS: number };

/** One iperf3 run from the client host; what the server received. */
async function iperf(t: Topology): Promise<Rate> {
  const { stdout } = await new Deno.Command("ip", {
    args: [
      ...["netns", "exec", t.client, "iperf3", "-c", "127.0.0.1"],
      ...["-p", `${CLIENT_UDP}`, "-u", "-l", `${PAYLOAD}`],
      ...["-b", `${OFFERED_MBIT}M`],
      ...["-t", `${SECONDS}`, "-J", "--connect-timeout", "5000"],
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
    signal: AbortSignal.timeout(30_000),
  }).output();
  const report = JSON.parse(new TextDecoder().decode(stdout));
  if (report.error) throw new Error(`iperf3: ${report.error}`);
  const { packets, lost_packets: lost, seconds } = report.end.sum;
  const received = packets - lost;
  return {
    mbitPerS: received * PAYLOAD * 8 / seconds / 1e6,
    packetsPerS: received / seconds,
  };
}

/** Measures `rounds` bare and supervised tunnels, interleaved. */
export async function measureThroughput(
  ws: Workspace,
  s: Subjects,
  t: Topology,
  rounds: number,
): Promise<ThroughputResult> {
  const dir = ws.phantunDir;
  const serverArgs = ["--local", `${PORT}`, "--remote", `127.0.0.1:${IPERF}`];
  serverArgs.push("--tun", SERVER_TUN);
  const clientArgs = ["--local", `127.0.0.1:${CLIENT_UDP}`, "--remote"];
  clientArgs.push(`${t.serverAddr4}:${PORT}`, "--tun", CLIENT_TUN);
  const helpers = [
    spawnIn(ws, t.server, ["iperf3", "-s", "-p", `${IPERF}`]),
    spawnIn(ws, t.client, [
      Deno.execPath(),
      "run",
      `--allow-net=127.0.0.1:${CLIENT_UDP},${t.serverAddr4}:${IPERF}`,
      new URL("tcp_relay.ts", import.meta.url).pathname,
      `${CLIENT_UDP}`,
      t.serverAddr4,
      `${IPERF}`,
    ]),
  ];
  try {
    await waitUntil(
      "iperf3 server and relay",
      () =>
        listening(t.server, "tcp", IPERF) &&
        listening(t.client, "tcp", CLIENT_UDP),
    );
    const supervisorCpuMs: number[] = [];
    const tunnel = async (variant: Variant): Promise<Rate> => {
      const supervised = variant.startsWith("supervised");
      const filter = variant === "supervised under the seccomp profile"
        ? ws.seccomp.filtered
        : [];
      const start = (ns: string, mode: string, tun: string, args: string[]) =>
        spawnIn(
          ws,
          ns,
          supervised
            ? [...filter, ...s.supervisor(dir, args)]
            : [`${dir}/phantun_${mode}`, ...args],
          { MODE: mode, IFACE_NAME: tun },
        );
      const ends = [
        start(t.server, "server", SERVER_TUN, serverArgs),
        start(t.client, "client", CLIENT_TUN, clientArgs),
      ];
      try {
        await waitUntil(
          "both phantun",
          () =>
            interfaces(t.server).has(SERVER_TUN) &&
            interfaces(t.client).has(CLIENT_TUN) &&
            listening(t.client, "udp", CLIENT_UDP),
        );
        const metered = variant === "supervised";
        const meters = metered ? ends.map((e) => new CpuMeter(e.pid)) : [];
        const rate = await iperf(t);
        if (metered) {
          for (const meter of meters) meter.poll();
          supervisorCpuMs.push(meters.reduce((ms, m) => ms + m.ms(), 0));
        }
        return rate;
      } finally {
        for (const end of ends) await terminate(end);
      }
    };
    const runs = await interleave(
      rounds,
      Object.fromEntries(
        VARIANTS.map((v) => [v, () => tunnel(v)]),
      ) as Record<Variant, () => Promise<Rate>>,
    );
    const summary = (pick: (rate: Rate) => number) =>
      Object.fromEntries(
        VARIANTS.map((v) => [v, summarize(runs[v].map(pick))]),
      ) as Record<Variant, Summary>;
    const mbit = (v: Variant) => runs[v].map((rate) => rate.mbitPerS);
    const bare = mbit("bare");
    const again = mbit("bare again");
    const supervisedMbit = mbit("supervised");
    return {
      mbitPerS: summary((rate) => rate.mbitPerS),
      packetsPerS: summary((rate) => rate.packetsPerS),
      ratio: summarize(
        supervisedMbit.map((rate, r) => rate / ((bare[r] + again[r]) / 2)),
      ),
      controlRatio: summarize(again.map((rate, r) => rate / bare[r])),
      seccompRatio: summarize(
        mbit("supervised under the seccomp profile").map((rate, r) =>
          rate / supervisedMbit[r]
        ),
      ),
      supervisorCpuMs: summarize(supervisorCpuMs),
    };
  } finally {
    await terminateAll(helpers);
  }
}
