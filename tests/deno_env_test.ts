/**
 * Deno's own environment (scripts/deno_env.ts): every launch starts Deno with the
 * variables it reads for itself removed or pinned, the same words in each;
 * with all of them set to hostile values the supervisor does nothing the
 * manifest does not grant, and phantun still gets the rest of the
 * environment; and the list accounts for every variable the binary reads.
 */
import assert from "node:assert/strict";
import { DENO_ENV, launchEnv } from "../scripts/deno_env.ts";
import {
  entrypoint,
  ENTRYPOINT_PATTERN,
  entrypointInstruction,
  envWords,
  startTask,
} from "../scripts/launch.ts";
import { PRODUCTION } from "../lib/manifest.ts";
import {
  CC_MISSING,
  compileFixture,
  DENO,
  type FakeInstall,
  installFakePhantun,
  killFake,
  LAUNCHER,
  manifestFlags,
  NEEDS_MOUNT,
  readRecord,
  recordedEnv,
  resetRecord,
  ROOT,
  type RunResult,
  runSupervisor,
  type StartOptions,
  startSupervisor,
  taskCommand,
  tempDir,
  testWhen,
  waitFor,
} from "./helpers.ts";

const README = Deno.readTextFileSync(`${ROOT}README.md`);

Deno.test("the image's ENTRYPOINT and deno task start are what `deno task launch` writes, and the tests' launcher uses the same env words: SIGUSR1 blocked, each of Deno's own variables removed or pinned, DENO_DIR pinned in the image only, V8 without its JIT", () => {
  const dockerfile = Deno.readTextFileSync(`${ROOT}Dockerfile`);
  assert.equal(
    dockerfile.match(ENTRYPOINT_PATTERN)?.[0],
    entrypointInstruction(),
    "run deno task launch",
  );
  const tasks = JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`)).tasks;
  assert.equal(tasks.start, startTask(), "run deno task launch");
  for (const line of [tasks.start.split(" "), entrypoint()]) {
    assert.ok(line.includes("--v8-flags=--jitless"), line.join(" "));
  }
  assert.deepEqual(LAUNCHER, ["env", ...envWords(false)]);
  for (const [name, how] of DENO_ENV) {
    const removed = envWords(true).includes(name);
    assert.equal(removed, "unset" in how, name);
    if ("pin" in how) {
      assert.ok(envWords(true).includes(`${name}=${how.pin}`), name);
    }
  }
  assert.ok(envWords(false).includes("DENO_DIR"));
  assert.ok(!envWords(false).some((word) => word.startsWith("DENO_DIR=")));
});

Deno.test("README says why each group of variables is removed and names the pins; DESIGN.md and its translation name every removed variable", () => {
  const section = README.slice(README.indexOf("### Deno's own environment"))
    .split("\n### ")[0].replaceAll("\n", " ");
  const names = (text: string) =>
    new Set([...text.matchAll(/`([^`]+)`/g)].map((m) => m[1]));
  const readme = names(section);
  const designs = ["DESIGN.md", "DESIGN-CN.md"].map((file) =>
    names(Deno.readTextFileSync(`${ROOT}${file}`))
  );
  for (const [name, how] of DENO_ENV) {
    if ("unset" in how) {
      assert.ok(section.includes(how.unset), `README: "${how.unset}"`);
      for (const design of designs) {
        assert.ok(design.has(name), `DESIGN: ${name}`);
      }
    } else if ("pin" in how) {
      assert.ok(readme.has(`${name}=${how.pin}`), `README: ${name}=${how.pin}`);
    }
  }
});

/** Compiles the getenv() recorder (tests/fixtures/getenv_log.c). */
function getenvRecorder(): string {
  const library = `${tempDir()}/getenv_log.so`;
  compileFixture("getenv_log", library, "-shared", "-fPIC");
  return library;
}

/**
 * Runs the supervisor with the fake as client, the handoff on, until the
 * fake is ready, sends SIGHUP then SIGTERM, and returns what it gave.
 */
