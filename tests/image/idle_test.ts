/**
 * An idle tunnel: phantun closes a connection after 180 s without traffic
 * (its UDP_TTL, at both ends; with RUST_LOG=info it logs "No traffic seen in
 * the last 180s, closing connection"), and only the client side can open a
 * new one. Two WireGuard tunnels over phantun, each between two "hosts" set up
 * with the README's run commands and NAT, sit idle at the same time for more
 * than 180 s: with `PersistentKeepalive = 25` on the client's peer, server ->
 * client traffic still passes; without it, it does not, until the client
 * side sends again.
 *
 * This kernel has no WireGuard (CONFIG_WIREGUARD is not set), so each host
 * runs Debian's wireguard-go, the userspace implementation of the same
 * protocol, configured by wg (wireguard-tools) from a configuration file.
 */
import assert from "node:assert/strict";
import { missingCommand, waitFor } from "../helpers.ts";
import {
  cmd,
  device,
  DOCKER,
  engineExec,
  exec,
  HOST_CLIENT,
  HOST_SERVER,
  imageTest,
  inspect,
  installTmpfiles,
  ipOf,
  ok,
  PREFIX,
  readmeOk,
  remove,
  type Replacement,
  tempDir,
  tunNode,
  waitForLink,
  withHosts,
} from "./harness.ts";

/** What phantun logs at info when it closes an idle connection. */
const CLOSED = "No traffic seen in the last 180s, closing connection";
/** How long the tunnel with the keepalive sits idle: more than phantun's 180 s. */
const IDLE_MS = 200_000;
/** The WireGuard addresses of the server and the client host. */
const SERVER_WG = "10.99.0.1";
const CLIENT_WG = "10.99.0.2";

/** A WireGuard private key and its public key. */
async function keyPair(): Promise<{ private: string; public: string }> {
  const [key, pub] = (await ok(
    ["sh", "-c", 'key=$(wg genkey) && echo "$key" && echo "$key" | wg pubkey'],
  )).split("\n");
  return { private: key, public: pub };
}

/** The pid whose network namespace is `host`'s. */
const pidOf = (host: string) => inspect(DOCKER, "{{.State.Pid}}", host);

/**
 * wireguard-go as `iface` in `host`'s network namespace, configured by
 * `wg setconf` from `config`, with `address`/24 and the README's WireGuard
 * MTU over IPv4 (1428). Returns the daemon, to be killed by the caller.
 */
