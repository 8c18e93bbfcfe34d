/**
 * The launch line: how every launch starts Deno on the supervisor. GNU `env`
 * first, blocking SIGUSR1 (DESIGN.md §4, "Signals") and removing or pinning
 * Deno's own variables (scripts/deno_env.ts); then `deno run` with V8's JIT
 * off, so that no process of the runtime maps writable-executable memory
 * (DESIGN.md §8, "Writable-executable memory").
 *
 * `deno task launch` writes the image's ENTRYPOINT (Dockerfile) and the
 * `start` task (deno.json) from here; tests/deno_env_test.ts holds both equal
 * to what it would write, and the tests, the demo and the benchmarks launch
 * through {@link envWords} and {@link V8_FLAGS} too.
 */
import { launchEnv } from "./deno_env.ts";

/** V8 without its JIT: every launch passes it, also the flag form outside the image. */
export const V8_FLAGS = "--v8-flags=--jitless";

/**
 * The `env` words before `deno`: SIGUSR1 blocked, then {@link launchEnv}'s
 * removals and pins (`image`: DENO_DIR pinned, not removed).
 */
export function envWords(image: boolean): string[] {
  const { removed, pinned } = launchEnv(image);
  return [
    "--block-signal=USR1",
    ...removed.flatMap((name) => ["-u", name]),
    ...pinned.map(([name, value]) => `${name}=${value}`),
  ];
}

/**
 * `deno run`'s words in the two production launches, before the config:
 * `--no-prompt` (a TTY never turns a denial into a question), `--quiet`
 * (Deno's warning about permission sets in a config file) and the V8 flags.
 */
const RUN = ["run", "--no-prompt", "--quiet", V8_FLAGS];

/** The image's Deno command after tini and env: the production set on the bundle. */
export const IMAGE_DENO_RUN: readonly string[] = [
  "/usr/local/bin/deno",
  ...RUN,
  "--config=/app/deno.json",
  "-P=production",
  "/app/main.js",
];

/** The image's ENTRYPOINT: tini as PID 1, then env, then {@link IMAGE_DENO_RUN}. */
export function entrypoint(): string[] {
  return [
    "/usr/bin/tini",
    "--",
    "/usr/bin/env",
    ...envWords(true),
    ...IMAGE_DENO_RUN,
  ];
}

/** deno.json's `start` task: the same line on main.ts, from the checkout. */
export function startTask(): string {
  return ["env", ...envWords(false), "deno", ...RUN, "-P=production", "main.ts"]
    .join(" ");
}

/** `ENTRYPOINT [...]` in exec form, wrapped before column 80 as the Dockerfile keeps it. */
export function entrypointInstruction(): string {
  const words = entrypoint().map((word) => JSON.stringify(word));
  const pieces = words.map((word, i) =>
    i === words.length - 1 ? `${word}]` : `${word},`
  );
  const lines: string[] = [];
  let line = `ENTRYPOINT [${pieces[0]}`;
  for (const piece of pieces.slice(1)) {
    if (`${line} ${piece} \\`.length > 79) {
      lines.push(`${line} \\`);
      line = `  ${piece}`;
    } else line += ` ${piece}`;
  }
  lines.push(line);
  return lines.join("\n");
}

/** The Dockerfile's ENTRYPOINT instruction. */
export const ENTRYPOINT_PATTERN = /^ENTRYPOINT \[[\s\S]*?\]$/m;

/** `"start": "..."` in deno.json's tasks. */
const START_PATTERN = /^(\s*"start": )".*",$/m;

if (import.meta.main) {
  const root = new URL("../", import.meta.url).pathname;
  const dockerfile = `${root}Dockerfile`;
  Deno.writeTextFileSync(
    dockerfile,
    Deno.readTextFileSync(dockerfile).replace(
      ENTRYPOINT_PATTERN,
      () => entrypointInstruction(),
    ),
  );
  const config = `${root}deno.json`;
  Deno.writeTextFileSync(
    config,
    Deno.readTextFileSync(config).replace(
      START_PATTERN,
      (_, key) => `${key}${JSON.stringify(startTask())},`,
    ),
  );
  console.log("launch: wrote Dockerfile's ENTRYPOINT and deno.json's start");
}
