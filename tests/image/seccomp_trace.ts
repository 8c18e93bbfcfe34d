/**
 * The syscalls the image's processes make in real scenarios, traced, with
 * the arguments the profile conditions (socket kinds, ioctl requests, memory
 * protections); the rules that turn a trace into the seccomp profile are in
 * seccomp_rules.ts.
 *
 * A trace follows the container engine itself (strace attached to containerd
 * for Docker, strace around `podman run` for Podman) under the engine's
 * default profile, so that it holds what the container runtime (runc, crun)
 * calls after it has loaded the filter, then everything tini, env, Deno and
 * phantun call, in the scenarios of {@link SCENARIOS}: both run profiles,
 * client and server, IPv4 and IPv6, a `--remote` host name resolved over DNS,
 * the handoff, traffic, stop. scripts/seccomp-profile.ts writes the profile
 * from a trace; tests/image/seccomp_test.ts traces again and fails on
 * anything the committed profile does not allow.
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
import { breaksWX, CONDITIONED, type Trace } from "./seccomp_rules.ts";
import { waitFor } from "../helpers.ts";

/**
 * A line of `strace -f -X verbose`: the tid, the call's name, its arguments
 * (those of this line: a call another thread interrupted ends `<unfinished
 * ...>`, and the rest follows in a `<... NAME resumed>` line of its own) and
 * what it returned. Under -X verbose a constant is its number followed by
 * its name in a C comment (AF_NETLINK is `0x10`, then the comment).
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

/**
 * A verbose constant, numbers and their commented names joined by `|`
 * (SOCK_RAW|SOCK_CLOEXEC): its value and its first name.
 */
function constant(arg: string): { value: number; name: string } {
  const numbers = arg.replace(/ \/\* .*? \*\//g, "").split("|").map(Number);
  return {
    value: numbers.reduce((sum, n) => sum | n, 0),
    name: arg.match(/\/\* (.*?) \*\//)?.[1] ?? arg,
  };
}

/** True when `line` loads a seccomp filter (not libseccomp's probes with NULL). */
function loadsFilter(line: Line): boolean {
  return (line.name === "prctl" &&
    /^\S+ \/\* PR_SET_SECCOMP \*\/, \S+ \/\* SECCOMP_MODE_FILTER \*\/, \{/
      .test(line.args)) ||
    (line.name === "seccomp" &&
      /^\S+ \/\* SECCOMP_SET_MODE_FILTER \*\/, [^,]*, \{/.test(line.args));
}

/** What a call's first line shows of the arguments the profile conditions, added to `trace`. */
function addArguments(line: Line, trace: Trace): void {
  const text = line.args.replace(/(\) += .*| <unfinished \.\.\.>)$/, "");
  const args = text.split(", ");
  if (line.name === "socket") {
    const [family, type, protocol] = args.map(constant);
    trace.sockets.set(
      `${family.value} ${type.value & 0xf} ${protocol.value}`,
      `${family.name}, ${type.name}, ${protocol.name}`,
    );
  } else if (line.name === "ioctl") {
    // An unnamed request's comment is _IOC(...), commas and all.
    const request = text.match(/^\d+, (0x[0-9a-f]+|\d+)(?: \/\* (.*?) \*\/)?/)!;
    trace.ioctls.set(Number(request[1]), request[2] ?? request[1]);
  } else if (args.length > 2 && breaksWX(line.name, constant(args[2]).value)) {
    trace.wx.push(`${line.name}(${args[2]})`);
  }
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
  const trace = emptyTrace(containers.length);
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
      trace.syscalls.add(line.name);
      if (!line.resumed) addArguments(line, trace);
    }
  }
  return trace;
}

/** A trace of nothing yet, over `containers` containers. */
function emptyTrace(containers: number): Trace {
  return {
    syscalls: new Set(),
    sockets: new Map(),
    ioctls: new Map(),
    wx: [],
    containers,
  };
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
  const traces: Trace[] = [];
  for (const { engine, attached, ...options } of SCENARIOS) {
    const text = engine === DOCKER
      ? await traced(
        await containerds(),
        () => scenario(engine, runnerFor(engine, attached), options),
      )
      : await tracedPodman((runner) => scenario(engine, runner, options));
    traces.push(parseTrace(text));
  }
  const all = emptyTrace(traces.reduce((sum, t) => sum + t.containers, 0));
  for (const trace of traces) {
    trace.syscalls.forEach((call) => all.syscalls.add(call));
    trace.sockets.forEach((name, key) => all.sockets.set(key, name));
    trace.ioctls.forEach((name, request) => all.ioctls.set(request, name));
    all.wx.push(...trace.wx);
  }
  return all;
}

/**
 * strace's options: follow children, no attach messages, no strings,
 * constants as numbers with their names, and pids returned by clone() in the
 * container's pid namespace translated to strace's own (those that name the
 * lines). The calls that take a signal set are printed raw: strace 6.1 exits
 * on some sets under -X verbose ("sprintsigmask_n: got unexpected return
 * value").
 */
const STRACE = [
  ...["-f", "-qq", "-s", "0", "-X", "verbose", "--pidns-translation"],
  "-e",
  "raw=rt_sigprocmask,rt_sigaction,rt_sigtimedwait,rt_sigsuspend,rt_sigpending,rt_sigreturn,signalfd,signalfd4,ppoll,pselect6,epoll_pwait,epoll_pwait2",
];

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

/**
 * Runs every scenario of {@link SCENARIOS}, untraced, with `security` (the
 * engines' flags for a profile): each one's UDP echo must come back.
 */
export async function runScenarios(security: string[]): Promise<void> {
  for (const { engine, attached, ...options } of SCENARIOS) {
    await scenario(engine, runnerFor(engine, attached), options, security);
  }
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
 * profile logs none.) The log names a call, never its arguments: a call the
 * profile conditions (a socket kind, an ioctl request, W+X memory) logged
 * here fails, since nothing can derive the rule it lacks.
 */
export async function loggedOutside(text: string): Promise<Set<string>> {
  const file = `${tempDir()}/log-profile.json`;
  Deno.writeTextFileSync(
    file,
    JSON.stringify({ ...JSON.parse(text), defaultAction: "SCMP_ACT_LOG" }),
  );
  const { serial: start } = await seccompLog(0);
  await runScenarios(["--security-opt", `seccomp=${file}`]);
  const { calls } = await seccompLog(start);
  assert.deepEqual(
    [...calls].filter((call) => CONDITIONED.includes(call)),
    [],
    "conditioned calls logged outside the profile, with arguments no trace showed (the kernel logs no arguments): find them with strace -f -X verbose in the scenario that makes them, and trace that",
  );
  return calls;
}
