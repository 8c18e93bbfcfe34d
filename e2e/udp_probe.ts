/**
 * Sends UDP datagrams one at a time to HOST:PORT and checks each echo.
 * Usage: udp_probe.ts HOST PORT COUNT SIZE[,SIZE...] [--live]
 * Waits up to 15 s for the first echo (the tunnel comes up on first use),
 * then sends COUNT datagrams per size, each awaited for at most 1 s.
 * Prints one JSON line: {"sent": n, "echoed": n, "bytes": n}.
 * With --live it also prints the running count once a second, as that JSON
 * line (the demo reads it; COUNT is Infinity there).
 */
import dgram from "node:dgram";

const [host, port, countArg, sizesArg, live] = Deno.args;
const socket = dgram.createSocket(host.includes(":") ? "udp6" : "udp4");
const inbox: Uint8Array[] = [];
let wake: (() => void) | null = null;
socket.on("message", (message) => {
  inbox.push(message);
  wake?.();
});

/** Sends `payload` and resolves true when the same bytes come back in time. */
async function roundTrip(
  payload: Uint8Array,
  timeoutMs: number,
): Promise<boolean> {
  socket.send(payload, Number(port), host);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const reply = inbox.shift();
    if (reply) {
      if (
        reply.length === payload.length &&
        reply.every((b, i) => b === payload[i])
      ) return true;
      continue;
    }
    await new Promise<void>((resolve) => {
      wake = resolve;
      setTimeout(resolve, Math.max(1, deadline - Date.now()));
    });
  }
  return false;
}

const warmupDeadline = Date.now() + 15_000;
while (!(await roundTrip(new TextEncoder().encode("warm-up"), 500))) {
  if (Date.now() > warmupDeadline) break;
}
inbox.length = 0;

let sent = 0, echoed = 0, bytes = 0, nextReport = 0;
for (const size of sizesArg.split(",").map(Number)) {
  for (let i = 0; i < Number(countArg); i++) {
    const payload = new Uint8Array(size).map((_, j) => (i + j) & 0xff);
    sent++;
    if (await roundTrip(payload, 1000)) {
      echoed++;
      bytes += size;
    }
    if (live === "--live" && Date.now() >= nextReport) {
      nextReport = Date.now() + 1000;
      console.log(JSON.stringify({ sent, echoed, bytes }));
    }
  }
}
console.log(JSON.stringify({ sent, echoed, bytes }));
socket.close();
