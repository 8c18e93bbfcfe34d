/**
 * The syscalls the image's processes make in real scenarios, traced, and the
 * seccomp profile derived from them (deploy/seccomp/phantun-runtime.json).
 *
 * A trace follows the container engine itself (strace attached to containerd
 * for Docker, strace around `podman run` for Podman) under the engine's
 * default profile, so that it holds what the container runtime (runc, crun)
 * calls after it has loaded the filter, then everything tini, env, Deno and
 * phantun call, in the scenarios of {@link SCENARIOS}: both run profiles,
 * client and server, IPv4 and IPv6, a `--remote` host name resolved over DNS,
 * the handoff, traffic, stop. scripts/seccomp-profile.ts writes the profile
 * from a trace; tests/image/seccomp_test.ts traces again and fails on any
 * call the committed profile does not allow.
 */
import assert from "node:assert/strict";
import {
  assertEcho,
  cmd,
  denoContainer,
  DOCKER,
  type Engine,
  engineExec,
  engineOk,
  exec,
  handoff,
  ifaceFile,
  inspect,
  ipOf,
  ok,
  PODMAN,
  PREFIX,
  remove,
  tempDir,
  tunNode,
  waitForLink,
  withHosts,
} from "./harness.ts";
import { waitFor } from "../helpers.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

/** What one trace saw of the image's processes. */
export type Trace = {
  /** Every syscall made at least once without ENOSYS. */
  readonly syscalls: Set<string>;
  /** Every `socket()` as "FAMILY TYPE" (e.g. "AF_INET SOCK_DGRAM"). */
  readonly sockets: Set<string>;
  /** How many containers of the image the trace covered. */
  readonly containers: number;
};

/**
 * A line of `strace -f`: the tid, the call's name, its arguments (those of
 * this line: a call another thread interrupted ends `<unfinished ...>`, and
 * the rest follows in a `<... NAME resumed>` line of its own) and what it
 * returned.
 */
type Line = {
  readonly tid: number;
  readonly name: string;
  readonly args: string;
  readonly result: string | null;
  /** True for the `<... NAME resumed>` end of an unfinished call. */
  readonly resumed: boolean;
};

