/**
 * Startup: from starting a wrapper to the exec of phantun. `stamp -- ARGV`
 * stamps just before it forks ARGV; the fake phantun stamps first thing after
 * its exec; both read CLOCK_MONOTONIC. The empty Deno script has no phantun:
 * its figure is start to exit, the least any `deno run` can take. Every Deno
 * variant runs as the image does, without V8's JIT and without a DENO_DIR,
 * but for the two named after what they add back.
 */
import { readStamps } from "./proc.ts";
import { type Subjects, type Workspace } from "./workspace.ts";
import { interleave, summarize, type Summary } from "./stats.ts";

/** One variant's milliseconds from start to phantun's exec, and to exit. */
export type StartupResult = {
  readonly exec: Summary | null;
  readonly exit: Summary;
};

/** Runs ARGV under `stamp --`; returns its stamps in milliseconds after start. */
function stamped(
  ws: Workspace,
  argv: string[],
): { exec: number | null; exit: number } {
  const file = `${ws.dir}/startup.stamps`;
  const { success, stderr } = new Deno.Command(ws.stamp, {
    args: ["--", ...argv],
    clearEnv: true,
    env: { ...ws.env, STAMP_FILE: file },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).outputSync();
  if (!success) {
    throw new Error(
      `${argv.join(" ")}: ${new TextDecoder().decode(stderr)}`,
    );
  }
  const stamps = readStamps(file);
  Deno.removeSync(file);
  const since = (what: string) => {
    const ns = stamps.get(what);
    return ns === undefined ? null : Number(ns - stamps.get("start")!) / 1e6;
  };
  return { exec: since("exec"), exit: since("exit")! };
}

/** Measures every startup variant `rounds` times, interleaved, each round rotated. */
export async function measureStartup(
  ws: Workspace,
  s: Subjects,
  rounds: number,
): Promise<Record<string, StartupResult>> {
  const fake = `${ws.fakeDir}/phantun_client`;
  const variants: Record<string, string[]> = {
    "direct exec": [fake],
    "seccomp_exec without a filter, then phantun": [
      ...ws.seccomp.unfiltered,
      fake,
    ],
    "seccomp_exec loading the profile, then phantun": [
      ...ws.seccomp.filtered,
      fake,
    ],
    "tini --": s.tini(fake),
    "sh entrypoint (exec)": s.shExec(fake),
    "deno run empty script (floor)": s.denoEmpty(),
    "deno run spawn-only script": s.denoSpawn(fake),
    "deno run contract script": s.denoContract(fake),
    "supervisor with V8's code cache": s.supervisorCached(ws.fakeDir),
    "supervisor": s.supervisor(ws.fakeDir),
    "supervisor with V8's JIT": s.supervisorJit(ws.fakeDir),
    "supervisor, seccomp_exec without a filter": [
      ...ws.seccomp.unfiltered,
      ...s.supervisor(ws.fakeDir),
    ],
    "supervisor under the seccomp profile": [
      ...ws.seccomp.filtered,
      ...s.supervisor(ws.fakeDir),
    ],
    // An A/A control: how far two identical variants differ in one run.
    "supervisor, seccomp_exec without a filter, again": [
      ...ws.seccomp.unfiltered,
      ...s.supervisor(ws.fakeDir),
    ],
    "supervisor from sources (12 modules)": s.supervisorSources(ws.fakeDir),
  };
  const runs = await interleave(
    rounds,
    Object.fromEntries(
      Object.entries(variants).map((
        [name, argv],
      ) => [name, () => stamped(ws, argv)]),
    ),
    true, // a variant's place in the round changed its time by up to 5%
  );
  return Object.fromEntries(
    Object.entries(runs).map(([name, results]) => {
      const execs = results.map((r) => r.exec).filter((ms) => ms !== null);
      return [name, {
        exec: execs.length ? summarize(execs) : null,
        exit: summarize(results.map((r) => r.exit)),
      }];
    }),
  );
}
