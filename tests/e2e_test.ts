/**
 * End to end: real phantun 0.8.1 under the supervisor (production-shaped
 * flags) in two network namespaces set up with the README's own commands.
 */
import assert from "node:assert/strict";
import {
  applyHostSetup,
  countWire,
  createTopology,
  destroyTopology,
  type Firewall,
  inNamespace,
  networkState,
  phantunDir,
  provisionPhantun,
  readmeBlock,
  run,
  type Topology,
  wireCounts,
} from "../e2e/topology.ts";
import {
  DENO,
  type FakeInstall,
  IS_ROOT,
  manifestFlags,
  missingCommand,
  output,
  ROOT,
  startSupervisor,
  type Supervisor,
  tempDir,
  testWhen,
  waitFor,
} from "./helpers.ts";

const PHANTUN = phantunDir();
/** Why the real-phantun tests cannot run; phantun is built only where they can. */
const MISSING = !IS_ROOT
  ? "needs root for network namespaces"
  : missingCommand("ip", "nft", "iptables", "ip6tables") ?? provisionPhantun();

const PORT = 4567; // README's PORT
const CLIENT_TUN = "ptun0"; // README's TUN
const SERVER_TUN = "ptun0"; // README's TUN, at both ends
const ECHO = "127.0.0.1:7777";

/** A scratch area for the IFACE files; `dir` is the real phantun. */
function workspace(): FakeInstall {
  const base = tempDir();
  return { dir: PHANTUN, record: base, scratch: base };
}

/** Starts main.ts inside `ns` under the production-shaped flags. */
function supervise(
  ws: FakeInstall,
  ns: string,
  mode: "client" | "server",
  tun: string,
  phantunArgs: string[],
): { run: Supervisor; ifaceFile: string } {
  const ifaceFile = `${ws.scratch}/${mode}.iface`;
  const run = startSupervisor(ws, {
    wrapper: ["ip", "netns", "exec", ns],
    flags: manifestFlags(PHANTUN, ifaceFile),
    args: [`--phantun-dir=${PHANTUN}`, "--", ...phantunArgs, "--tun", tun],
    env: {
      MODE: mode,
      IFACE_NAME: tun,
      IFACE_FILE: ifaceFile,
      RUST_LOG: "info",
    },
    timeoutMs: 120_000,
  });
  return { run, ifaceFile };
}

/** Runs `ip netns exec ARGS` with the environment the supervisor gets, minus MODE/IFACE_*. */
function runBare(args: string[]): { code: number; stderr: string } {
  const { code, stderr } = new Deno.Command("ip", {
    args: ["netns", "exec", ...args],
    clearEnv: true,
    env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" },
  }).outputSync();
  return { code, stderr: new TextDecoder().decode(stderr) };
}

/** A panic message names its thread's id, which differs between two runs. */
function withoutThreadIds(text: string): string {
  return text.replace(/thread '(\w+)' \(\d+\)/g, "thread '$1'");
}

function linkExists(ns: string, name: string): boolean {
  try {
    run(["ip", "-n", ns, "link", "show", name]);
    return true;
  } catch {
    return false;
  }
}

/** Sends `count` datagrams of each size through the client; returns how many came back. */
function probe(
  ns: string,
  count: number,
  sizes: number[],
): { sent: number; echoed: number } {
  const out = inNamespace(
    ns,
    `"$DENO" run --allow-net=127.0.0.1,0.0.0.0 "$ROOT/e2e/udp_probe.ts" 127.0.0.1 5555 ${count} ${
      sizes.join(",")
    }`,
    { DENO, ROOT },
  );
  return JSON.parse(out);
}

/**
 * README's traffic-seen block, run in the client's namespace on its handoff
 * file: the TUN's RX and TX packet counters each hold at least one segment per
 * datagram sent.
 */
function assertTrafficSeen(ns: string, ifaceFile: string, sent: number) {
  const out = inNamespace(
    ns,
    readmeBlock("traffic-seen").replace("/run/phantun/client.iface", ifaceFile),
  );
  for (const direction of ["RX", "TX"]) {
    const packets = Number(
      out.match(new RegExp(`${direction}:[^\\n]*\\n\\s*\\d+\\s+(\\d+)`))?.[1],
    );
    assert.ok(
      packets >= sent,
      `${direction} packets ${packets} < ${sent}:\n${out}`,
    );
  }
}

async function stopAndCheck(
  ns: string,
  tun: string,
  started: { run: Supervisor; ifaceFile: string },
): Promise<void> {
  assert.equal(Deno.readTextFileSync(started.ifaceFile), tun);
  assert.ok(linkExists(ns, tun), `${tun} exists in ${ns}`);
  // The launch blocks SIGUSR1 in the supervisor, and Deno.Command passes the
  // mask on: phantun runs with SIGUSR1 blocked too (DESIGN.md §4).
  const supervisor = started.run.process.pid;
  const phantun = output(
    "sh",
    "-c",
    `cat /proc/${supervisor}/task/*/children`,
  ).trim();
  assert.match(
    output("cat", `/proc/${supervisor}/status`),
    /^SigBlk:\s+0*200$/m,
  );
  assert.match(output("cat", `/proc/${phantun}/status`), /^SigBlk:\s+0*200$/m);
  started.run.process.kill("SIGTERM");
  const result = await started.run.finished;
  assert.equal(result.code, 143, result.stderr);
  assert.equal(Deno.readTextFileSync(started.ifaceFile), "");
  assert.ok(!linkExists(ns, tun), `${tun} gone from ${ns}`);
}

