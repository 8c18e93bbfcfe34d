/**
 * The benchmarks' scratch area: the stamp clock and fake phantun, a copy of
 * the supervisor whose production manifest grants the benchmark's binaries,
 * the Deno floor scripts, a private DENO_DIR for the variants with V8's code
 * cache and one Deno cannot create for those without (as in the image), all
 * in one temporary directory.
 */
import { run } from "../e2e/topology.ts";
import { LAUNCHER } from "../e2e/supervisor.ts";
import { V8_FLAGS } from "../scripts/launch.ts";
import { type Seccomp, seccompExec } from "./seccomp.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const DENO = Deno.execPath();

/** Everything the measurements start, and how. */
export type Workspace = {
  readonly dir: string;
  /** `stamp -- PROGRAM...` runs PROGRAM between two stamps (bench/stamp.c). */
  readonly stamp: string;
  /** A directory with `phantun_client`/`phantun_server` that are `stamp`. */
  readonly fakeDir: string;
  /** The real phantun binaries' directory. */
  readonly phantunDir: string;
  /** The handoff file the copy's manifest grants. */
  readonly ifaceFile: string;
  /** The environment every measured program starts with. */
  readonly env: Record<string, string>;
  /**
   * The DENO_DIR of the variants with V8's code cache. The environment's
   * DENO_DIR is one Deno cannot create (its parent is a file): no cache of
   * any kind, as in the image, whose DENO_DIR is /dev/null.
   */
  readonly denoDir: string;
  /** What runs a program with or without the runtime's seccomp profile. */
  readonly seccomp: Seccomp;
};

/** The programs a measurement compares, as argv. */
export type Subjects = {
  /**
   * The image's ENTRYPOINT (without tini) running phantun from `dir`: the
   * supervisor bundled into one module, V8 without its JIT, no DENO_DIR, as
   * the image runs it.
   */
  supervisor(dir: string, phantunArgs?: readonly string[]): string[];
  /** The same with V8's JIT (no --jitless). */
  supervisorJit(dir: string, phantunArgs?: readonly string[]): string[];
  /** The same with V8's code cache: the workspace's DENO_DIR, filled under the same flags. */
  supervisorCached(dir: string): string[];
  /** main.ts and lib/ as they are (twelve modules), with the code cache. */
  supervisorSources(dir: string): string[];
  /**
   * `deno run` of the least script that keeps the supervisor's contract
   * (SIGUSR1 blocked by the launcher, grant checks, handoff, five signal
   * listeners, spawn, wait, empty, exit).
   */
  denoContract(program: string): string[];
  /** `deno run` of an empty script: exits at once. */
  denoEmpty(): string[];
  /** `deno run` of an empty script kept alive by one pending timer. */
  denoIdle(): string[];
  /** `deno run` of the smallest Deno supervisor: spawn, forward TERM/INT, wait. */
  denoSpawn(program: string, args?: readonly string[]): string[];
  /** tini (static, as in the image) running `program`. */
  tini(program: string, args?: readonly string[]): string[];
  /** A POSIX sh entrypoint that `exec`s `program`. */
  shExec(program: string, args?: readonly string[]): string[];
};

const EMPTY_JS = "";
const IDLE_JS = "setTimeout(() => {}, 2 ** 31 - 1);\n";
const SPAWN_JS = `const child = new Deno.Command(Deno.args[0], {
  args: Deno.args.slice(1),
}).spawn();
for (const signal of ["SIGTERM", "SIGINT"]) {
  Deno.addSignalListener(signal, () => child.kill(signal));
}
Deno.exit((await child.status).code);
`;
const CONTRACT_JS = `const file = Deno.env.get("IFACE_FILE");
const name = Deno.env.get("IFACE_NAME");
Deno.env.get("MODE");
Deno.permissions.querySync({ name: "run", command: Deno.args[0] });
Deno.permissions.querySync({ name: "write", path: file });
Deno.permissions.querySync({ name: "read", path: file });
let child;
for (
  const signal of ["SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR2"]
) {
  Deno.addSignalListener(signal, () => child.kill(signal));
}
try {
  Deno.lstatSync(file);
} catch {
  // absent: the write creates it
}
Deno.writeTextFileSync(file, name + "\\n");
child = new Deno.Command(Deno.args[0], { args: Deno.args.slice(1) }).spawn();
const { code } = await child.status;
Deno.truncateSync(file);
Deno.exit(code);
`;
const ENTRYPOINT_SH = '#!/bin/sh\nexec "$@"\n';

/**
 * Builds the workspace: compiles bench/stamp.c and bench/seccomp_exec.c with
 * `cc`, copies main.ts, lib/, deno.json and deno.lock with `permissions.production` granting the
 * fake and the real phantun and one handoff file, bundles them into main.js as
 * the image does (`deno bundle`, esbuild from npm), then runs every Deno
 * subject once: the page cache holds every file, and the variants with V8's
 * code cache find it filled.
 */
