/**
 * The seccomp profile, deploy/seccomp/phantun-runtime.json: the real
 * scenarios, traced and then run under it, call nothing it does not allow; it
 * is exactly what scripts/seccomp-profile.ts derives; a probe in phantun's
 * place finds what it must refuse refused, where the engine's default lets
 * some through; and Deno without env's block opens no inspector under it.
 */
import assert from "node:assert/strict";
import { missingCommand } from "../helpers.ts";
import {
  cmd,
  DENO_RUN,
  DOCKER,
  type Engine,
  engineExec,
  engineOk,
  ENGINES,
  exec,
  handoff,
  ifaceFile,
  imageTest,
  inspect,
  lines,
  listeners,
  pidOf,
  PODMAN,
  PREFIX,
  processChain,
  QUICKSTART,
  remove,
  ROOT,
  SECCOMP,
  tempDir,
  tunNode,
  waitForLink,
} from "./harness.ts";
import {
  allowed,
  CONDITIONED,
  loggedOutside,
  PROFILE,
  profileText,
  traceScenarios,
} from "./seccomp_trace.ts";
import { CC_MISSING, compileFixture, waitFor } from "../helpers.ts";

const TEXT = Deno.readTextFileSync(SECCOMP);

/** README block seccomp-install (the kubelet's); the quick start's line 2 installs it for the engines. */
const INSTALL = String
  .raw`install -D -m 0644 deploy/seccomp/phantun-runtime.json /var/lib/kubelet/seccomp/phantun-runtime.json`;

Deno.test("README's install lines (the quick start's and the kubelet's) put the profile where the examples, compose.yaml and the manifests look for it", async () => {
  const root = tempDir();
  const result = await exec([
    "sh",
    "-ec",
    `${lines(QUICKSTART, 1, 2)}\n${INSTALL}`.replaceAll(" /", ` ${root}/`),
  ], {
    cwd: ROOT,
  });
  assert.equal(result.code, 0, result.stderr);
  for (
    const path of [
      "/etc/phantun-runtime/seccomp.json",
      "/var/lib/kubelet/seccomp/phantun-runtime.json",
    ]
  ) {
    assert.equal(Deno.readTextFileSync(`${root}${path}`), TEXT, path);
  }
  assert.ok(
    Deno.readTextFileSync(`${ROOT}compose.yaml`).includes(
      "seccomp=/etc/phantun-runtime/seccomp.json",
    ),
  );
});
/** The engines' flag for the profile. */
const UNDER_PROFILE = ["--security-opt", `seccomp=${SECCOMP}`];
const MISSING = missingCommand("strace", "dmesg");

imageTest(
  "the real scenarios, traced under the engine's default profile (strace, the container runtime's own calls included) and run untraced under the committed profile (the kernel logs what it would refuse), call nothing the profile does not allow; regenerating it gives the committed file",
  async () => {
    const trace = await traceScenarios();
    const committed = allowed(TEXT);
    const missing = [...trace.syscalls].filter((call) =>
      !committed.syscalls.has(call) && !CONDITIONED.includes(call)
    );
    assert.deepEqual(
      missing,
      [],
      `traced outside ${PROFILE}: run deno task seccomp`,
    );
    const sockets = [...trace.sockets].filter((s) => !committed.sockets.has(s));
    assert.deepEqual(sockets, [], "socket kinds outside the profile");
    assert.deepEqual(
      [...await loggedOutside(TEXT)],
      [],
      `logged outside ${PROFILE}: run deno task seccomp`,
    );
    for (const call of committed.syscalls) trace.syscalls.add(call);
    for (const kind of committed.sockets) trace.sockets.add(kind);
    assert.equal(profileText(trace), TEXT, "the profile was edited by hand");
  },
  PODMAN, // the scenarios run under both engines
  MISSING,
);

let probeBinary: string | undefined;

/** tests/fixtures/syscall_probe.c, static, compiled once per test process. */
function probeFixture(): string {
  if (probeBinary === undefined) {
    probeBinary = `${tempDir()}/probe`;
    compileFixture("syscall_probe", probeBinary, "-static");
  }
  return probeBinary;
}

