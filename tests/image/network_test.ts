/**
 * Network modes: the README's quick start and host-network examples under
 * Docker and Podman, in two "hosts" made of holder containers, carrying UDP
 * echo through real phantun; the bridge-network examples under Docker.
 */
import assert from "node:assert/strict";
import {
  assertEcho,
  assertReadmeStop,
  cmd,
  denoContainer,
  device,
  DOCKER,
  engineExec,
  ENGINES,
  HOST_CLIENT,
  HOST_SERVER,
  imageTest,
  installTmpfiles,
  ipOf,
  lines,
  NAMES,
  PREFIX,
  QUICKSTART,
  readmeOk,
  remove,
  type Replacement,
  rewrite,
  tunNode,
  udpEcho,
  waitForLink,
  withHosts,
} from "./harness.ts";

/** deploy/README.md block docker-bridge-server. */
const BRIDGE_SERVER = String.raw`docker network create phantun
docker run -d --name phantun-server --network phantun \
  --sysctl net.ipv4.ip_forward=1 -p 4567:4567/tcp \
  --cap-add NET_ADMIN --device /dev/net/tun --security-opt seccomp=/etc/phantun-runtime/seccomp.json \
  -e MODE=server phantun-runtime -- --local 4567 --remote app:1234 --tun ptun0
nsenter -n -t "$(docker inspect -f '{{.State.Pid}}' phantun-server)" nft -f - <<EOF
table inet phantun_server {
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    iifname "eth0" tcp dport 4567 dnat ip to 192.168.201.2
    iifname "eth0" tcp dport 4567 dnat ip6 to fcc9::2
  }
}
EOF`;

/** deploy/README.md block docker-bridge-client. */
const BRIDGE_CLIENT = String
  .raw`docker run -d --name phantun-client --network phantun \
  --sysctl net.ipv4.ip_forward=1 -p 127.0.0.1:1234:1234/udp \
  --cap-add NET_ADMIN --device /dev/net/tun --security-opt seccomp=/etc/phantun-runtime/seccomp.json \
  -e MODE=client phantun-runtime -- --local 0.0.0.0:1234 --remote server.example.com:4567 --tun ptun0
nsenter -n -t "$(docker inspect -f '{{.State.Pid}}' phantun-client)" nft -f - <<EOF
table inet phantun_client {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    iifname "ptun0" oifname "eth0" masquerade
  }
}
EOF`;

for (const engine of ENGINES) {
  const e = engine.name;

  imageTest(
    `${e}: the README quick start's run creates ptun0 in the host's namespace and ends with 143 when the CLI gets SIGTERM`,
    async () => {
      const tun = await tunNode();
      await withHosts(engine, "quickstart", async (hosts) => {
        const script = rewrite(engine, lines(QUICKSTART, 3), [
          hosts.on(hosts.server),
          device(tun),
        ]);
        const run = new Deno.Command("sh", {
          args: ["-ec", `exec ${script}`],
          env: { PATH: `/usr/bin:${Deno.env.get("PATH")}`, ...engine.env },
          stdout: "piped",
          stderr: "piped",
        }).spawn();
        try {
          await waitForLink(engine, hosts.server, "ptun0");
        } finally {
          run.kill("SIGTERM");
        }
        const { code, stderr } = await run.output();
        assert.equal(code, 143, new TextDecoder().decode(stderr));
      });
    },
    engine,
  );

  imageTest(
    `${e}: host network: the README's run examples carry UDP echo and hand off ptun0 through the bind-mounted files; stop ends them with 143`,
    async () => {
      const tun = await tunNode();
      const root = await installTmpfiles();
      const dir = `${root}/run/phantun`;
      const names = [`${PREFIX}server`, `${PREFIX}client`];
      await withHosts(engine, "host", async (hosts) => {
        // Only the host paths: the container's /run/phantun/iface stays.
        const hostFiles: Replacement = [
          /\/run\/phantun\/(server|client)\.iface/g,
          `${dir}/$1.iface`,
        ];
        const address = await ipOf(engine, hosts.server);
        try {
          await readmeOk(engine, HOST_SERVER, [
            hosts.on(hosts.server),
            device(tun),
            hostFiles,
            NAMES,
          ]);
          await readmeOk(engine, HOST_CLIENT, [
            hosts.on(hosts.client),
            device(tun),
            hostFiles,
            NAMES,
            ["server.example.com", address],
          ]);
          for (const name of names) await waitForLink(engine, name, "ptun0");
          for (const mode of ["server", "client"]) {
            assert.equal(
              Deno.readTextFileSync(`${dir}/${mode}.iface`),
              "ptun0",
            );
          }
          await assertEcho(
            engine,
            `container:${hosts.client}`,
            "127.0.0.1",
            1234,
          );
          for (const mode of ["server", "client"]) {
            await assertReadmeStop(engine, `${PREFIX}${mode}`);
            assert.equal(Deno.readTextFileSync(`${dir}/${mode}.iface`), "");
          }
        } finally {
          await remove(engine, ...names);
        }
      });
    },
    engine,
  );
}

imageTest(
  "docker: bridge network: the README's client and server containers carry UDP echo, with ip_forward from --sysctl and NAT applied in their namespaces from outside",
  async () => {
    const tun = await tunNode();
    const net = `${PREFIX}bridge`;
    const app = `${net}-app`;
    const [server, client] = [`${PREFIX}server`, `${PREFIX}client`];
    const bridge: Replacement[] = [
      [/(network create|--network) phantun\b/g, `$1 ${net}`],
      ["-p 4567:4567/tcp ", ""],
      ["-p 127.0.0.1:1234:1234/udp ", ""],
      ["app:1234", `${app}:1234`],
      ["server.example.com", server],
      device(tun),
      NAMES,
    ];
    await remove(DOCKER, server, client);
    await engineExec(DOCKER, cmd`network rm ${net}`);
    try {
      await readmeOk(DOCKER, lines(BRIDGE_SERVER, 0, 1), bridge);
      await denoContainer(DOCKER, app, net, udpEcho(1234));
      await readmeOk(DOCKER, lines(BRIDGE_SERVER, 1), bridge);
      await readmeOk(DOCKER, BRIDGE_CLIENT, bridge);
      await waitForLink(DOCKER, server, "ptun0");
      await waitForLink(DOCKER, client, "ptun0");
      await assertEcho(DOCKER, net, client, 1234);
    } finally {
      await remove(DOCKER, app, server, client);
      await engineExec(DOCKER, cmd`network rm ${net}`);
    }
  },
);
