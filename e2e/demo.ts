/**
 * `deno task demo [--duration SECONDS]` (as root): phantun-runtime working
 * without Docker. Provisions phantun (built from crates.io on first use),
 * builds the README's two hosts as network namespaces, runs phantun_server and
 * phantun_client under the supervisor, sends UDP through the tunnel, and shows
 * one status line (datagrams echoed; TCP segments and UDP packets seen on the
 * wire between the hosts), redrawn in place on a terminal and a line a second
 * otherwise. Tears everything down at Ctrl-C or after SECONDS.
 */
import { superviseInNamespace } from "./supervisor.ts";
import {
  applyHostSetup,
  countWire,
  createTopology,
  destroyTopology,
  inNamespace,
  phantunDir,
  provisionPhantun,
  wireCounts,
} from "./topology.ts";

const ROOT = new URL("../", import.meta.url).pathname;

if (Deno.uid() !== 0) {
  console.error("demo: run as root (it creates network namespaces)");
  Deno.exit(1);
}
const durationAt = Deno.args.indexOf("--duration");
const duration = durationAt === -1
  ? Infinity
  : Number(Deno.args[durationAt + 1]);
if (!(duration > 0)) {
  console.error("demo: usage: deno task demo [--duration SECONDS]");
  Deno.exit(2);
}

const missing = provisionPhantun();
if (missing !== null) {
  console.error(`demo: ${missing}`);
  Deno.exit(1);
}

const topology = createTopology("demo");
const scratch = Deno.makeTempDirSync({ prefix: "phantun-runtime-demo-" });
let tornDown = false;
function teardown(): void {
  if (tornDown) return;
  tornDown = true;
  destroyTopology(topology);
  Deno.removeSync(scratch, { recursive: true });
  console.log("demo: torn down (namespaces, processes, handoff files)");
}
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => {
    teardown();
    Deno.exit(0);
  });
}

async function handoff(file: string): Promise<string> {
  for (let i = 0; i < 200; i++) {
    const name = Deno.readTextFileSync(file);
    if (name !== "") return name;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`${file} stayed empty`);
}

try {
  applyHostSetup(topology, "nft");
  console.log(
    `demo: hosts ${topology.client} and ${topology.server} ready (README's nft rules applied)`,
  );
  inNamespace(
    topology.server,
    `"$DENO" run --allow-net "$ROOT/e2e/udp_echo.ts" 127.0.0.1 7777 >/dev/null 2>&1 &`,
    {
      DENO: Deno.execPath(),
      ROOT,
    },
  );
  const common = { phantunDir: phantunDir(), stdio: "null" } as const;
  const serverFile = `${scratch}/server.iface`;
  const clientFile = `${scratch}/client.iface`;
  Deno.writeTextFileSync(serverFile, "");
  Deno.writeTextFileSync(clientFile, "");
  superviseInNamespace({
    ...common,
    ns: topology.server,
    mode: "server",
    tun: "ptun0",
    ifaceFile: serverFile,
    phantunArgs: ["--local", "4567", "--remote", "127.0.0.1:7777"],
  });
  console.log(
    `demo: server TUN from ${serverFile}: ${await handoff(serverFile)}`,
  );
  superviseInNamespace({
    ...common,
    ns: topology.client,
    mode: "client",
    tun: "ptun0",
    ifaceFile: clientFile,
    phantunArgs: [
      "--local",
      "127.0.0.1:5555",
      "--remote",
      `${topology.serverAddr4}:4567`,
    ],
  });
  console.log(
    `demo: client TUN from ${clientFile}: ${await handoff(clientFile)}`,
  );
  console.log(
    `demo: sending UDP to the client's 127.0.0.1:5555 (${
      duration === Infinity ? "Ctrl-C to stop" : `for ${duration} s`
    })`,
  );
  for (const ns of [topology.client, topology.server]) countWire(ns);
  const probe = new Deno.Command("ip", {
    args: [
      "netns",
      "exec",
      topology.client,
      Deno.execPath(),
      "run",
      "--allow-net=127.0.0.1,0.0.0.0",
      `${ROOT}e2e/udp_probe.ts`,
      "127.0.0.1",
      "5555",
      "Infinity",
      "1200",
      "--live",
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  let latest = { sent: 0, echoed: 0 };
  const terminal = Deno.stderr.isTerminal();
  const status = () => {
    const wire = [topology.client, topology.server].map(wireCounts);
    const line =
      `demo: ${latest.echoed}/${latest.sent} datagrams echoed; on the wire ${
        wire[0].tcp + wire[1].tcp
      } TCP segments, ${wire[0].udp + wire[1].udp} UDP packets`;
    Deno.stderr.writeSync(
      new TextEncoder().encode(terminal ? `\r\x1b[K${line}` : `${line}\n`),
    );
  };
  const timer = setInterval(status, 1000);
  // The probe's running count, a JSON line a second, until it ends.
  const reading = (async () => {
    let buffered = "";
    for await (
      const chunk of probe.stdout.pipeThrough(new TextDecoderStream())
    ) {
      const complete = (buffered + chunk).split("\n");
      buffered = complete.pop()!;
      for (const text of complete) if (text !== "") latest = JSON.parse(text);
    }
  })();
  await Promise.race([
    reading,
    ...(duration === Infinity ? [] : [
      new Promise((resolve) => setTimeout(resolve, duration * 1000)),
    ]),
  ]);
  clearInterval(timer);
  status();
  if (terminal) console.error();
  probe.kill();
  await reading;
  await probe.status;
} finally {
  teardown();
}