/** The pid a clone()-like call returned, as strace's pid namespace sees it. */
function childPid(line: Line): number {
  const translated = line.result?.match(/\/\* (\d+) in strace's PID NS \*\//);
  return Number(translated?.[1] ?? line.result?.split(" ")[0]);
}

function parseLine(text: string): Line | null {
  const started = text.match(/^(\d+) +([a-z_0-9]+)\((.*)$/);
  const resumed = text.match(/^(\d+) +<\.\.\. ([a-z_0-9]+) resumed>(.*)$/);
  const match = started ?? resumed;
  if (!match) return null;
  const result = match[3].match(/\) += (.*)$/);
  return {
    tid: Number(match[1]),
    name: match[2],
    args: match[3],
    result: result ? result[1] : null,
    resumed: !started,
  };
}

/** True when `line` loads a seccomp filter (not libseccomp's probes with NULL). */
function loadsFilter(line: Line): boolean {
  return (line.name === "prctl" &&
    line.args.startsWith("PR_SET_SECCOMP, SECCOMP_MODE_FILTER, {")) ||
    (line.name === "seccomp" &&
      /^SECCOMP_SET_MODE_FILTER, [^,]*, \{/.test(line.args));
}

/**
 * The calls of every container whose runtime process execs the image's
 * entrypoint (/usr/bin/tini): from the moment that process loaded its
 * seccomp filter, in its thread group and all its descendants.
 */
function parseTrace(text: string): Trace {
  const lines = text.split("\n").map(parseLine);
  const group = new Map<number, number>(); // tid -> thread group leader
  const leader = (tid: number) => group.get(tid) ?? tid;
  const lastLoad = new Map<number, number>(); // leader -> line index
  const unfinished = new Map<number, string>(); // tid -> its call's first line
  const containers: { start: number; root: number }[] = [];
  lines.forEach((line, i) => {
    if (!line) return;
    // A call's flags are in its first line, which may be unfinished.
    const begun = line.resumed ? unfinished.get(line.tid) : line.args;
    if (line.resumed) unfinished.delete(line.tid);
    else if (line.args.endsWith("<unfinished ...>")) {
      unfinished.set(line.tid, line.args);
    }
    if (["clone", "clone3"].includes(line.name) && line.result !== null) {
      const child = childPid(line);
      if (child > 0 && begun?.includes("CLONE_THREAD")) {
        group.set(child, leader(line.tid));
      }
    }
    if (loadsFilter(line)) lastLoad.set(leader(line.tid), i);
    if (line.name === "execve" && line.args.startsWith('"/usr/bin/tini"')) {
      const load = lastLoad.get(leader(line.tid));
      if (load !== undefined) {
        containers.push({ start: load, root: leader(line.tid) });
      }
    }
  });
  assert.ok(containers.length > 0, "no container of the image in the trace");
  const syscalls = new Set<string>();
  const sockets = new Set<string>();
  for (const { start, root } of containers) {
    const tracked = new Set<number>([root]);
    for (const [tid, lead] of group) if (lead === root) tracked.add(tid);
    for (const line of lines.slice(start)) {
      if (!line || !tracked.has(line.tid)) continue;
      if (["clone", "clone3", "fork", "vfork"].includes(line.name)) {
        const child = childPid(line);
        if (child > 0) tracked.add(child);
      }
      if (line.result?.includes("ENOSYS")) continue;
      syscalls.add(line.name);
      if (line.name === "socket" && line.args.match(/^AF_\w+/)) {
        const [family, type] = line.args.split(", ");
        sockets.add(`${family} ${type.split("|")[0]}`);
      }
    }
  }
  return { syscalls, sockets, containers: containers.length };
}

/** The pids of the running containerd daemons (Docker's own or the system's). */
async function containerds(): Promise<string[]> {
  const { stdout } = await exec(cmd`pgrep -x containerd`);
  return stdout.split("\n").filter((pid) => pid !== "");
}

/**
 * Deno code for a DNS server on 127.0.0.1:53 answering every A query with
 * `ipv4`, and every other query with no record.
 */
const dnsServer = (ipv4: string) =>
  `import dgram from "node:dgram";
const socket = dgram.createSocket("udp4");
const answer = Uint8Array.from(${JSON.stringify(ipv4)}.split(".").map(Number));
socket.on("message", (query, peer) => {
  let end = 12;
  while (query[end] !== 0) end += query[end] + 1;
  const type = query.readUInt16BE(end + 1);
  const header = Buffer.from([query[0], query[1], 0x81, 0x80, 0, 1, 0, type === 1 ? 1 : 0, 0, 0, 0, 0]);
  const question = query.subarray(12, end + 5);
  const record = Buffer.concat([Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]), answer]);
  socket.send(Buffer.concat(type === 1 ? [header, question, record] : [header, question]), peer.port, peer.address);
});
socket.bind(53, "127.0.0.1", () => console.log("listening"));`;

/**
 * How a scenario starts a detached container named `name` of `args`, and
 * waits, once its containers are stopped, until whatever runs them is done.
 */
type Runner = {
  readonly start: (name: string, args: string[]) => Promise<void>;
  readonly done: () => Promise<void>;
};

/**
 * One scenario on two "hosts": a server and a client in `profile` (non-root
 * or root), UDP echo through the tunnel, the handoff, stop. With `ipv6`
 * everything is IPv6 (the hosts' network, the client's --remote, phantun's UDP
 * ends on ::1); with `dns` the client's --remote is a host name, answered by a
 * DNS server in the client host's namespace.
 */
async function scenario(
  engine: Engine,
  { start, done }: Runner,
  options: { root: boolean; ipv6: boolean; dns: boolean },
  security: string[] = [],
): Promise<void> {
  const tun = await tunNode();
  const file = await ifaceFile();
  // Root without CAP_DAC_OVERRIDE cannot write a file of 65532's (README).
  if (options.root) await ok(cmd`chown 0:0 ${file}`);
  const tunDevice = cmd`--device ${tun}:/dev/net/tun`;
  const profile = [
    ...(options.root
      ? cmd`--user 0 --cap-drop ALL --cap-add NET_ADMIN --security-opt no-new-privileges`
      : cmd`--cap-add NET_ADMIN`),
    ...security,
  ];
  const [server, client, dns] = ["server", "client", "dns"].map((role) =>
    `${PREFIX}trace-${role}`
  );
  const udp = options.ipv6 ? "[::1]:1234" : "127.0.0.1:1234";
  await withHosts(engine, "trace", async (hosts) => {
    try {
      await start(
        server,
        cmd`--network container:${hosts.server} ${profile} ${tunDevice} ${
          handoff(file)
        } -e RUST_LOG=debug -e MODE=server ${engine.image} -- --local 4567 --remote ${udp} --tun ptun0`,
      );
      const address = options.ipv6
        ? `[${await inspect(
          engine,
          "{{range .NetworkSettings.Networks}}{{.GlobalIPv6Address}}{{end}}",
          hosts.server,
        )}]`
        : await ipOf(engine, hosts.server);
      const resolv: string[] = [];
      let remote = `${address}:4567`;
      if (options.dns) {
        await denoContainer(
          engine,
          dns,
          `container:${hosts.client}`,
          dnsServer(address),
        );
        await waitFor(
          "the DNS server to start",
          async () =>
            (await engineOk(engine, cmd`logs ${dns}`)).includes("listening"),
          15_000,
          100,
        );
        const conf = `${tempDir()}/resolv.conf`;
        Deno.writeTextFileSync(conf, "nameserver 127.0.0.1\n");
        resolv.push("-v", `${conf}:/etc/resolv.conf:ro`);
        remote = "server.test:4567";
      }
      await start(
        client,
        cmd`--network container:${hosts.client} ${profile} ${tunDevice} ${resolv}
          -e RUST_LOG=debug -e MODE=client ${engine.image} -- --local ${udp} --remote ${remote} --tun ptun0`,
      );
      for (const name of [server, client]) {
        await waitForLink(engine, name, "ptun0");
      }
      await assertEcho(
        engine,
        `container:${hosts.client}`,
        options.ipv6 ? "::1" : "127.0.0.1",
        1234,
      );
      for (const name of [client, server]) {
        await engineOk(engine, cmd`stop ${name}`);
      }
    } finally {
      await engineExec(engine, cmd`kill ${server} ${client}`);
      await done();
      await remove(engine, server, client, dns);
    }
  }, { ipv6: options.ipv6 });
}

/** The scenarios a trace covers, and under which engine. */
const SCENARIOS = [
  { engine: DOCKER, attached: true, root: false, ipv6: false, dns: true },
  { engine: DOCKER, attached: false, root: true, ipv6: true, dns: false },
  { engine: PODMAN, attached: true, root: false, ipv6: false, dns: false },
  { engine: PODMAN, attached: true, root: true, ipv6: false, dns: false },
] as const;

/**
 * Traces every scenario of {@link SCENARIOS} and merges what they saw.
 * Docker's containers are traced through containerd, which starts the shim
 * and runc; Podman has no daemon, so each `podman run` (in the foreground,
 * where it lives as long as its container) runs under strace of its own.
 */
export async function traceScenarios(): Promise<Trace> {
  const syscalls = new Set<string>();
  const sockets = new Set<string>();
  let containers = 0;
  for (const { engine, attached, ...options } of SCENARIOS) {
    const text = engine === DOCKER
      ? await traced(
        await containerds(),
        () => scenario(engine, runnerFor(engine, attached), options),
      )
      : await tracedPodman((runner) => scenario(engine, runner, options));
    const trace = parseTrace(text);
    trace.syscalls.forEach((name) => syscalls.add(name));
    trace.sockets.forEach((socket) => sockets.add(socket));
    containers += trace.containers;
  }
  return { syscalls, sockets, containers };
}

/**
 * strace's options: follow children, no attach messages, no strings, and
 * pids returned by clone() in the container's pid namespace translated to
 * strace's own (those that name the lines).
 */
const STRACE = ["-f", "-qq", "-s", "0", "--pidns-translation"];

/** Runs `fn` with strace attached to `pids`; returns the trace. */
async function traced(
  pids: string[],
  fn: () => Promise<void>,
): Promise<string> {
  const file = `${tempDir()}/strace.txt`;
  const strace = new Deno.Command("strace", {
    args: [
      ...STRACE,
      "-o",
      file,
      ...pids.flatMap((p) => ["-p", p]),
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    // Attached once strace has written its first line.
    await waitFor(
      "strace to attach",
      async () => (await exec(cmd`test -s ${file}`)).code === 0,
      10_000,
      50,
    );
    await fn();
  } finally {
    strace.kill("SIGINT");
    await strace.status;
  }
  return Deno.readTextFileSync(file);
}

/** A Runner of `ENGINE run -d`. */
function detached(engine: Engine): Runner {
  return {
    start: async (name, args) => {
      await engineOk(engine, cmd`run -d --name ${name} ${args}`);
    },
    done: async () => {},
  };
}

/**
 * A Runner whose containers run in the foreground of `PREFIX ENGINE run`
 * (attached, as the README's `docker run --rm` runs), each in the background
 * of the test until its container ends.
 */
function foreground(
  engine: Engine,
  prefix: (name: string) => string[] = () => [],
): Runner {
  const runs: Deno.ChildProcess[] = [];
  return {
    start: async (name, args) => {
      const argv = [
        ...prefix(name),
        engine.bin,
        "run",
        "--name",
        name,
        ...args,
      ];
      runs.push(
        new Deno.Command(argv[0], {
          args: argv.slice(1),
          env: engine.env,
          stdin: "null",
          stdout: "null",
          stderr: "null",
        }).spawn(),
      );
      let logs = "";
      await waitFor(
        `${name} to start`,
        async () => {
          const state = (await engineExec(
            engine,
            cmd`inspect -f {{.State.Status}} ${name}`,
          )).stdout.trim();
          if (state === "running") return true;
          logs = (await engineExec(engine, cmd`logs ${name}`)).stderr;
          assert.ok(state !== "exited", `${name} exited`);
          return false;
        },
        30_000,
        100,
      ).catch((error) => {
        throw new Error(`${error.message}; its logs: ${logs}`, {
          cause: error,
        });
      });
    },
    done: async () => {
      for (const run of runs) await run.status;
    },
  };
}

/** The Runner of a scenario: {@link foreground} when `attached`, else {@link detached}. */
function runnerFor(engine: Engine, attached: boolean): Runner {
  return attached ? foreground(engine) : detached(engine);
}

/** Runs `fn` with each Podman container in the foreground of its own strace; returns the traces. */
async function tracedPodman(
  fn: (runner: Runner) => Promise<void>,
): Promise<string> {
  const dir = tempDir();
  const runner = foreground(
    PODMAN,
    (name) => ["strace", ...STRACE, "-o", `${dir}/${name}.txt`],
  );
  try {
    await fn(runner);
  } finally {
    await runner.done();
  }
  return [...Deno.readDirSync(dir)].map((entry) =>
    Deno.readTextFileSync(`${dir}/${entry.name}`)
  ).join("\n");
}

/** Where the profile lives, and where Docker and Podman read it from. */
export const PROFILE = "deploy/seccomp/phantun-runtime.json";

/**
 * Each allowed call's group, which the profile's comments and DESIGN.md name.
 * A traced call that is in no group stops the derivation: someone decides.
 */
const GROUPS: Record<string, string> = {
  "memory": "brk mmap munmap mprotect mremap madvise pkey_alloc",
  "files and descriptors (the binaries, the handoff file, /proc, the TUN)":
    "openat read write pread64 pwrite64 close dup dup2 dup3 lseek fstat newfstatat stat lstat statx fstatfs readlink readlinkat access faccessat faccessat2 getdents64 fcntl ftruncate ioctl fchown getcwd chdir",
  "processes and threads":
    "execve wait4 exit exit_group set_tid_address set_robust_list rseq futex gettid getpid getppid getpgrp getpgid setpgid kill tgkill pidfd_open prlimit64 sched_getaffinity sched_yield sched_getparam sched_getscheduler arch_prctl prctl",
  "signals":
    "rt_sigaction rt_sigprocmask rt_sigreturn rt_sigtimedwait sigaltstack restart_syscall",
  "waiting and time":
    "epoll_create1 epoll_ctl epoll_wait epoll_pwait eventfd2 poll ppoll nanosleep clock_nanosleep",
  "sockets, past socket() itself (UDP, netlink and local ones)":
    "socketpair bind connect getsockname setsockopt sendto sendmmsg recvfrom recvmsg",
  "identity: the container runtime becoming the image's user":
    "capget capset setuid setgid setgroups geteuid",
  "system information": "uname sysinfo getrandom",
};

/** Calls that run without showing in every trace. */
const SELDOM: Record<string, string> = {
  exit: "a thread's own end (threads mostly end with the process)",
  restart_syscall: "the kernel resuming a sleep a signal interrupted",
};

/**
 * Newer calls refused with ENOSYS, the answer the C library takes as "this
 * kernel is older" and falls back from (clone3 to clone, openat2 to openat,
 * ...). Listed on their own because an engine may ignore defaultErrnoRet
 * (Docker 20.10 does, and answers EPERM, which glibc does not fall back from).
 * clone3 is refused although traces show it: its flags sit in memory, out of
 * seccomp's reach, so only clone's can be checked.
 */
const FALLBACK = ["clone3", "close_range", "epoll_pwait2", "openat2"];

/**
 * Traced calls the profile does not simply allow: socket() and clone() are
 * allowed with conditions on their arguments, FALLBACK refused on purpose.
 */
export const CONDITIONED: readonly string[] = ["socket", "clone", ...FALLBACK];

/**
 * aarch64 has none of x86_64's older calls: their successors, which the C
 * library calls there instead (QEMU user emulation cannot run a filter for
 * the guest, so aarch64 is derived, not traced).
 */
const AARCH64: Record<string, string> = {
  stat: "newfstatat",
  lstat: "newfstatat",
  access: "faccessat",
  readlink: "readlinkat",
  poll: "ppoll",
  epoll_wait: "epoll_pwait",
  getpgrp: "getpgid",
  dup2: "dup3",
};

/** CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET. */
const CLONE_NAMESPACES = 0x7e020000;
const FAMILIES: Record<string, number> = {
  AF_UNIX: 1,
  AF_INET: 2,
  AF_INET6: 10,
  AF_NETLINK: 16,
};
const TYPES: Record<string, number> = {
  SOCK_STREAM: 1,
  SOCK_DGRAM: 2,
  SOCK_RAW: 3,
};
/** SOCK_TYPE_MASK: the type without SOCK_CLOEXEC and SOCK_NONBLOCK. */
const TYPE_MASK = 0xf;
const ENOSYS = 38;
const EPERM = 1;

/** The seccomp profile (Docker's JSON format) that allows what `trace` saw. */
function profile(trace: Trace): Json {
  const group = new Map<string, string>();
  for (const [name, members] of Object.entries(GROUPS)) {
    for (const call of members.split(" ")) group.set(call, name);
  }
  const calls = new Set([...trace.syscalls, ...Object.keys(SELDOM)]);
  for (const call of CONDITIONED) calls.delete(call);
  for (const call of [...calls]) {
    if (AARCH64[call]) calls.add(AARCH64[call]);
  }
  const unknown = [...calls].filter((call) => !group.has(call));
  assert.deepEqual(unknown, [], "traced calls in no group of GROUPS");
  const rules: Json[] = Object.keys(GROUPS).map((name) => ({
    names: [...calls].filter((call) => group.get(call) === name).sort(),
    action: "SCMP_ACT_ALLOW",
    comment: name,
  })).filter((rule) => rule.names.length > 0);
  rules.push({
    names: ["clone"],
    action: "SCMP_ACT_ALLOW",
    args: [{
      index: 0,
      value: CLONE_NAMESPACES,
      valueTwo: 0,
      op: "SCMP_CMP_MASKED_EQ",
    }],
    comment: "new threads and processes, never new namespaces",
  });
  for (const socket of [...trace.sockets].sort()) {
    const [family, type] = socket.split(" ");
    assert.ok(family in FAMILIES && type in TYPES, `unknown socket ${socket}`);
    rules.push({
      names: ["socket"],
      action: "SCMP_ACT_ALLOW",
      args: [
        { index: 0, value: FAMILIES[family], valueTwo: 0, op: "SCMP_CMP_EQ" },
        {
          index: 1,
          value: TYPE_MASK,
          valueTwo: TYPES[type],
          op: "SCMP_CMP_MASKED_EQ",
        },
      ],
      comment: `socket(${family}, ${type})`,
    });
  }
  rules.push({
    names: FALLBACK,
    action: "SCMP_ACT_ERRNO",
    errnoRet: ENOSYS,
    comment:
      "newer calls the C library falls back from on ENOSYS (clone3: its flags are out of seccomp's reach)",
  });
  rules.push({
    names: ["listen", "accept", "accept4"],
    action: "SCMP_ACT_ERRNO",
    errnoRet: EPERM,
    comment: "no listening socket, ever: EPERM (Deno's inspector among them)",
  });
  return {
    defaultAction: "SCMP_ACT_ERRNO",
    defaultErrnoRet: ENOSYS,
    archMap: [
      { architecture: "SCMP_ARCH_X86_64", subArchitectures: [] },
      { architecture: "SCMP_ARCH_AARCH64", subArchitectures: [] },
    ],
    syscalls: rules,
  };
}

/** The profile as the repository holds it: {@link profile}'s JSON, two-space indented. */
export function profileText(trace: Trace): string {
  return `${JSON.stringify(profile(trace), null, 2)}\n`;
}

/** The trace a committed profile allows: its calls and its sockets. */
export function allowed(text: string): Trace {
  const json = JSON.parse(text);
  const syscalls = new Set<string>();
  const sockets = new Set<string>();
  const name = (table: Record<string, number>, value: number) =>
    Object.entries(table).find(([, v]) => v === value)![0];
  for (const rule of json.syscalls) {
    if (rule.action !== "SCMP_ACT_ALLOW") continue;
    if (rule.names[0] === "socket") {
      sockets.add(
        `${name(FAMILIES, rule.args[0].value)} ${
          name(TYPES, rule.args[1].valueTwo)
        }`,
      );
    } else for (const call of rule.names) syscalls.add(call);
  }
  return { syscalls, sockets, containers: 0 };
}

let syscallTable: Map<number, string> | undefined;

/** x86_64 syscall names by number, from the kernel's headers (linux-libc-dev), read once. */
function syscallNames(): Map<number, string> {
  if (!syscallTable) {
    const header = Deno.readTextFileSync(
      "/usr/include/x86_64-linux-gnu/asm/unistd_64.h",
    );
    syscallTable = new Map(
      [...header.matchAll(/^#define __NR_(\w+) (\d+)$/gm)].map((m) => [
        Number(m[2]),
        m[1],
      ]),
    );
  }
  return syscallTable;
}

/** The kernel log's seccomp "log" records (SECCOMP_RET_LOG) after audit serial `after`. */
async function seccompLog(
  after: number,
): Promise<{ serial: number; calls: Set<string> }> {
  const log = await ok(["dmesg"]);
  const names = syscallNames();
  const calls = new Set<string>();
  let serial = after;
  for (
    const m of log.matchAll(
      /audit\(\d+\.\d+:(\d+)\): .* syscall=(\d+) .*code=0x7ffc0000/g,
    )
  ) {
    const id = Number(m[1]);
    serial = Math.max(serial, id);
    if (id > after) calls.add(names.get(Number(m[2])) ?? `#${m[2]}`);
  }
  return { serial, calls };
}

/**
 * Runs every scenario, untraced, under `text` with its default action
 * turned into "log": the kernel then allows and logs (dmesg) each call the
 * profile would refuse, as the containers really make them. Returns those
 * calls. (The kernel logs at most 10 such lines every 5 s; a complete
 * profile logs none.)
 */
export async function loggedOutside(text: string): Promise<Set<string>> {
  const file = `${tempDir()}/log-profile.json`;
  Deno.writeTextFileSync(
    file,
    JSON.stringify({ ...JSON.parse(text), defaultAction: "SCMP_ACT_LOG" }),
  );
  const security = ["--security-opt", `seccomp=${file}`];
  const { serial: start } = await seccompLog(0);
  for (const { engine, attached, ...options } of SCENARIOS) {
    await scenario(engine, runnerFor(engine, attached), options, security);
  }
  return (await seccompLog(start)).calls;
}