/** The whole tunnel for one firewall front end, IPv4 then IPv6. */
async function tunnelThrough(firewall: Firewall): Promise<void> {
  const topology = createTopology(`${firewall}${Deno.pid}`);
  try {
    applyHostSetup(topology, firewall);
    for (const ns of [topology.client, topology.server]) countWire(ns);
    const ws = workspace();
    inNamespace(
      topology.server,
      `"$DENO" run --allow-net "$ROOT/e2e/udp_echo.ts" 127.0.0.1 7777 >/dev/null 2>&1 &`,
      {
        DENO,
        ROOT,
      },
    );
    const server = supervise(ws, topology.server, "server", SERVER_TUN, [
      "--local",
      String(PORT),
      "--remote",
      ECHO,
    ]);
    await waitFor("server TUN", () => linkExists(topology.server, SERVER_TUN));
    assert.equal(Deno.readTextFileSync(server.ifaceFile), SERVER_TUN);

    for (
      const [remote, maxPayload] of [
        [`${topology.serverAddr4}:${PORT}`, 1460],
        [`[${topology.serverAddr6}]:${PORT}`, 1440],
      ] as const
    ) {
      const client = supervise(ws, topology.client, "client", CLIENT_TUN, [
        "--local",
        "127.0.0.1:5555",
        "--remote",
        remote,
      ]);
      await waitFor(
        "client TUN",
        () => linkExists(topology.client, CLIENT_TUN),
      );
      const sizes = [1, 64, 512, 1024, maxPayload];
      const { sent, echoed } = probe(topology.client, 100, sizes);
      assert.deepEqual({ sent, echoed }, {
        sent: 100 * sizes.length,
        echoed: 100 * sizes.length,
      }, `through ${remote}`);
      assertTrafficSeen(topology.client, client.ifaceFile, sent);
      await stopAndCheck(topology.client, CLIENT_TUN, client);
    }
    // Each echoed datagram crossed the link twice: once into each host.
    for (const ns of [topology.client, topology.server]) {
      const seen = wireCounts(ns);
      assert.equal(seen.udp, 0, `no UDP arrived at ${ns}`);
      assert.ok(seen.tcp >= 2 * 5 * 100, `TCP packets into ${ns}: ${seen.tcp}`);
    }
    await stopAndCheck(topology.server, SERVER_TUN, server);
  } finally {
    destroyTopology(topology);
  }
}

testWhen(
  MISSING,
  "UDP echoes through real phantun over IPv4 and IPv6 with the README's nft rules; only TCP crosses",
  () => tunnelThrough("nft"),
);

testWhen(
  MISSING,
  "UDP echoes through real phantun over IPv4 and IPv6 with the README's iptables rules; only TCP crosses",
  () => tunnelThrough("iptables"),
);

testWhen(
  MISSING,
  "bad phantun arguments surface phantun's own usage error and exit code",
  async () => {
    const topology = createTopology(`args${Deno.pid}`);
    try {
      const ws = workspace();
      const bare = runBare([
        topology.server,
        `${PHANTUN}/phantun_server`,
        "--bogus",
      ]);
      const started = supervise(ws, topology.server, "server", SERVER_TUN, [
        "--bogus",
      ]);
      const result = await started.run.finished;
      assert.equal(bare.code, 2);
      assert.equal(result.code, bare.code);
      assert.equal(result.stderr, bare.stderr);
      assert.ok(result.stderr.includes("--bogus"));
      assert.equal(Deno.readTextFileSync(started.ifaceFile), "");
    } finally {
      destroyTopology(topology);
    }
  },
);

testWhen(
  MISSING ?? missingCommand("setpriv"),
  "without NET_ADMIN phantun's TUN error and exit code surface unchanged",
  async () => {
    const topology = createTopology(`cap${Deno.pid}`);
    try {
      const ws = workspace();
      const dropCap = [
        "setpriv",
        "--inh-caps=-net_admin",
        "--bounding-set=-net_admin",
      ];
      const phantunArgs = [
        "--local",
        String(PORT),
        "--remote",
        ECHO,
        "--tun",
        SERVER_TUN,
      ];
      const bare = runBare([
        topology.server,
        ...dropCap,
        `${PHANTUN}/phantun_server`,
        ...phantunArgs,
      ]);
      const ifaceFile = `${ws.scratch}/server.iface`;
      const result = await startSupervisor(ws, {
        wrapper: ["ip", "netns", "exec", topology.server, ...dropCap],
        flags: manifestFlags(PHANTUN, ifaceFile),
        args: [`--phantun-dir=${PHANTUN}`, "--", ...phantunArgs],
        env: { MODE: "server", IFACE_NAME: SERVER_TUN, IFACE_FILE: ifaceFile },
      }).finished;
      const bareStderr = bare.stderr;
      assert.notEqual(bare.code, 0);
      assert.equal(result.code, bare.code);
      assert.match(bareStderr, /Operation not permitted|EPERM/);
      assert.equal(
        withoutThreadIds(result.stderr),
        withoutThreadIds(bareStderr),
      );
      assert.equal(Deno.readTextFileSync(ifaceFile), "");
    } finally {
      destroyTopology(topology);
    }
  },
);

