/**
 * The restart-loop scenario of issue 6, for the image suite: `docker run
 * --restart on-failure:N` of the image with a phantun that crashes at every
 * start, while the test samples the bind-mounted IFACE_FILE on the host.
 * It is a function, not a test, so that tests/image/compose_test.ts calls it once
 * `phantun-runtime:test` exists:
 *
 *   imageTest("a restart loop with a crashing phantun keeps IFACE_FILE consistent", async () => {
 *     await restartLoop({ docker: DOCKER, image: IMAGE });
 *   });
 *
 * Needs root or a docker group, and `cc` with a static libc (Debian's
 * libc6-dev): the crashing phantun, tests/fixtures/crashing_phantun.c, is
 * compiled static so that it runs in the FROM-scratch image, where it is
 * bind-mounted over /usr/local/bin/phantun_client. Nothing uses the network
 * (`--network none`).
 */
import assert from "node:assert/strict";
import { compileFixture } from "./helpers.ts";

/** What {@link restartLoop} runs. */
export type RestartLoopOptions = {
  /** The image, e.g. "phantun-runtime:test". */
  readonly image: string;
  /** The docker CLI; "docker" from PATH by default. */
  readonly docker?: string;
  /** N of `--restart on-failure:N`; 5 by default. */
  readonly restarts?: number;
  /** How phantun dies at each start: "abort" (default), "segv", "kill" or an exit status 1-255. */
  readonly crash?: "abort" | "segv" | "kill" | number;
  /** More `docker run` flags (before the image), e.g. to run a stand-in image. */
  readonly runArgs?: readonly string[];
  /** Words between the image and `--` (only for a stand-in whose entrypoint is overridden). */
  readonly commandPrefix?: readonly string[];
};

/** What {@link restartLoop} saw. */
export type RestartLoopReport = {
  /** Starts of phantun, from its own log lines: N + 1. */
  readonly starts: number;
  readonly restartCount: number;
  /** The container's final exit status: 128+N for death by signal N. */
  readonly exitCode: number;
  /** Reads of the host file while the loop ran. */
  readonly samples: number;
  /** The file's successive distinct contents, e.g. ["", "ptun0", "", ...]. */
  readonly sequence: readonly string[];
  readonly seconds: number;
};

const NAME = "ptun0";
const IFACE = "/run/phantun/iface";
const SIGNALS = { abort: 6, segv: 11, kill: 9 } as const;

async function run(docker: string, args: string[]): Promise<string> {
  const { success, stdout, stderr } = await new Deno.Command(docker, { args })
    .output();
  const text = new TextDecoder();
  assert.ok(success, `docker ${args.join(" ")}: ${text.decode(stderr)}`);
  return text.decode(stdout) + text.decode(stderr);
}

/**
 * Runs the loop to its end and asserts that the handoff stayed consistent at
 * every step: each start of phantun found exactly IFACE_NAME in the file;
 * every read of the host file gave IFACE_NAME or nothing, never a partial or
 * stale name; the file was written in place (same inode) and is empty once
 * the engine gives up; the runtime printed no error; the engine restarted
 * exactly N times and reports phantun's death as the container's status.
 * Fails after two minutes instead of hanging.
 */
export async function restartLoop(
  options: RestartLoopOptions,
): Promise<RestartLoopReport> {
  const docker = options.docker ?? "docker";
  const restarts = options.restarts ?? 5;
  const crash = options.crash ?? "abort";
  const expectedCode = typeof crash === "number" ? crash : 128 + SIGNALS[crash];
  const work = Deno.makeTempDirSync({ prefix: "phantun-runtime-restart-" });
  Deno.chmodSync(work, 0o755);
  const fake = `${work}/phantun_client`;
  const file = `${work}/iface`;
  const name = `phantun-runtime-test-restart-${
    crypto.randomUUID().slice(0, 8)
  }`;
  compileFixture("crashing_phantun", fake, "-static");
  Deno.chmodSync(fake, 0o755);
  Deno.writeTextFileSync(file, "");
  Deno.chmodSync(file, 0o666); // the image runs as 65532
  const inode = Deno.statSync(file).ino;
  const started = performance.now();
  const sequence: string[] = [""];
  let samples = 0;
  try {
    await run(docker, [
      "run",
      "-d",
      "--name",
      name,
      "--restart",
      `on-failure:${restarts}`,
      "--network",
      "none",
      "--cap-drop",
      "ALL",
      "-v",
      `${fake}:/usr/local/bin/phantun_client:ro`,
      "-v",
      `${file}:${IFACE}`,
      "-e",
      "MODE=client",
      "-e",
      `IFACE_NAME=${NAME}`,
      "-e",
      `IFACE_FILE=${IFACE}`,
      "-e",
      `FAKE_CRASH=${crash}`,
      ...(options.runArgs ?? []),
      options.image,
      ...(options.commandPrefix ?? []),
      "--",
      "--local",
      "127.0.0.1:4567",
      "--remote",
      "127.0.0.1:4568",
      "--tun",
      NAME,
    ]);
    let state = "";
    let done = false;
    const watch = (async () => {
      while (!done) {
        state = (await run(docker, [
          "inspect",
          "-f",
          "{{.State.Status}} {{.State.Restarting}} {{.RestartCount}} {{.State.ExitCode}}",
          name,
        ])).trim();
        done = state.startsWith("exited false");
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    while (!done) {
      assert.ok(
        performance.now() - started < 120_000,
        `restart loop still running after 2 minutes: ${state}`,
      );
      const content = Deno.readTextFileSync(file);
      samples++;
      assert.ok(
        content === "" || content === NAME,
        `IFACE_FILE held ${JSON.stringify(content)}`,
      );
      if (content !== sequence.at(-1)) sequence.push(content);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    await watch;
    const [, , restartCount, exitCode] = state.split(" ").map(Number);
    const logs = await run(docker, ["logs", name]);
    const starts = logs.split("\n").filter((line) => line.startsWith("start "));
    assert.equal(restartCount, restarts, state);
    assert.equal(exitCode, expectedCode, state);
    assert.deepEqual(starts, Array(restarts + 1).fill(`start iface=${NAME}`));
    assert.ok(!logs.includes("phantun-runtime:"), logs);
    assert.equal(Deno.readTextFileSync(file), "");
    assert.equal(Deno.statSync(file).ino, inode, "IFACE_FILE was replaced");
    if (sequence.at(-1) !== "") sequence.push("");
    assert.ok(sequence.includes(NAME), "the sampler never saw the name");
    return {
      starts: starts.length,
      restartCount,
      exitCode,
      samples,
      sequence,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    await new Deno.Command(docker, {
      args: ["rm", "-f", name],
      stdout: "null",
      stderr: "null",
    })
      .output();
    Deno.removeSync(work, { recursive: true });
  }
}
