/**
 * Relays TCP from 127.0.0.1:PORT to HOST:HOST_PORT, for iperf3's control
 * connection: phantun carries only the UDP test traffic.
 * Usage: tcp_relay.ts PORT HOST HOST_PORT
 */
const [port, host, hostPort] = Deno.args;
for await (
  const conn of Deno.listen({ hostname: "127.0.0.1", port: Number(port) })
) {
  const upstream = await Deno.connect({
    hostname: host,
    port: Number(hostPort),
  });
  conn.readable.pipeTo(upstream.writable).catch(() => {});
  upstream.readable.pipeTo(conn.writable).catch(() => {});
}
