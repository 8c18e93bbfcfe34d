/**
 * The seccomp profile, deploy/seccomp/phantun-runtime.json: the real
 * scenarios, traced and then run under it, call nothing it does not allow
 * (no call, socket kind, netlink protocol or ioctl request outside it, no
 * writable-executable memory), and pass under it; it is exactly what
 * scripts/seccomp-profile.ts derives; a probe in phantun's place does what
 * phantun needs and is refused each forbidden change, which the engine's
 * default profile lets through; and Deno without env's block opens no
 * inspector under it.
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
  loggedOutside,
  runScenarios,
  traceScenarios,
} from "./seccomp_trace.ts";
import { allowed, outside, PROFILE, profileText } from "./seccomp_rules.ts";
import { CC_MISSING, compileFixture, output, waitFor } from "../helpers.ts";

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
  "the real scenarios, traced under the engine's default profile (strace, the container runtime's own calls included) and run untraced under the committed profile (the kernel logs what it would refuse), make no call, socket kind (netlink protocol included) or ioctl request the profile does not allow, and no writable-executable memory; regenerating it gives the committed file",
  async () => {
    const trace = await traceScenarios();
    const committed = allowed(TEXT);
    assert.deepEqual(
      outside(trace, committed),
      [],
      `traced outside ${PROFILE} (calls, socket kinds, ioctl requests, W+X memory): run deno task seccomp`,
    );
    assert.deepEqual(
      [...await loggedOutside(TEXT)],
      [],
      `logged outside ${PROFILE}: run deno task seccomp`,
    );
    for (const call of committed.syscalls) trace.syscalls.add(call);
    committed.sockets.forEach((name, key) => trace.sockets.set(key, name));
    committed.ioctls.forEach((name, request) =>
      trace.ioctls.set(request, name)
    );
    assert.equal(profileText(trace), TEXT, "the profile was edited by hand");
  },
  PODMAN, // the scenarios run under both engines
  MISSING,
);

imageTest(
  "under the committed profile, the traced scenarios run as they must: server and client through Docker and Podman, both run profiles, attached and detached, carry UDP echo over IPv4 and IPv6 and to a --remote resolved over DNS",
  () => runScenarios(UNDER_PROFILE),
  PODMAN, // the scenarios run under both engines
);

let probeBinary: string | undefined;

/**
 * tests/fixtures/syscall_probe.c, static, compiled once per test process,
 * with phantun's file capability (cap_net_admin+ep) and open to the image's
 * user.
 */
function probeFixture(): string {
  if (probeBinary === undefined) {
    probeBinary = `${tempDir()}/phantun_server`;
    compileFixture("syscall_probe", probeBinary, "-static");
    output("setcap", "cap_net_admin+ep", probeBinary);
    Deno.chmodSync(probeBinary, 0o755);
  }
  return probeBinary;
}

/**
 * What tests/fixtures/syscall_probe.c got for each attempt, in phantun's
 * place: started by the image's ENTRYPOINT as the image's user (unless
 * `flags` say otherwise), with NET_ADMIN in the bounding set and a TUN
 * device, in a network namespace of its own with IPv6 on.
 */
async function probe(
  engine: Engine,
  flags: string[],
): Promise<Record<string, string>> {
  const binary = probeFixture();
  const tun = await tunNode();
  const ipv6 = cmd`--sysctl net.ipv6.conf.all.disable_ipv6=0
    --sysctl net.ipv6.conf.default.disable_ipv6=0`;
  const result = await engineExec(
    engine,
    cmd`run --rm --network none ${ipv6} --cap-add NET_ADMIN --device ${tun}:/dev/net/tun ${flags} -v ${binary}:/usr/local/bin/phantun_server:ro -e MODE=server ${engine.image} --`,
  );
  assert.equal(result.code, 0, result.stderr);
  return Object.fromEntries(
    result.stdout.trim().split("\n").map((line) => line.split("=")),
  );
}

