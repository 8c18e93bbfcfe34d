/**
 * Reliability: IFACE_FILE faults, before launch (devices, links, read-only
 * mounts, files the runtime's user may not write) and while phantun runs
 * (deleted, replaced, made unwritable): each refused or reported in one line,
 * nothing launched or written where it must not be, no hang.
 */
import assert from "node:assert/strict";
import {
  assertHandoffRefused,
  assertRefused,
  type FakeInstall,
  inPrivateMount,
  installFakePhantun,
  IS_ROOT,
  manifestFlags,
  missingCommand,
  NEEDS_MOUNT,
  nothingLaunched,
  output,
  readableMain,
  readRecord,
  type RunResult,
  runSupervisor,
  startSupervisor,
  testWhen,
  waitFor,
} from "../helpers.ts";
import {
  installBase,
  prepareUntouched,
  readBytes,
  removeInstall,
} from "./harness.ts";

/**
 * Asserts stderr is one or more `phantun-runtime:` lines, each containing
 * `needle`: the handoff is emptied twice (shutdown, then exit), so a file
 * that cannot be emptied is reported twice.
 */
function assertRuntimeLines(result: RunResult, needle: string): void {
  const lines = result.stderr.split("\n").filter((line) => line !== "");
  assert.ok(lines.length >= 1, "no message");
  for (const line of lines) {
    assert.ok(line.startsWith("phantun-runtime: "), `not ours: ${line}`);
    assert.ok(
      line.includes(needle),
      `${JSON.stringify(needle)} not in ${line}`,
    );
  }
}

// ---------------------------------------------------------------------------
// IFACE_FILE faults, before launch

Deno.test("an IFACE_FILE that is /dev/full or /dev/null is refused at once in one line naming it; FINDING 3: the refusal does not advise running with --allow-all", async () => {
  const fake = installFakePhantun();
  for (const device of ["/dev/full", "/dev/null"]) {
    const result = await assertHandoffRefused(fake, device, device);
    assert.ok(!result.stderr.includes("--allow-all"), result.stderr);
  }
  removeInstall(fake);
});

Deno.test("an IFACE_FILE that is a dangling link, or a link to a device or a directory, is refused and nothing is created or written through it", async () => {
  const fake = installFakePhantun();
  const link = `${fake.scratch}/iface`;
  const missing = `${fake.scratch}/would-be-created`;
  for (const target of [missing, "/dev/full", fake.record]) {
    Deno.symlinkSync(target, link);
    await assertHandoffRefused(fake, link, "is a symbolic link");
    Deno.removeSync(link);
  }
  assert.equal(readBytes(missing), null);
  assert.deepEqual([...Deno.readDirSync(fake.record)], []);
  removeInstall(fake);
});

testWhen(
  NEEDS_MOUNT,
  "an IFACE_FILE bind-mounted read-only (docker -v ...:ro) is refused with the reason and the file keeps its content",
  async () => {
    const fake = installFakePhantun();
    const file = `${fake.scratch}/iface`;
    Deno.writeTextFileSync(file, "old");
    await assertHandoffRefused(fake, file, "Read-only file system", {
      wrapper: inPrivateMount(
        `mount --bind "${file}" "${file}" && mount -o remount,bind,ro "${file}"`,
      ),
    });
    assert.equal(Deno.readTextFileSync(file), "old");
    removeInstall(fake);
  },
);

/**
 * Runs the supervisor as nobody (uid/gid 65534), from a copy nobody can read
 * wherever the checkout is.
 */
function asNobody(): { wrapper: string[]; main: string } {
  return {
    wrapper: ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"],
    main: readableMain(),
  };
}
const NEEDS_SETPRIV = !IS_ROOT
  ? "needs root to run the supervisor as another user"
  : missingCommand("setpriv");

/** Opens a fake install to other users: they may read and run, not write. */
function openToOthers(fake: FakeInstall): void {
  for (const dir of [installBase(fake), fake.dir, fake.scratch]) {
    Deno.chmodSync(dir, 0o755);
  }
}

testWhen(
  NEEDS_SETPRIV,
  "an IFACE_FILE the runtime's user may not write, create or reach is refused with 'Permission denied' and left as it was",
  async () => {
    const fake = installFakePhantun();
    openToOthers(fake);
    const file = `${fake.scratch}/iface`;
    Deno.writeTextFileSync(file, "old", { mode: 0o644 }); // root's
    await assertHandoffRefused(
      fake,
      file,
      "Permission denied: give the runtime's user (uid 65532 in the image) write access to the host file, e.g. chown 65532:65532 FILE, or use the root profile",
      asNobody(),
    );
    assert.equal(Deno.readTextFileSync(file), "old");

    const absent = `${fake.scratch}/absent`;
    await assertHandoffRefused(fake, absent, "Permission denied", asNobody());
    assert.equal(readBytes(absent), null);

    const hidden = `${fake.scratch}/private`;
    Deno.mkdirSync(hidden, { mode: 0o700 });
    Deno.writeTextFileSync(`${hidden}/iface`, "old");
    await assertHandoffRefused(
      fake,
      `${hidden}/iface`,
      "Permission denied",
      asNobody(),
    );
    assert.equal(Deno.readTextFileSync(`${hidden}/iface`), "old");
    removeInstall(fake);
  },
);