async function wireguard(
  host: string,
  iface: string,
  config: string,
  address: string,
): Promise<Deno.ChildProcess> {
  const pid = await pidOf(host);
  const daemon = new Deno.Command("nsenter", {
    args: cmd`-n -t ${pid} wireguard-go -f ${iface}`,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const file = `${tempDir()}/${iface}.conf`;
  Deno.writeTextFileSync(file, config);
  await waitFor(
    `wireguard-go's ${iface}`,
    async () => (await exec(cmd`wg show ${iface}`)).code === 0,
    10_000,
    100,
  );
  await ok(cmd`nsenter -n -t ${pid} sh -ec ${`wg setconf ${iface} ${file}
ip addr add ${address}/24 dev ${iface}
ip link set ${iface} mtu 1428 up`}`);
  return daemon;
}

/** Pings `to` `count` times from `host`'s namespace; how many answers came. */
async function ping(host: string, to: string, count: number): Promise<number> {
  const { stdout } = await exec(
    cmd`nsenter -n -t ${await pidOf(
      host,
    )} ping -n -c ${count} -i 0.5 -W 2 ${to}`,
  );
  return Number(stdout.match(/(\d+) received/)![1]);
}

/** phantun's log in container `name` (stderr). */
async function logs(name: string): Promise<string> {
  const { stdout, stderr } = await engineExec(DOCKER, cmd`logs ${name}`);
  return stdout + stderr;
}

/**
 * One WireGuard tunnel over phantun between two hosts of its own: the
 * README's server and client runs (with RUST_LOG=info), a wireguard-go at
 * each end, the client's peer with or without `PersistentKeepalive = 25`.
 * Traffic passes both ways at first; then the tunnel sits idle (see the
 * file's comment for what each variant must show).
 */
async function idleTunnel(keepalive: boolean): Promise<void> {
  const label = keepalive ? "idle-keepalive" : "idle-none";
  const tun = await tunNode();
  const root = await installTmpfiles();
  const [server, client] = [
    `${PREFIX}${label}-server`,
    `${PREFIX}${label}-client`,
  ];
  const [serverKey, clientKey] = [await keyPair(), await keyPair()];
  await withHosts(DOCKER, label, async (hosts) => {
    const daemons: Deno.ChildProcess[] = [];
    const replacements: Replacement[] = [
      device(tun),
      [
        /\/run\/phantun\/(server|client)\.iface/g,
        `${root}/run/phantun/$1.iface`,
      ],
      [/\bphantun-(server|client)\b/g, `${PREFIX}${label}-$1`],
      ["-e MODE=", "-e RUST_LOG=info -e MODE="],
    ];
    try {
      // phantun's server hands the UDP to 127.0.0.1:1234, WireGuard's port.
      await readmeOk(DOCKER, HOST_SERVER, [
        hosts.on(hosts.server),
        ...replacements,
      ]);
      await readmeOk(DOCKER, HOST_CLIENT, [
        hosts.on(hosts.client),
        ...replacements,
        ["server.example.com", await ipOf(DOCKER, hosts.server)],
      ]);
      for (const name of [server, client]) {
        await waitForLink(DOCKER, name, "ptun0");
      }
      const iface = keepalive ? "prt-wg-ka" : "prt-wg-none";
      daemons.push(
        await wireguard(
          hosts.server,
          `${iface}-s`,
          `[Interface]
PrivateKey = ${serverKey.private}
ListenPort = 1234

[Peer]
PublicKey = ${clientKey.public}
AllowedIPs = ${CLIENT_WG}/32
`,
          SERVER_WG,
        ),
        await wireguard(
          hosts.client,
          `${iface}-c`,
          `[Interface]
PrivateKey = ${clientKey.private}

[Peer]
PublicKey = ${serverKey.public}
Endpoint = 127.0.0.1:1234
AllowedIPs = ${SERVER_WG}/32
${keepalive ? "PersistentKeepalive = 25\n" : ""}`,
          CLIENT_WG,
        ),
      );
      assert.equal(
        await ping(hosts.client, SERVER_WG, 3),
        3,
        "client -> server",
      );
      assert.equal(
        await ping(hosts.server, CLIENT_WG, 3),
        3,
        "server -> client",
      );

      if (keepalive) {
        await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
        assert.equal(await ping(hosts.server, CLIENT_WG, 5), 5, "after idle");
        for (const name of [server, client]) {
          const log = await logs(name);
          assert.ok(!log.includes(CLOSED), log);
        }
      } else {
        // The end whose 180 s timer fires first logs the close and resets
        // the connection, which closes the other end without that line
        // (fake-tcp's Socket sends a reset when dropped): either end may log it.
        await waitFor(
          "either end to log the idle close",
          async () =>
            (await Promise.all([logs(server), logs(client)])).some((log) =>
              log.includes(CLOSED)
            ),
          IDLE_MS + 60_000,
          5_000,
        );
        assert.equal(await ping(hosts.server, CLIENT_WG, 5), 0, "after idle");
        // Only the client side opens a new connection; then both ways pass.
        assert.equal(await ping(hosts.client, SERVER_WG, 3), 3, "client again");
        assert.equal(await ping(hosts.server, CLIENT_WG, 3), 3, "server again");
      }
    } finally {
      for (const daemon of daemons) {
        daemon.kill();
        await daemon.status;
      }
      await remove(DOCKER, server, client);
    }
  }, { echo: [1235] }); // port 1234 of the server host is WireGuard's
}

imageTest(
  "an idle tunnel: after more than 180 s without traffic, server -> client WireGuard traffic over phantun passes with PersistentKeepalive = 25 on the client's peer; without it the end whose timer fires first logs the close, it does not pass, and the client side sending again opens the tunnel",
  async () => {
    const results = await Promise.allSettled([
      idleTunnel(true),
      idleTunnel(false),
    ]);
    for (const result of results) {
      if (result.status === "rejected") throw result.reason;
    }
  },
  DOCKER,
  missingCommand("wg", "wireguard-go", "ping"),
);
