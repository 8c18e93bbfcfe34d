/**
 * Several tunnels on one host: the README's two servers on one "host" and two
 * clients on another, each with its own --tun name, TUN addresses, port,
 * handoff file and NAT rules, carry UDP echo at once; stopping one tunnel
 * leaves the other carrying traffic.
 */
import assert from "node:assert/strict";
import {
  assertEcho,
  assertReadmeStop,
  device,
  DOCKER,
  imageTest,
  installTmpfiles,
  ipOf,
  NAMES,
  PREFIX,
  readmeOk,
  remove,
  type Replacement,
  tunNode,
  waitForLink,
  withHosts,
} from "./harness.ts";

/** deploy/README.md block tunnels-tmpfiles. */
const TUNNELS_TMPFILES = String
  .raw`cat >/etc/tmpfiles.d/phantun-tunnels.conf <<'EOF'
d /run/phantun 0755 root root -
f /run/phantun/server-a.iface 0644 65532 65532 -
f /run/phantun/server-b.iface 0644 65532 65532 -
f /run/phantun/client-a.iface 0644 65532 65532 -
f /run/phantun/client-b.iface 0644 65532 65532 -
EOF
systemd-tmpfiles --create phantun-tunnels.conf`;

/** deploy/README.md block tunnels-servers. */
const TUNNELS_SERVERS = String
  .raw`docker run -d --name phantun-server-a --network host --cap-add NET_ADMIN --device /dev/net/tun \
  --security-opt seccomp=/etc/phantun-runtime/seccomp.json -v /run/phantun/server-a.iface:/run/phantun/iface \
  -e MODE=server -e IFACE_FILE=/run/phantun/iface -e IFACE_NAME=ptun-a \
  phantun-runtime -- --local 4567 --remote 127.0.0.1:1234 --tun ptun-a \
  --tun-local 192.168.201.1 --tun-peer 192.168.201.2 --tun-local6 fcc9::1 --tun-peer6 fcc9::2
docker run -d --name phantun-server-b --network host --cap-add NET_ADMIN --device /dev/net/tun \
  --security-opt seccomp=/etc/phantun-runtime/seccomp.json -v /run/phantun/server-b.iface:/run/phantun/iface \
  -e MODE=server -e IFACE_FILE=/run/phantun/iface -e IFACE_NAME=ptun-b \
  phantun-runtime -- --local 4568 --remote 127.0.0.1:1235 --tun ptun-b \
  --tun-local 192.168.203.1 --tun-peer 192.168.203.2 --tun-local6 fccb::1 --tun-peer6 fccb::2`;

/** deploy/README.md block tunnels-clients. */
const TUNNELS_CLIENTS = String
  .raw`docker run -d --name phantun-client-a --network host --cap-add NET_ADMIN --device /dev/net/tun \
  --security-opt seccomp=/etc/phantun-runtime/seccomp.json -v /run/phantun/client-a.iface:/run/phantun/iface \
  -e MODE=client -e IFACE_FILE=/run/phantun/iface -e IFACE_NAME=ptun-a \
  phantun-runtime -- --local 127.0.0.1:1234 --remote server.example.com:4567 --tun ptun-a \
  --tun-local 192.168.200.1 --tun-peer 192.168.200.2 --tun-local6 fcc8::1 --tun-peer6 fcc8::2
docker run -d --name phantun-client-b --network host --cap-add NET_ADMIN --device /dev/net/tun \
  --security-opt seccomp=/etc/phantun-runtime/seccomp.json -v /run/phantun/client-b.iface:/run/phantun/iface \
  -e MODE=client -e IFACE_FILE=/run/phantun/iface -e IFACE_NAME=ptun-b \
  phantun-runtime -- --local 127.0.0.1:1235 --remote server.example.com:4568 --tun ptun-b \
  --tun-local 192.168.202.1 --tun-peer 192.168.202.2 --tun-local6 fcca::1 --tun-peer6 fcca::2`;

const TUNNELS = { a: { port: 1234 }, b: { port: 1235 } } as const;

imageTest(
  "two tunnels between two hosts at once (the README's two servers, two clients, their NAT rules and handoff files) carry UDP echo together, each file holds its own name, and stopping one leaves the other carrying traffic",
  async () => {
    const tun = await tunNode();
    const root = await installTmpfiles();
    // The host's paths under the test's root (systemd-tmpfiles --root).
    await readmeOk(DOCKER, TUNNELS_TMPFILES, [
      [">/etc/tmpfiles.d/", `>${root}/etc/tmpfiles.d/`],
      ["systemd-tmpfiles --create", `systemd-tmpfiles --root=${root} --create`],
    ]);
    const files: Replacement = [
      /\/run\/phantun\/(\w+-[ab])\.iface/g,
      `${root}/run/phantun/$1.iface`,
    ];
    const file = (end: string, t: string) =>
      Deno.readTextFileSync(`${root}/run/phantun/${end}-${t}.iface`);
    const names = ["server", "client"].flatMap((end) =>
      ["a", "b"].map((t) => `${PREFIX}${end}-${t}`)
    );
    await withHosts(DOCKER, "tunnels", async (hosts) => {
      try {
        await readmeOk(DOCKER, TUNNELS_SERVERS, [
          hosts.on(hosts.server),
          device(tun),
          files,
          NAMES,
        ]);
        await readmeOk(DOCKER, TUNNELS_CLIENTS, [
          hosts.on(hosts.client),
          device(tun),
          files,
          NAMES,
          ["server.example.com", await ipOf(DOCKER, hosts.server)],
        ]);
        for (const t of ["a", "b"]) {
          for (const end of ["server", "client"]) {
            await waitForLink(DOCKER, `${PREFIX}${end}-${t}`, `ptun-${t}`);
          }
          assert.equal(file("server", t), `ptun-${t}`);
          assert.equal(file("client", t), `ptun-${t}`);
        }
        const echo = (t: keyof typeof TUNNELS) =>
          assertEcho(
            DOCKER,
            `container:${hosts.client}`,
            "127.0.0.1",
            TUNNELS[t].port,
          );
        await Promise.all([echo("a"), echo("b")]);
        // Stop tunnel a at both ends, as README's stop does.
        for (const end of ["client", "server"]) {
          await assertReadmeStop(DOCKER, `${PREFIX}${end}-a`);
          assert.equal(file(end, "a"), "");
          assert.equal(file(end, "b"), "ptun-b");
        }
        await echo("b");
      } finally {
        await remove(DOCKER, ...names);
      }
    }, {
      nat: ["tunnels-client-nft", "tunnels-server-nft"],
      echo: [1234, 1235],
    });
  },
);
