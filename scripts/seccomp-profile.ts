/**
 * Regenerates deploy/seccomp/phantun-runtime.json from traces of the real
 * scenarios (tests/image/seccomp_trace.ts) by the rules of
 * tests/image/seccomp_rules.ts: `deno task seccomp`, as root, with Docker,
 * Podman and the image suite's tools (as for test:image), and the kernel log
 * readable (dmesg).
 */
import {
  ensureImage,
  loadIntoPodman,
  SECCOMP,
} from "../tests/image/harness.ts";
import { loggedOutside, traceScenarios } from "../tests/image/seccomp_trace.ts";
import { PROFILE, profileText } from "../tests/image/seccomp_rules.ts";

await ensureImage();
await loadIntoPodman();
// strace sees the bulk, the container runtime's own calls included; a run
// untraced under the profile in "log" mode adds what a traced process skips
// (ptrace changes how Deno spawns phantun), until a run logs nothing.
const trace = await traceScenarios();
for (;;) {
  const outside = await loggedOutside(profileText(trace));
  if (outside.size === 0) break;
  console.log(`logged outside the profile: ${[...outside].join(", ")}`);
  for (const call of outside) trace.syscalls.add(call);
}
Deno.writeTextFileSync(SECCOMP, profileText(trace));
console.log(
  `${PROFILE}: ${trace.syscalls.size} traced calls, ${trace.sockets.size} socket kinds (${
    [...trace.sockets.values()].join("; ")
  }) and ${trace.ioctls.size} ioctl requests (${
    [...trace.ioctls.values()].join(", ")
  }) from ${trace.containers} containers`,
);
