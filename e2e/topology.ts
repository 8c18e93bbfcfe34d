/**
 * Two throwaway network namespaces, a "client host" and a "server host"
 * joined by a veth pair named eth0 on both sides (the README's WAN), set up
 * as the README tells an administrator. Shared by the end-to-end tests, the demo and the benchmarks.
 * Needs root, `ip`, and `nft` or `iptables`.
 */

/** The two hosts and their addresses on the link between them. */
export type Topology = {
  readonly client: string;
  readonly server: string;
  readonly clientAddr4: string;
  readonly serverAddr4: string;
  readonly clientAddr6: string;
  readonly serverAddr6: string;
};

/** The firewall front ends the README gives rules for. */
export type Firewall = "nft" | "iptables";

/** Runs a program; returns stdout, or throws with its stderr. */
export function run(
  command: string[],
  env: Record<string, string> = {},
): string {
  const { success, stdout, stderr } = new Deno.Command(command[0], {
    args: command.slice(1),
    env,
  }).outputSync();
  const decoder = new TextDecoder();
  if (!success) {
    throw new Error(`${command.join(" ")}: ${decoder.decode(stderr)}`);
  }
  return decoder.decode(stdout);
}

/** Runs a shell script inside network namespace `ns`. */
export function inNamespace(
  ns: string,
  script: string,
  env: Record<string, string> = {},
): string {
  return run(["ip", "netns", "exec", ns, "sh", "-ec", script], env);
}

/** The documents whose shell blocks are executed: README.md and its recipes. */
export const DOCS = ["README.md", "deploy/README.md"] as const;

/** DOCS' texts, read at the first {@link docTexts}. */
let texts: readonly string[] | undefined;

/** The texts of {@link DOCS}, in the same order; read once, at the first call. */
export function docTexts(): readonly string[] {
  texts ??= DOCS.map((doc) =>
    Deno.readTextFileSync(new URL(`../${doc}`, import.meta.url))
  );
  return texts;
}

/**
 * The shell block that follows `<!-- readme-test: ID -->` in README.md or
 * deploy/README.md, so the tests run exactly what the documents tell
 * administrators to run.
 */
export function readmeBlock(id: string): string {
  const marker = `<!-- readme-test: ${id} -->`;
  for (const [i, doc] of DOCS.entries()) {
    const text = docTexts()[i];
    const at = text.indexOf(marker);
    if (at === -1) continue;
    const block = text.slice(at).match(/```sh\n([\s\S]*?)```/);
    if (!block) throw new Error(`${doc} has no sh block after ${marker}`);
    return block[1];
  }
  throw new Error(`no ${marker} in ${DOCS.join(" or ")}`);
}

/** Creates the two hosts; `tag` keeps concurrent runs apart. */
export function createTopology(tag: string): Topology {
  const topology: Topology = {
    client: `prt-${tag}-client`,
    server: `prt-${tag}-server`,
    clientAddr4: "10.250.0.1",
    serverAddr4: "10.250.0.2",
    clientAddr6: "fd50::1",
    serverAddr6: "fd50::2",
  };
  destroyTopology(topology); // leftovers of an interrupted run
  run(["ip", "netns", "add", topology.client]);
  run(["ip", "netns", "add", topology.server]);
  run([
    "ip",
    "-n",
    topology.client,
    "link",
    "add",
    "eth0",
    "type",
    "veth",
    "peer",
    "name",
    "eth0",
    "netns",
    topology.server,
  ]);
  for (
    const [ns, addr4, addr6] of [
      [topology.client, topology.clientAddr4, topology.clientAddr6],
      [topology.server, topology.serverAddr4, topology.serverAddr6],
    ]
  ) {
    inNamespace(
      ns,
      `ip link set lo up
       sysctl -qw net.ipv6.conf.eth0.accept_dad=0
       ip addr add ${addr4}/24 dev eth0
       ip addr add ${addr6}/64 dev eth0
       ip link set eth0 up`,
    );
  }
  // Settle before anyone takes a snapshot: carrier up on both ends.
  for (const ns of [topology.client, topology.server]) {
    inNamespace(
      ns,
      "for i in $(seq 200); do ip link show eth0 | grep -q 'state UP' && exit; sleep 0.05; done; exit 1",
    );
  }
  return topology;
}