export function createWorkspace(phantunDir: string): Workspace {
  const dir = Deno.makeTempDirSync({ prefix: "phantun-runtime-bench-" });
  const stamp = `${dir}/stamp`;
  const fakeDir = `${dir}/fake`;
  const ifaceFile = `${dir}/iface`;
  run(["cc", "-O2", "-o", stamp, `${ROOT}bench/stamp.c`]);
  Deno.mkdirSync(fakeDir);
  for (const name of ["phantun_client", "phantun_server"]) {
    Deno.copyFileSync(stamp, `${fakeDir}/${name}`);
  }
  Deno.mkdirSync(`${dir}/app/lib`, { recursive: true });
  for (const file of ["main.ts", "deno.lock"]) {
    Deno.copyFileSync(`${ROOT}${file}`, `${dir}/app/${file}`);
  }
  for (const entry of Deno.readDirSync(`${ROOT}lib`)) {
    Deno.copyFileSync(
      `${ROOT}lib/${entry.name}`,
      `${dir}/app/lib/${entry.name}`,
    );
  }
  const config = JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`));
  config.permissions.production.run = [fakeDir, phantunDir].flatMap((d) => [
    `${d}/phantun_client`,
    `${d}/phantun_server`,
  ]);
  config.permissions.production.write = [ifaceFile];
  config.permissions.production.read = [ifaceFile];
  Deno.writeTextFileSync(`${dir}/app/deno.json`, JSON.stringify(config));
  run([
    DENO,
    "bundle",
    "--quiet",
    "--platform=deno",
    `--output=${dir}/app/main.js`,
    `${dir}/app/main.ts`,
  ]);
  Deno.writeTextFileSync(`${dir}/empty.js`, EMPTY_JS);
  Deno.writeTextFileSync(`${dir}/idle.js`, IDLE_JS);
  Deno.writeTextFileSync(`${dir}/spawn.js`, SPAWN_JS);
  Deno.writeTextFileSync(`${dir}/contract.js`, CONTRACT_JS);
  Deno.writeTextFileSync(`${dir}/entrypoint.sh`, ENTRYPOINT_SH, {
    mode: 0o755,
  });
  const env = {
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    // As engines set it: without HOME, Deno looks the user up in /etc/passwd.
    HOME: dir,
    DENO_DIR: `${dir}/none/deno-dir`,
    DENO_NO_UPDATE_CHECK: "1",
    STAMP_FILE: `${dir}/warm-up.stamps`,
    MODE: "client",
    IFACE_FILE: ifaceFile,
    IFACE_NAME: "ptun0",
  };
  const seccomp = seccompExec(dir);
  Deno.writeTextFileSync(`${dir}/none`, "");
  const workspace = {
    dir,
    stamp,
    fakeDir,
    phantunDir,
    ifaceFile,
    env,
    denoDir: `${dir}/deno-dir`,
    seccomp,
  };
  const s = subjects(workspace);
  for (
    const argv of [
      s.supervisor(fakeDir),
      s.supervisorJit(fakeDir),
      s.supervisorCached(fakeDir),
      s.supervisorSources(fakeDir),
      s.denoContract(`${fakeDir}/phantun_client`),
      s.denoEmpty(),
      s.denoSpawn(`${fakeDir}/phantun_client`),
    ]
  ) {
    run(argv, env);
  }
  return workspace;
}

/** The argv of each subject in `ws`. */
export function subjects(ws: Workspace): Subjects {
  const app = `${ws.dir}/app`;
  // As the image's ENTRYPOINT: Deno's own variables removed, DENO_DIR pinned.
  const launcher = (denoDir: string) => [...LAUNCHER, `DENO_DIR=${denoDir}`];
  const entrypoint = (
    options: { main: string; jit: boolean; denoDir: string },
    dir: string,
    phantunArgs: readonly string[],
  ) => [
    ...launcher(options.denoDir),
    DENO,
    "run",
    "--no-prompt",
    "--quiet",
    ...(options.jit ? [] : [V8_FLAGS]),
    `--config=${app}/deno.json`,
    "-P=production",
    `${app}/${options.main}`,
    `--phantun-dir=${dir}`,
    "--",
    ...phantunArgs,
  ];
  const image = { main: "main.js", jit: false, denoDir: ws.env.DENO_DIR };
  const cached = { ...image, denoDir: ws.denoDir };
  // The Deno baselines run as the supervisor does: no JIT, no cache.
  const deno = [DENO, "run", V8_FLAGS, "--no-config"];
  return {
    supervisor: (dir, phantunArgs = []) => entrypoint(image, dir, phantunArgs),
    supervisorJit: (dir, phantunArgs = []) =>
      entrypoint({ ...image, jit: true }, dir, phantunArgs),
    supervisorCached: (dir) => entrypoint(cached, dir, []),
    supervisorSources: (dir) =>
      entrypoint({ ...cached, main: "main.ts" }, dir, []),
    denoContract: (program) => [
      ...launcher(ws.env.DENO_DIR), // blocking SIGUSR1 is part of the contract
      ...deno,
      `--allow-run=${program}`,
      `--allow-env=MODE,IFACE_FILE,IFACE_NAME`,
      `--allow-write=${ws.ifaceFile}`,
      `--allow-read=${ws.ifaceFile}`,
      `${ws.dir}/contract.js`,
      program,
    ],
    denoEmpty: () => [...deno, `${ws.dir}/empty.js`],
    denoIdle: () => [...deno, `${ws.dir}/idle.js`],
    denoSpawn: (program, args = []) => [
      ...deno,
      `--allow-run=${program}`,
      `${ws.dir}/spawn.js`,
      program,
      ...args,
    ],
    tini: (program, args = []) => ["tini-static", "-s", "--", program, ...args],
    shExec: (program, args = []) => [
      `${ws.dir}/entrypoint.sh`,
      program,
      ...args,
    ],
  };
}

/** Removes the workspace. */
export function removeWorkspace(ws: Workspace): void {
  Deno.removeSync(ws.dir, { recursive: true });
}