/** What tests/fixtures/syscall_probe.c, in phantun's place, got for each call. */
async function probe(
  engine: Engine,
  flags: string[],
): Promise<Record<string, string>> {
  const binary = probeFixture();
  const result = await engineExec(
    engine,
    cmd`run --rm --network none ${flags} -v ${binary}:/usr/local/bin/phantun_server:ro -e MODE=server ${engine.image} --`,
  );
  assert.equal(result.code, 0, result.stderr);
  return Object.fromEntries(
    result.stdout.trim().split("\n").map((line) => line.split("=")),
  );
}

/** Refused by seccomp: EPERM (explicit, or an engine's default) or ENOSYS. */
const REFUSED = /^(EPERM|ENOSYS)$/;

for (const engine of ENGINES) {
  imageTest(
    `${engine.name}: a probe in phantun's place finds listen, accept4, ptrace, mount, unshare, bpf, keyctl, add_key and TCP sockets refused under the profile, as root with CAP_SYS_ADMIN too, while the engine's default profile lets listen, accept4, ptrace, TCP sockets (and, with CAP_SYS_ADMIN, mount and unshare) through`,
    async () => {
      const admin = cmd`--user 0 --cap-add SYS_ADMIN`;
      const calls = [
        "listen",
        "accept4",
        "ptrace",
        "mount",
        "unshare",
        "bpf",
        "keyctl",
        "add_key",
        "socket_tcp",
        "socket_tcp6",
      ];
      for (const flags of [[], admin]) {
        const ours = await probe(engine, [...UNDER_PROFILE, ...flags]);
        for (const call of calls) {
          assert.match(ours[call], REFUSED, `${call} under the profile`);
        }
        assert.equal(ours.socket_udp, "0", "a UDP socket under the profile");
      }
      const plain = await probe(engine, []);
      for (const call of ["listen", "accept4", "ptrace", "socket_tcp"]) {
        assert.doesNotMatch(plain[call], REFUSED, `${call} under the default`);
      }
      const root = await probe(engine, admin);
      for (const call of ["mount", "unshare"]) {
        assert.doesNotMatch(
          root[call],
          REFUSED,
          `${call}, CAP_SYS_ADMIN, default`,
        );
      }
    },
    engine,
    CC_MISSING,
  );
}

imageTest(
  "under the profile, Deno started without env's block opens no inspector on SIGUSR1: it says it could not, the supervisor and phantun keep running, and stop gives 143",
  async () => {
    const tun = await tunNode();
    const file = await ifaceFile();
    const name = `${PREFIX}unblocked-seccomp`;
    await remove(DOCKER, name);
    try {
      await engineOk(
        DOCKER,
        cmd`run -d --name ${name} --network none ${UNDER_PROFILE} --cap-add NET_ADMIN --device ${tun}:/dev/net/tun ${
          handoff(file)
        } -e MODE=server --entrypoint /usr/bin/tini ${DOCKER.image} -- ${DENO_RUN} -- --local 4567 --remote 127.0.0.1:1234 --tun ptun0`,
      );
      await waitForLink(DOCKER, name, "ptun0");
      const [, deno, phantun] = await processChain(DOCKER, name);
      await new Promise((resolve) => setTimeout(resolve, 1_000)); // Deno's listener
      Deno.kill(pidOf(deno), "SIGUSR1");
      await waitFor(
        "Deno's inspector failure in the logs",
        async () =>
          (await engineExec(DOCKER, cmd`logs ${name}`)).stderr.includes(
            "Failed to start inspector server",
          ),
        10_000,
        200,
      );
      assert.deepEqual(listeners(pidOf(deno)), []);
      assert.equal(await inspect(DOCKER, "{{.State.Running}}", name), "true");
      assert.equal(
        (await exec(cmd`test -d /proc/${pidOf(phantun)}`)).code,
        0,
        "phantun is gone",
      );
      assert.equal(Deno.readTextFileSync(file), "ptun0");
      await engineOk(DOCKER, cmd`stop ${name}`);
      assert.equal(await inspect(DOCKER, "{{.State.ExitCode}}", name), "143");
      assert.equal(Deno.readTextFileSync(file), "");
    } finally {
      await remove(DOCKER, name);
    }
  },
);
