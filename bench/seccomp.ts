/**
 * The runtime's seccomp profile outside a container engine, for the
 * benchmarks: bench/seccomp_exec.c (libseccomp) loads it, then execs the
 * measured program, as runc does before it execs the container's entrypoint.
 */
import { run } from "../e2e/topology.ts";

const ROOT = new URL("../", import.meta.url).pathname;

/** What the benchmarks put before a program to run it with or without the profile. */
export type Seccomp = {
  readonly filtered: readonly string[];
  readonly unfiltered: readonly string[];
};

/** A rule of deploy/seccomp/phantun-runtime.json. */
type Rule = {
  names: string[];
  action: string;
  errnoRet?: number;
  args?: { index: number; value: number; valueTwo: number; op: string }[];
  includes?: { arches?: string[] };
};

/** This machine's architecture as the engines name it in `includes`. */
const ARCH = Deno.build.arch === "x86_64" ? "amd64" : "arm64";

/**
 * The profile as seccomp_exec's rule lines, for this architecture: a rule
 * whose `includes` names only others is left out, as the engines leave it.
 */
function rules(
  profile: { defaultErrnoRet: number; syscalls: Rule[] },
): string {
  const lines = [`default ${profile.defaultErrnoRet}`];
  for (const rule of profile.syscalls) {
    if (rule.includes?.arches && !rule.includes.arches.includes(ARCH)) continue;
    const conditions = (rule.args ?? []).map((arg) =>
      arg.op === "SCMP_CMP_EQ"
        ? `${arg.index}:eq:${arg.value}`
        : `${arg.index}:masked_eq:${arg.value}:${arg.valueTwo}`
    );
    for (const name of rule.names) {
      lines.push(
        rule.action === "SCMP_ACT_ALLOW"
          ? ["allow", name, ...conditions].join(" ")
          : `errno ${rule.errnoRet} ${name}`,
      );
    }
  }
  return `${lines.join("\n")}\n`;
}

/** Compiles seccomp_exec into `dir` and writes the profile's rules beside it. */
export function seccompExec(dir: string): Seccomp {
  const binary = `${dir}/seccomp_exec`;
  run([
    "cc",
    "-O2",
    "-o",
    binary,
    `${ROOT}bench/seccomp_exec.c`,
    "-lseccomp",
  ]);
  const file = `${dir}/seccomp.rules`;
  Deno.writeTextFileSync(
    file,
    rules(JSON.parse(
      Deno.readTextFileSync(`${ROOT}deploy/seccomp/phantun-runtime.json`),
    )),
  );
  return { filtered: [binary, file], unfiltered: [binary, "-"] };
}
