/**
 * `deno task demo` (as root): phantun-runtime working without Docker.
 * Provisions phantun, builds the README's two hosts as network namespaces,
 * runs phantun_server and phantun_client under the supervisor, sends UDP
 * through the tunnel with a live count, and tears everything down on exit or
 * Ctrl-C.
 */
import { superviseInNamespace } from "./supervisor.ts";
import {
  applyHostSetup,
  createTopology,
  destroyTopology,
  inNamespace,
} from "./topology.ts";

const ROOT = new URL("../", import.meta.url).pathname;

if (Deno.uid() !== 0) {
  console.error("demo: run as root (it creates network namespaces)");
  Deno.exit(1);
}

console.log(
  "demo: provisioning phantun 0.8.1 (the first run builds it from crates.io)",
);
const provision = new Deno.Command(`${ROOT}scripts/provision-phantun.sh`, {
  stderr: "inherit",
}).outputSync();
if (!provision.success) Deno.exit(1);
const phantunDir = new TextDecoder().decode(provision.stdout).trim();

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
  const common = { phantunDir, stdio: "null" } as const;
  const serverFile = `${scratch}/server.iface`;
  const clientFile = `${scratch}/client.iface`;
  Deno.writeTextFileSync(serverFile, "");
  Deno.writeTextFileSync(clientFile, "");
  superviseInNamespace({
    ...common,
    ns: topology.server,
    mode: "server",
    tun: "ptun-srv",
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
    "demo: sending UDP to the client's 127.0.0.1:5555 (Ctrl-C to stop)",
  );
  await new Deno.Command("ip", {
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
    stdout: "inherit",
    stderr: "inherit",
  }).output();
} finally {
  teardown();
}