testWhen(
  MISSING,
  "the supervisor changes no ruleset, route or forwarding sysctl in its namespace",
  async () => {
    const topology: Topology = createTopology(`state${Deno.pid}`);
    try {
      applyHostSetup(topology, "nft");
      const before = networkState(topology.server);
      const ws = workspace();
      const server = supervise(ws, topology.server, "server", SERVER_TUN, [
        "--local",
        String(PORT),
        "--remote",
        ECHO,
      ]);
      await waitFor(
        "server TUN",
        () => linkExists(topology.server, SERVER_TUN),
      );
      server.run.process.kill("SIGTERM");
      assert.equal((await server.run.finished).code, 143);
      assert.equal(networkState(topology.server), before);
    } finally {
      destroyTopology(topology);
    }
  },
);

testWhen(
  MISSING,
  "namespaces are torn down even when a test fails midway",
  () => {
    const topology = createTopology(`teardown${Deno.pid}`);
    assert.throws(() => {
      try {
        inNamespace(topology.client, "exit 3");
      } finally {
        destroyTopology(topology);
      }
    });
    const left = run(["ip", "netns", "list"]);
    assert.ok(
      !left.includes(topology.client) && !left.includes(topology.server),
      left,
    );
  },
);

/**
 * The demo's status lines (a line a second when stderr is no terminal): UDP
 * echoed through the tunnel, only TCP on the wire between the hosts.
 */
function assertDemoStatus(stderr: string): void {
  const lines = [
    ...stderr.matchAll(
      /(\d+)\/(\d+) datagrams echoed; on the wire (\d+) TCP segments, (\d+) UDP packets/g,
    ),
  ];
  assert.ok(lines.length >= 2, stderr);
  const [, echoed, sent, tcp, udp] = lines.at(-1)!.map(Number);
  assert.ok(echoed > 100 && sent - echoed <= 1, `${echoed}/${sent}`);
  assert.ok(tcp >= 2 * echoed, `${tcp} TCP segments for ${echoed} echoes`);
  assert.equal(udp, 0, "UDP on the wire");
}

testWhen(
  MISSING,
  "deno task demo --duration stops by itself after that many seconds, with the tunnel's status, and tears everything down",
  async () => {
    const started = Date.now();
    const { code, stdout, stderr } = await new Deno.Command(DENO, {
      args: ["task", "demo", "--duration", "5"],
      cwd: ROOT,
    }).output();
    const [out, err] = [stdout, stderr].map((b) => new TextDecoder().decode(b));
    assert.equal(code, 0, err);
    assertDemoStatus(err);
    assert.match(out, /torn down/);
    assert.ok(Date.now() - started < 60_000);
    assert.ok(!run(["ip", "netns", "list"]).includes("prt-demo"));
  },
);

testWhen(
  MISSING ?? missingCommand("setsid"),
  "deno task demo shows the tunnel working and Ctrl-C tears everything down",
  async () => {
    // setsid gives the demo its own process group, like a terminal does; SIGINT
    // to the group is Ctrl-C.
    const demo = new Deno.Command("setsid", {
      args: [DENO, "task", "demo"],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stdout = new Response(demo.stdout).text();
    let err = "";
    const reading = (async () => {
      for await (
        const chunk of demo.stderr.pipeThrough(new TextDecoderStream())
      ) err += chunk;
    })();
    try {
      // Live counts until more than 100 echoes: the tunnel comes up on first
      // use, later on a loaded machine.
      await waitFor(
        "more than 100 echoes in the demo's status",
        () =>
          Number(err.match(/(\d+)\/\d+ datagrams echoed[^\n]*\n$/)?.[1]) > 100,
        60_000,
      );
    } finally {
      Deno.kill(-demo.pid, "SIGINT");
    }
    const status = await demo.status;
    await reading;
    const out = await stdout;
    assert.equal(status.code, 0, err);
    assert.match(out, /server TUN from .*: ptun0\n/);
    assert.match(out, /client TUN from .*: ptun0\n/);
    assertDemoStatus(err);
    assert.match(out, /torn down/);
    assert.ok(
      !run(["ip", "netns", "list"]).includes("prt-demo"),
      "demo namespaces remain",
    );
  },
);
