/**
 * The seccomp profile's rules, derived from what a trace of the real scenarios
 * saw (tests/image/seccomp_trace.ts): the calls it allows, in groups; the
 * conditions on clone, socket, ioctl and the memory calls (writable xor
 * executable); what it refuses on purpose; and the committed profile read
 * back as the trace it allows. scripts/seccomp-profile.ts writes
 * deploy/seccomp/phantun-runtime.json from these rules, and
 * tests/image/seccomp_test.ts holds the committed file to them.
 */
import assert from "node:assert/strict";

// deno-lint-ignore no-explicit-any
type Json = any;

/** What one trace saw of the image's processes (or what a profile allows). */
export type Trace = {
  /** Every syscall made at least once without ENOSYS. */
  readonly syscalls: Set<string>;
  /**
   * Every `socket()` kind, "FAMILY TYPE PROTOCOL" in numbers (the type
   * without its flags), with its names as strace gave them.
   */
  readonly sockets: Map<string, string>;
  /** Every ioctl request number, with its name as strace gave it. */
  readonly ioctls: Map<number, string>;
  /** Each memory call that asked for writable and executable memory. */
  readonly wx: string[];
  /** How many containers of the image the trace covered. */
  readonly containers: number;
};

/** Where the profile lives, and where Docker and Podman read it from. */
export const PROFILE = "deploy/seccomp/phantun-runtime.json";

/**
 * Each call allowed whatever its arguments, by group, which the profile's
 * comments and DESIGN.md name. A traced call that is in no group stops the
 * derivation: someone decides.
 */