/** Kills whatever still runs in the two hosts and deletes them. Never throws. */
export function destroyTopology(topology: Topology): void {
  for (const ns of [topology.client, topology.server]) {
    try {
      run([
        "sh",
        "-c",
        'for pid in $(ip netns pids "$1"); do kill -9 "$pid"; done',
        "sh",
        ns,
      ]);
      run(["ip", "netns", "del", ns]);
    } catch {
      // namespace already gone
    }
  }
}

/**
 * Applies the README's host setup with the README's own variables (WAN=eth0,
 * TUN=ptun0, PORT=4567) to hosts whose forwarding is filtered as Docker leaves
 * it: forwarding and the TUN's forward accept on both hosts, then the client
 * masquerade and the server DNAT with `firewall`'s commands.
 */
export function applyHostSetup(topology: Topology, firewall: Firewall): void {
  // Each host filters forwarding as Docker leaves it (FORWARD policy DROP),
  // so the README's forward-accept block is what lets the tunnel through.
  const forwarding = `iptables -P FORWARD DROP
ip6tables -P FORWARD DROP
${readmeBlock("forwarding")}${readmeBlock("forward-accept")}`;
  const [client, server] = firewall === "nft"
    ? [readmeBlock("client-nft"), readmeBlock("server-nft")]
    : [readmeBlock("client-iptables"), readmeBlock("server-iptables")];
  // The forwarding block also sets the variables the rules use.
  inNamespace(topology.client, forwarding + client);
  inNamespace(topology.server, forwarding + server);
}

/**
 * The networking state of `ns` that the runtime must never change: nftables
 * and iptables rulesets (counters stripped), links, addresses, routes and the
 * forwarding sysctls.
 */
export function networkState(ns: string): string {
  return inNamespace(
    ns,
    `nft list ruleset
     iptables-save | sed '/^#/d'
     ip6tables-save | sed '/^#/d'
     ip -o link | sed 's/link\\/ether [0-9a-f:]*//'
     ip -o addr
     ip route; ip -6 route
     sysctl net.ipv4.ip_forward net.ipv6.conf.all.forwarding net.ipv6.conf.default.forwarding`,
  ).replace(/\[\d+:\d+\]/g, "");
}

/**
 * Adds packet counters on `ns`'s eth0 ingress, by protocol (a netdev table of
 * its own), so that what crosses the link can be counted.
 */
export function countWire(ns: string): void {
  inNamespace(
    ns,
    `nft -f - <<'EOF'
table netdev phantun_runtime_wire {
  chain ingress {
    type filter hook ingress device eth0 priority 0; policy accept;
    meta l4proto tcp counter
    meta l4proto udp counter
  }
}
EOF`,
  );
}

/** The TCP segments and UDP packets {@link countWire} has seen arrive at `ns`. */
export function wireCounts(ns: string): { tcp: number; udp: number } {
  const listing = inNamespace(ns, "nft list table netdev phantun_runtime_wire");
  const packets = (proto: string) =>
    Number(
      listing.match(new RegExp(`l4proto ${proto} counter packets (\\d+)`))![1],
    );
  return { tcp: packets("tcp"), udp: packets("udp") };
}

/** The real phantun binaries' directory: $PHANTUN_DIR or the provisioning cache. */
export function phantunDir(): string {
  const cache = Deno.env.get("PHANTUN_CACHE") ??
    `${Deno.env.get("HOME")}/.cache/phantun-runtime`;
  return Deno.env.get("PHANTUN_DIR") ?? `${cache}/phantun-0.8.1/bin`;
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/**
 * Makes sure real phantun is in {@link phantunDir}: when it is not, and
 * $PHANTUN_DIR is unset, scripts/provision-phantun.sh builds it there from
 * crates.io (one progress line while it builds) if cargo is on PATH. Returns
 * why phantun is missing, or null; throws when the build fails.
 */
export function provisionPhantun(): string | null {
  const dir = phantunDir();
  if (isFile(`${dir}/phantun_client`) && isFile(`${dir}/phantun_server`)) {
    return null;
  }
  if (Deno.env.has("PHANTUN_DIR")) {
    return `no phantun binaries in PHANTUN_DIR ${dir}`;
  }
  const path = (Deno.env.get("PATH") ?? "").split(":");
  if (!path.some((entry) => isFile(`${entry}/cargo`))) {
    return `no phantun binaries in ${dir} and cargo not found on PATH to build them (scripts/provision-phantun.sh)`;
  }
  const script = new URL("../scripts/provision-phantun.sh", import.meta.url);
  const { success } = new Deno.Command(script, { stderr: "inherit" })
    .outputSync();
  if (!success) throw new Error("scripts/provision-phantun.sh failed");
  return null;
}