/** Refused by seccomp: EPERM (explicit, or an engine's default) or ENOSYS. */
const REFUSED = /^(EPERM|ENOSYS)$/;
/** A longer attempt refused by seccomp at `step`. */
const refusedAt = (step: string) => new RegExp(`^${step}:(EPERM|ENOSYS)$`);

/** What phantun needs, done as phantun does it; and what the profile cannot refuse. */
const NEEDS = ["tun", "addr4", "up", "addr6", "socket_udp"];
const RESIDUE = ["route_netlink", "lo_down"];
/** The forbidden changes and calls, and the step at which the profile refuses each. */
const FORBIDDEN: Record<string, RegExp> = {
  nft_table: refusedAt("socket"),
  raw_socket: REFUSED,
  route_ioctl: refusedAt("ioctl"),
  wx_mmap: REFUSED,
  x_mprotect: refusedAt("mprotect"),
  listen: REFUSED,
  accept4: REFUSED,
  ptrace: REFUSED,
  mount: REFUSED,
  unshare: REFUSED,
  bpf: REFUSED,
  keyctl: REFUSED,
  add_key: REFUSED,
  socket_tcp: REFUSED,
  socket_tcp6: REFUSED,
};

/** Root with the capabilities and the writable /proc/sys that the other locks would deny. */
const rootUnlocked = (engine: Engine) =>
  cmd`--user 0 --cap-add SYS_ADMIN --cap-add NET_RAW --security-opt ${
    engine === DOCKER ? "systempaths=unconfined" : "unmask=ALL"
  }`;

for (const engine of ENGINES) {
  imageTest(
    `${engine.name}: a probe in phantun's place (its file capability, non-root, the ENTRYPOINT) under the profile creates its TUN, sets its IPv4 address by ioctl, brings it up and adds its IPv6 address by rtnetlink, and is refused an nftables table, a raw socket, a route by ioctl, a sysctl write, W+X mmap, exec-gaining mprotect, listen, ptrace, mount, unshare, bpf, keys and TCP sockets, as root with the capabilities too (but for the sysctl, which read-only /proc/sys and non-root hold); the engine's default profile lets each through, and neither stops a route by rtnetlink or a link taken down`,
    async () => {
      const ours = await probe(engine, UNDER_PROFILE);
      const oursRoot = await probe(engine, [
        ...UNDER_PROFILE,
        ...rootUnlocked(engine),
      ]);
      const plain = await probe(engine, []);
      const plainRoot = await probe(engine, rootUnlocked(engine));
      for (
        const [what, got] of Object.entries({
          ours,
          oursRoot,
          plain,
          plainRoot,
        })
      ) {
        for (const name of [...NEEDS, ...RESIDUE]) {
          assert.equal(got[name], "0", `${name}, ${what}`);
        }
      }
      for (const [what, got] of Object.entries({ ours, oursRoot })) {
        for (const [name, refused] of Object.entries(FORBIDDEN)) {
          assert.match(got[name], refused, `${name}, ${what}`);
        }
      }
      // The default profile: what the runtime's refuses goes through, up to
      // the kernel's own checks (listen(-1): EBADF); mount, unshare and raw
      // sockets need root's capabilities.
      for (
        const name of ["nft_table", "route_ioctl", "wx_mmap", "x_mprotect"]
      ) {
        assert.equal(plain[name], "0", `${name}, default profile`);
      }
      for (const name of ["listen", "accept4", "ptrace", "socket_tcp"]) {
        assert.doesNotMatch(plain[name], REFUSED, `${name}, default profile`);
      }
      for (const name of ["raw_socket", "mount", "unshare"]) {
        assert.doesNotMatch(plainRoot[name], REFUSED, `${name}, default, root`);
      }
      // The sysctl: refused by read-only /proc/sys and non-root alone.
      for (const got of [ours, plain]) {
        assert.match(got.sysctl, /^open:(EROFS|EACCES)$/);
      }
      assert.equal(oursRoot.sysctl, "0", "seccomp cannot refuse a write");
      assert.equal(plainRoot.sysctl, "0");
    },
    engine,
    CC_MISSING ?? missingCommand("setcap"),
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
