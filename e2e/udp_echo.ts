/**
 * A UDP echo service for the end-to-end tests and the demo.
 * Usage: udp_echo.ts HOST PORT (IPv6 hosts without brackets).
 */
import dgram from "node:dgram";

const [host, port] = Deno.args;
const socket = dgram.createSocket(host.includes(":") ? "udp6" : "udp4");
socket.on(
  "message",
  (message, peer) => socket.send(message, peer.port, peer.address),
);
socket.bind(
  Number(port),
  host,
  () => console.log(`echo listening on ${host} ${port}`),
);