Deno.test("a binary outside the run grant is refused before IFACE_FILE is touched: a missing one is not created, an existing one keeps its content, inode and mtime", async () => {
  const fake = installFakePhantun();
  // Real, runnable fakes, in a directory the flags do not grant: only the
  // run grant stands between the supervisor and them.
  const ungranted = installFakePhantun();
  const file = `${fake.scratch}/iface`;
  for (const existing of [false, true]) {
    const assertUntouched = existing
      ? prepareUntouched(file)
      : () => assert.equal(readBytes(file), null, "IFACE_FILE created");
    const result = await runSupervisor(fake, {
      args: [`--phantun-dir=${ungranted.dir}`, "--"],
      env: {
        MODE: "client",
        FAKE_EXIT: "0",
        IFACE_FILE: file,
        IFACE_NAME: "ptun0",
      },
      flags: manifestFlags(fake.dir, file),
    });
    assertRefused(
      result,
      fake,
      `"${ungranted.dir}/phantun_client" is outside the run grant`,
    );
    assert.ok(nothingLaunched(ungranted), "the ungranted binary was launched");
    assertUntouched();
  }
  removeInstall(ungranted);
  removeInstall(fake);
});

// ---------------------------------------------------------------------------
// IFACE_FILE faults while phantun runs

/**
 * Starts a client with the handoff on (with `runAs`'s wrapper and entry point,
 * if given), waits until phantun runs, applies `fault` to the file, sends
 * SIGTERM and returns the result (10 s: no hang).
 */
async function faultWhileRunning(
  fake: FakeInstall,
  fault: (file: string) => void,
  runAs: { wrapper?: string[]; main?: string } = {},
): Promise<RunResult> {
  const file = `${fake.scratch}/iface`;
  const run = startSupervisor(fake, {
    args: [`--phantun-dir=${fake.dir}`, "--"],
    env: { MODE: "client", IFACE_FILE: file, IFACE_NAME: "ptun0" },
    flags: manifestFlags(fake.dir, file),
    ...runAs,
    timeoutMs: 10_000,
  });
  await waitFor("fake ready", () => readRecord(fake, "ready") !== null);
  assert.equal(Deno.readTextFileSync(file), "ptun0");
  fault(file);
  run.process.kill("SIGTERM");
  return await run.finished;
}

/** Replaces `file` at once (rename) with what `make` creates beside it. */
function replaceWith(file: string, make: (path: string) => void): void {
  make(`${file}.new`);
  Deno.renameSync(`${file}.new`, file);
}

Deno.test("an IFACE_FILE deleted while phantun runs is not recreated; shutdown is silent with phantun's status", async () => {
  const fake = installFakePhantun();
  const result = await faultWhileRunning(fake, (file) => Deno.removeSync(file));
  assert.equal(result.code, 143);
  assert.equal(result.stderr, "");
  assert.equal(readBytes(`${fake.scratch}/iface`), null);
  removeInstall(fake);
});

Deno.test("an IFACE_FILE replaced by a link while phantun runs is not emptied through it and stderr says why", async () => {
  const fake = installFakePhantun();
  const target = `${fake.scratch}/target`;
  Deno.writeTextFileSync(target, "keep");
  const result = await faultWhileRunning(
    fake,
    (file) => replaceWith(file, (path) => Deno.symlinkSync(target, path)),
  );
  assert.equal(result.code, 143);
  assertRuntimeLines(result, "not emptying IFACE_FILE");
  assertRuntimeLines(result, "symbolic link");
  assert.equal(Deno.readTextFileSync(target), "keep");
  removeInstall(fake);
});

testWhen(
  missingCommand("mkfifo"),
  "an IFACE_FILE replaced by a FIFO while phantun runs does not hang shutdown and stderr says why",
  async () => {
    const fake = installFakePhantun();
    const result = await faultWhileRunning(
      fake,
      (file) => replaceWith(file, (path) => output("mkfifo", path)),
    );
    assert.equal(result.code, 143);
    assertRuntimeLines(result, "is not a regular file");
    removeInstall(fake);
  },
);

testWhen(
  NEEDS_SETPRIV,
  "an IFACE_FILE made unwritable for the runtime's user while phantun runs: phantun's status is kept and stderr says the name could not be emptied",
  async () => {
    const fake = installFakePhantun();
    openToOthers(fake);
    Deno.chmodSync(fake.record, 0o777); // the fake runs as nobody too
    const file = `${fake.scratch}/iface`;
    Deno.writeTextFileSync(file, "");
    Deno.chownSync(file, 65534, 65534);
    const result = await faultWhileRunning(fake, (path) => {
      Deno.chownSync(path, 0, 0);
      Deno.chmodSync(path, 0o644);
    }, asNobody());
    assert.equal(result.code, 143);
    assertRuntimeLines(result, "cannot empty IFACE_FILE");
    assertRuntimeLines(result, "Permission denied");
    removeInstall(fake);
  },
);