const GROUPS: Record<string, string> = {
  "memory (mmap, mprotect: below)": "brk munmap mremap madvise pkey_alloc",
  "files and descriptors (the binaries, the handoff file, /proc, the TUN)":
    "openat read write pread64 pwrite64 close dup dup2 dup3 lseek fstat newfstatat stat lstat statx fstatfs readlink readlinkat access faccessat faccessat2 getdents64 fcntl ftruncate fsync fchown getcwd chdir",
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
 * Traced calls refused on purpose with EACCES, what the image's user gets
 * anyway: at every start Deno asks for its cache directory (DENO_DIR, which
 * the image does not have); as root (the root run profile) it would make it
 * in the container's layer and write its caches there. The runtime makes no
 * directory and removes no file.
 */
const NO_CACHE = ["mkdir", "mkdirat", "unlink", "unlinkat"];
const EACCES = 13;

/** Traced calls the profile refuses on purpose. */
const REFUSED = [...FALLBACK, ...NO_CACHE];

const PROT_WRITE = 0x2;
const PROT_EXEC = 0x4;
const SHM_EXEC = 0o100000;

/**
 * Writable xor executable, as systemd's MemoryDenyWriteExecute= has it: each
 * memory call allowed only when its protection argument (index 2) has none of
 * the bits of one of its masks. mmap: not writable and executable at once;
 * mprotect and pkey_mprotect: never executable (seccomp cannot see what a
 * page was, so any PROT_EXEC counts as gaining it); shmat: never SHM_EXEC. A
 * call is in the profile only once traced.
 */
const WX: Record<string, readonly { mask: number; comment: string }[]> = {
  mmap: [
    { mask: PROT_EXEC, comment: "mmap, not executable" },
    {
      mask: PROT_WRITE,
      comment: "mmap, not writable (code mapped from its file, read-only)",
    },
  ],
  mprotect: [{ mask: PROT_EXEC, comment: "mprotect, never to executable" }],
  pkey_mprotect: [
    { mask: PROT_EXEC, comment: "pkey_mprotect, never to executable" },
  ],
  shmat: [{ mask: SHM_EXEC, comment: "shmat, never SHM_EXEC" }],
};

/** True when the profile refuses memory call `name` with protection `prot`. */
export function breaksWX(name: string, prot: number): boolean {
  return name in WX && WX[name].every(({ mask }) => (prot & mask) !== 0);
}

/**
 * Traced calls the profile does not simply allow: clone, socket, ioctl and
 * the memory calls are allowed with conditions on their arguments, the rest
 * refused on purpose.
 */
export const CONDITIONED: readonly string[] = [
  "clone",
  "socket",
  "ioctl",
  ...Object.keys(WX),
  ...REFUSED,
];

/**
 * aarch64 has none of x86_64's older calls: their successors, which the C
 * library calls there instead (QEMU user emulation cannot run a filter for
 * the guest, so aarch64 is derived, not traced). Those x86_64 did not call
 * itself are allowed on arm64 only (x86_64's older names do not exist on
 * arm64, where the engines skip them). Socket kinds, ioctl requests and
 * protection bits have the same numbers on both.
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
/** SOCK_TYPE_MASK: the type without SOCK_CLOEXEC and SOCK_NONBLOCK. */
const TYPE_MASK = 0xf;
/** The kernel takes ioctl's request as an unsigned int: its low 32 bits. */
const REQUEST_MASK = 0xffffffff;
const ENOSYS = 38;
const EPERM = 1;

const allow = (names: string[], comment: string, args?: Json[]): Json => ({
  names,
  action: "SCMP_ACT_ALLOW",
  ...(args ? { args } : {}),
  comment,
});
const eq = (index: number, value: number): Json => ({
  index,
  value,
  valueTwo: 0,
  op: "SCMP_CMP_EQ",
});
/** (argument `index` & mask) == value: Docker's JSON puts the mask in `value`. */
const masked = (index: number, mask: number, value: number): Json => ({
  index,
  value: mask,
  valueTwo: value,
  op: "SCMP_CMP_MASKED_EQ",
});

/** "A B C" in numbers, compared as numbers. */
const byNumbers = (a: string, b: string) => {
  const [x, y] = [a, b].map((key) => key.split(" ").map(Number));
  return x[0] - y[0] || x[1] - y[1] || x[2] - y[2];
};

/** The seccomp profile (Docker's JSON format) that allows what `trace` saw. */
function profile(trace: Trace): Json {
  assert.deepEqual(trace.wx, [], "writable and executable memory traced");
  const group = new Map<string, string>();
  for (const [name, members] of Object.entries(GROUPS)) {
    for (const call of members.split(" ")) group.set(call, name);
  }
  const calls = new Set([...trace.syscalls, ...Object.keys(SELDOM)]);
  const unknown = [...calls].filter((call) =>
    !group.has(call) && !CONDITIONED.includes(call)
  );
  assert.deepEqual(unknown, [], "traced calls in no group of GROUPS");
  const rules: Json[] = Object.keys(GROUPS).map((name) =>
    allow(
      [...calls].filter((call) => group.get(call) === name).sort(),
      name,
    )
  ).filter((rule) => rule.names.length > 0);
  const successors = [...calls].map((call) => AARCH64[call])
    .filter((call) => call !== undefined && !calls.has(call));
  if (successors.length > 0) {
    rules.push({
      ...allow(
        [...new Set(successors)].sort(),
        "aarch64: the successors of x86_64's older calls above",
      ),
      includes: { arches: ["arm64"] },
    });
  }
  rules.push(
    allow(
      ["clone"],
      "new threads and processes, never new namespaces",
      [masked(0, CLONE_NAMESPACES, 0)],
    ),
  );
  for (const [call, masks] of Object.entries(WX)) {
    if (!calls.has(call)) continue;
    for (const { mask, comment } of masks) {
      rules.push(allow([call], comment, [masked(2, mask, 0)]));
    }
  }
  for (const key of [...trace.sockets.keys()].sort(byNumbers)) {
    const [family, type, protocol] = key.split(" ").map(Number);
    rules.push(allow(["socket"], `socket(${trace.sockets.get(key)})`, [
      eq(0, family),
      masked(1, TYPE_MASK, type),
      eq(2, protocol),
    ]));
  }
  for (const request of [...trace.ioctls.keys()].sort((a, b) => a - b)) {
    rules.push(
      allow(["ioctl"], `ioctl(${trace.ioctls.get(request)})`, [
        masked(1, REQUEST_MASK, request),
      ]),
    );
  }
  rules.push({
    names: FALLBACK,
    action: "SCMP_ACT_ERRNO",
    errnoRet: ENOSYS,
    comment:
      "newer calls the C library falls back from on ENOSYS (clone3: its flags are out of seccomp's reach)",
  });
  rules.push({
    names: NO_CACHE,
    action: "SCMP_ACT_ERRNO",
    errnoRet: EACCES,
    comment:
      "no directory made, no file removed: EACCES, as for the image's user (Deno's cache directory, absent from the image)",
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

/** What is inside the parentheses of a rule's comment "call(...)". */
const named = (comment: string) => comment.slice(comment.indexOf("(") + 1, -1);

/**
 * The trace a committed profile allows: its calls (conditioned ones
 * included), its socket kinds and its ioctl requests.
 */
export function allowed(text: string): Trace {
  const trace: Trace = {
    syscalls: new Set(),
    sockets: new Map(),
    ioctls: new Map(),
    wx: [],
    containers: 0,
  };
  for (const rule of JSON.parse(text).syscalls) {
    // The arm64-only rule is derived from the others.
    if (rule.action !== "SCMP_ACT_ALLOW" || rule.includes) continue;
    for (const call of rule.names) trace.syscalls.add(call);
    if (rule.names[0] === "socket") {
      const [family, type, protocol] = rule.args;
      trace.sockets.set(
        `${family.value} ${type.valueTwo} ${protocol.value}`,
        named(rule.comment),
      );
    } else if (rule.names[0] === "ioctl") {
      trace.ioctls.set(rule.args[0].valueTwo, named(rule.comment));
    }
  }
  return trace;
}

/** `n` as 0x-prefixed hex. */
const hex = (n: number) => `0x${n.toString(16)}`;

/**
 * Everything `trace` saw that `committed` does not allow, each named: calls,
 * socket kinds, ioctl requests, and writable-executable memory.
 */
export function outside(trace: Trace, committed: Trace): string[] {
  return [
    ...[...trace.syscalls].filter((call) =>
      !committed.syscalls.has(call) && !REFUSED.includes(call)
    ),
    ...[...trace.sockets].filter(([key]) => !committed.sockets.has(key))
      .map(([key, name]) => `socket(${name}) [${key}]`),
    ...[...trace.ioctls].filter(([request]) => !committed.ioctls.has(request))
      .map(([request, name]) => `ioctl(${name}) [${hex(request)}]`),
    ...trace.wx,
  ];
}