async function lifecycle(
  fake: FakeInstall,
  options: Partial<StartOptions> & { env?: Record<string, string> },
): Promise<RunResult> {
  const iface = `${fake.scratch}/iface`;
  const run = startSupervisor(fake, {
    args: [`--phantun-dir=${fake.dir}`, "--", "--local", "127.0.0.1:1234"],
    flags: manifestFlags(fake.dir, iface),
    ...options,
    env: {
      MODE: "client",
      IFACE_FILE: iface,
      IFACE_NAME: "ptun0",
      RUST_LOG: "debug",
      ...options.env,
    },
  });
  try {
    await waitFor("the fake", () => readRecord(fake, "ready") !== null);
    run.process.kill("SIGHUP");
    await waitFor("SIGHUP", () => readRecord(fake, "signals") === "HUP\n");
    run.process.kill("SIGTERM");
    return await run.finished;
  } finally {
    killFake(fake);
  }
}

testWhen(
  CC_MISSING,
  "the Deno binary reads no environment variable that scripts/deno_env.ts does not account for (every getenv() of the supervisor's runs, recorded)",
  async () => {
    const library = getenvRecorder();
    const log = `${tempDir()}/getenv.log`;
    const wrapper = ["env", `LD_PRELOAD=${library}`, `GETENV_LOG=${log}`];
    for (const args of [["--version"], ["--help"], ["--"]]) {
      const fake = installFakePhantun();
      await runSupervisor(fake, { args, wrapper, env: { MODE: "bogus" } });
    }
    const result = await lifecycle(installFakePhantun(), { wrapper });
    assert.equal(result.code, 143, result.stderr);
    const read = new Set(Deno.readTextFileSync(log).split("\n"));
    read.delete("");
    assert.ok(
      read.has("DENO_V8_FLAGS") && read.has("MODE"),
      "nothing recorded",
    );
    const unaccounted = [...read].filter((name) =>
      !DENO_ENV.has(name) && !PRODUCTION.env.includes(name)
    );
    assert.deepEqual(
      unaccounted,
      [],
      "Deno reads variables scripts/deno_env.ts does not list: decide for each (DESIGN.md §3)",
    );
  },
);

/** A TCP listener on the loopback that counts the connections it accepts. */
function countingListener(): {
  port: number;
  count: () => number;
  close: () => void;
} {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let count = 0;
  (async () => {
    for await (const connection of listener) {
      count++;
      connection.close();
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    count: () => count,
    close: () => listener.close(),
  };
}

/** Hostile values: where a variable would send Deno, what it would write, or a switch. */
const HOSTILE: Record<
  string,
  (name: string, port: number, dir: string) => string
> = {
  url: (name, port) => `http://127.0.0.1:${port}/${name}`,
  path: (name, _port, dir) => `${dir}/${name}`,
  one: () => "1",
  true: () => "true",
};

/** Every removed or pinned variable set to `kind`'s hostile value. */
function hostileEnv(
  kind: string,
  port: number,
  dir: string,
  names = [...DENO_ENV].filter(([, how]) => !("keep" in how)).map(([n]) => n),
): Record<string, string> {
  return Object.fromEntries(
    names.map((name) => [name, HOSTILE[kind](name, port, dir)]),
  );
}

/** Asserts `env` lacks every variable a launch outside the image removes, holds its pins, and RUST_LOG. */
function assertScrubbed(env: Map<string, string>): void {
  const { removed, pinned } = launchEnv(false);
  for (const name of removed) {
    assert.ok(!env.has(name), `${name} reached phantun`);
  }
  for (const [name, value] of pinned) assert.equal(env.get(name), value, name);
  assert.equal(env.get("RUST_LOG"), "debug");
}

Deno.test("with every removed or pinned variable set to a hostile value, the launched supervisor connects nowhere, writes nothing but the handoff file, prints and exits as without them, and phantun gets the rest of the environment", async () => {
  const listener = countingListener();
  try {
    const baselineFake = installFakePhantun();
    const baseline = await lifecycle(baselineFake, {});
    assert.equal(baseline.code, 143, baseline.stderr);
    for (const kind of Object.keys(HOSTILE)) {
      const fake = installFakePhantun();
      const probe = tempDir();
      const result = await lifecycle(fake, {
        env: hostileEnv(kind, listener.port, probe),
      });
      assert.deepEqual(
        { code: result.code, stdout: result.stdout, stderr: result.stderr },
        { code: 143, stdout: baseline.stdout, stderr: baseline.stderr },
        kind,
      );
      assert.deepEqual(
        [...Deno.readDirSync(probe)],
        [],
        `${kind}: files written`,
      );
      assertScrubbed(recordedEnv(fake));
    }
    assert.equal(listener.count(), 0, "connections to the test's listener");
  } finally {
    listener.close();
  }
});

Deno.test("without the launch's env words Deno acts on its own variables: telemetry reaches the test's listener, a permission audit is written, V8 takes flags (so the checks above can fail)", async () => {
  const listener = countingListener();
  const dir = tempDir();
  const unscrubbed = (env: Record<string, string>) =>
    runSupervisor(installFakePhantun(), {
      args: ["--"],
      launcher: ["env", "--block-signal=USR1"],
      env: { MODE: "bogus", ...env },
    });
  try {
    await unscrubbed({
      OTEL_DENO: "true",
      OTEL_DENO_CONSOLE: "capture",
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${listener.port}`,
    });
    await waitFor("telemetry", () => listener.count() > 0, 5_000);
    await unscrubbed({ DENO_AUDIT_PERMISSIONS: `${dir}/audit.jsonl` });
    assert.match(Deno.readTextFileSync(`${dir}/audit.jsonl`), /"MODE"/);
    const v8 = await unscrubbed({ DENO_V8_FLAGS: "--help" });
    assert.match(v8.stdout, /The following syntax for options/);
  } finally {
    listener.close();
  }
});

testWhen(
  CC_MISSING ?? NEEDS_MOUNT,
  "deno task start removes or pins Deno's variables for the supervisor: those the task runner does not read itself, set hostile, make it connect nowhere and write nothing, and phantun sees none of them",
  async () => {
    // The runner is Deno too, and reads variables before it runs the line:
    // learn which, and set only the others.
    const library = getenvRecorder();
    const log = `${tempDir()}/runner.log`;
    const project = tempDir();
    Deno.writeTextFileSync(`${project}/deno.json`, '{"tasks": {"x": "true"}}');
    const runner = new Deno.Command(DENO, {
      args: ["task", "--quiet", "x"],
      cwd: project,
      env: { LD_PRELOAD: library, GETENV_LOG: log },
    }).outputSync();
    assert.ok(runner.success);
    const read = new Set(Deno.readTextFileSync(log).split("\n"));
    const names = [...DENO_ENV].filter(([name, how]) =>
      !("keep" in how) && !read.has(name)
    ).map(([name]) => name);
    assert.ok(names.length > 0, "the runner reads every variable");

    const listener = countingListener();
    const fake = installFakePhantun();
    const state = tempDir();
    try {
      for (const kind of ["url", "path"]) {
        const probe = tempDir();
        const task = taskCommand(fake, state, {
          env: {
            RUST_LOG: "debug",
            ...hostileEnv(kind, listener.port, probe, names),
          },
        }).spawn();
        try {
          await waitFor("the fake", () => readRecord(fake, "ready") !== null);
          assert.equal(Deno.readTextFileSync(`${state}/iface`), "ptun0");
          assertScrubbed(recordedEnv(fake));
        } finally {
          killFake(fake);
        }
        const { stderr } = await task.output();
        assert.equal(new TextDecoder().decode(stderr), "", kind);
        assert.deepEqual(
          [...Deno.readDirSync(probe)],
          [],
          `${kind}: files written`,
        );
        resetRecord(fake);
      }
      assert.equal(listener.count(), 0, "connections to the test's listener");
    } finally {
      listener.close();
    }
  },
);
