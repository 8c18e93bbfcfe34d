/**
 * Process tests: the real main.ts under the contract's manifest flags, against
 * the fake phantun of helpers.ts.
 */
import assert from "node:assert/strict";
import {
  assertHandoffRefused,
  assertRuntimeError,
  fakeTest,
  inPrivateMount,
  installFakePhantun,
  killFake,
  manifestFlags,
  missingCommand,
  NEEDS_MOUNT,
  nothingLaunched,
  output,
  readRecord,
  recordedArgv,
  recordedEnv,
  runSupervisor,
  startSupervisor,
  testWhen,
  waitFor,
} from "./helpers.ts";

/** A client run whose fake phantun exits 0 once it has recorded what it saw. */
const CLIENT = { MODE: "client", FAKE_EXIT: "0" };
/** A client run whose fake phantun runs until a signal ends it. */
const WAITING = { MODE: "client" };

fakeTest(
  "every argument after the first -- reaches phantun byte-for-byte, in order",
  async (fake) => {
    const tail = [
      "",
      " ",
      "  two  spaces ",
      "new\nline",
      "tab\t",
      "ünïcødé ✓ 名字",
      "--",
      "-h",
      "--help",
      "'\"$HOME`x`\\",
      "--phantun-dir=/x",
    ];
    const result = await runSupervisor(fake, {
      args: [`--phantun-dir=${fake.dir}`, "--", ...tail],
      env: CLIENT,
    });
    assert.equal(result.code, 0);
    assert.deepEqual(recordedArgv(fake), tail);
  },
);

fakeTest(
  "thousands of arguments and arguments of 100 KB reach phantun unchanged",
  async (fake) => {
    const many = Array.from({ length: 5000 }, (_, i) => `arg-${i}`);
    const big = ["a".repeat(100_000), "ü".repeat(50_000)];
    const tail = [...many, ...big];
    const result = await runSupervisor(fake, {
      args: [`--phantun-dir=${fake.dir}`, "--", ...tail],
      env: CLIENT,
    });
    assert.equal(result.code, 0);
    assert.deepEqual(recordedArgv(fake), tail);
  },
);

Deno.test("MODE=client starts phantun_client and MODE=server starts phantun_server", async () => {
  for (const mode of ["client", "server"]) {
    const fake = installFakePhantun();
    const result = await runSupervisor(fake, {
      args: [`--phantun-dir=${fake.dir}`, "--"],
      env: { MODE: mode, FAKE_EXIT: "0" },
    });
    assert.equal(result.code, 0);
    assert.equal(readRecord(fake, "program"), `${fake.dir}/phantun_${mode}`);
  }
});

Deno.test("MODE unset, empty or not exactly client/server is refused naming MODE, nothing launched", async () => {
  for (const mode of [undefined, "", "Client", "server ", "tcp"]) {
    const fake = installFakePhantun();
    const env: Record<string, string> = mode === undefined
      ? {}
      : { MODE: mode };
    const result = await runSupervisor(fake, {
      args: [`--phantun-dir=${fake.dir}`, "--"],
      env,
    });
    assert.equal(result.code, 2, `MODE=${mode}`);
    assertRuntimeError(result, "MODE");
    assert.ok(nothingLaunched(fake));
  }
});

fakeTest(
  "--help prints usage naming MODE, IFACE_NAME, IFACE_FILE and -- on stdout and exits 0 without MODE",
  async (fake) => {
    const result = await runSupervisor(fake, { args: ["--help"] });
    assert.equal(result.code, 0);
    assert.equal(result.stderr, "");
    for (const word of ["MODE", "IFACE_NAME", "IFACE_FILE", "--"]) {
      assert.ok(result.stdout.includes(word), word);
    }
    assert.ok(nothingLaunched(fake));
  },
);

fakeTest(
  "--version prints the runtime's version from deno.json and exits 0",
  async (fake) => {
    const { version } = JSON.parse(
      Deno.readTextFileSync(new URL("../deno.json", import.meta.url)),
    );
    const result = await runSupervisor(fake, { args: ["--version"] });
    assert.equal(result.code, 0);
    assert.equal(result.stdout, `phantun-runtime ${version}\n`);
  },
);

Deno.test("options before -- other than the runtime's own, or no --, are refused with a usage hint", async () => {
  for (
    const args of [[], ["--local", "1234"], ["--local", "1234", "--"], [
      "-h",
      "--",
    ], ["x", "--"]]
  ) {
    const fake = installFakePhantun();
    const result = await runSupervisor(fake, { args, env: CLIENT });
    assert.equal(result.code, 2, JSON.stringify(args));
    assertRuntimeError(result, "--help");
    assert.equal(result.stdout, "");
    assert.ok(nothingLaunched(fake));
  }
});

fakeTest(
  "without --phantun-dir the binaries are looked up in /usr/local/bin",
  async (fake) => {
    const result = await runSupervisor(fake, { args: ["--"], env: CLIENT });
    assert.equal(result.code, 2);
    assertRuntimeError(
      result,
      '"/usr/local/bin/phantun_client" is outside the run grant',
    );
    assert.ok(nothingLaunched(fake));
  },
);

fakeTest(
  "a binary outside the run grant is refused naming the granted programs, nothing launched",
  async (fake) => {
    const result = await runSupervisor(fake, {
      args: [`--phantun-dir=${fake.dir}`, "--"],
      env: CLIENT,
      flags: manifestFlags("/usr/local/bin"),
    });
    assert.equal(result.code, 2);
    assertRuntimeError(
      result,
      '"/usr/local/bin/phantun_client", "/usr/local/bin/phantun_server"',
    );
    assert.ok(nothingLaunched(fake));
  },
);

fakeTest(
  "the whole environment reaches phantun unchanged; IFACE_NAME alone touches no file",
  async (fake) => {
    const env = {
      ...CLIENT,
      RUST_LOG: "info,fake_tcp=debug",
      ODD: " spaced = value\nnext ",
      IFACE_NAME: "ptun0",
    };
    const result = await runSupervisor(fake, {
      args: [`--phantun-dir=${fake.dir}`, "--"],
      env,
    });
    assert.equal(result.code, 0);
    const seen = recordedEnv(fake);
    for (const [key, value] of Object.entries(env)) {
      assert.equal(seen.get(key), value, key);
    }
    assert.equal(readRecord(fake, "iface"), null);
    assert.deepEqual([...Deno.readDirSync(fake.scratch)], []);
  },
);

fakeTest(
  "stdin, stdout and stderr are inherited, not piped through the supervisor",
  async (fake) => {
    const run = startSupervisor(fake, {
      args: [`--phantun-dir=${fake.dir}`, "--"],
      env: WAITING,
    });
    await waitFor("fake ready", () => readRecord(fake, "ready") !== null);
    const fds = (pid: string | number) =>
      output(
        "readlink",
        `/proc/${pid}/fd/0`,
        `/proc/${pid}/fd/1`,
        `/proc/${pid}/fd/2`,
      );
    assert.equal(fds(readRecord(fake, "pid")!.trim()), fds(run.process.pid));
    run.process.kill("SIGTERM");
    assert.equal((await run.finished).code, 143);
  },
);

fakeTest(
  "IFACE_FILE holds exactly IFACE_NAME, no newline, written in place before phantun starts and emptied after",
  async (fake) => {
    const file = `${fake.scratch}/iface`;
    Deno.writeTextFileSync(file, "a-much-longer-old-interface-name\n");
    const inode = Deno.statSync(file).ino;
    const result = await runSupervisor(fake, {
      args: [`--phantun-dir=${fake.dir}`, "--"],
      env: { ...CLIENT, IFACE_FILE: file, IFACE_NAME: "ptun0" },
      flags: manifestFlags(fake.dir, file),
    });
    assert.equal(result.code, 0);
    assert.equal(readRecord(fake, "iface"), "ptun0");
    assert.equal(Deno.readTextFileSync(file), "");
    assert.equal(Deno.statSync(file).ino, inode);
  },
);

fakeTest(
  "a missing IFACE_FILE is created when its directory exists",
  async (fake) => {
    const file = `${fake.scratch}/new-iface`;
    const result = await runSupervisor(fake, {
      args: [`--phantun-dir=${fake.dir}`, "--"],
      env: { ...CLIENT, IFACE_FILE: file, IFACE_NAME: "tun-x" },
      flags: manifestFlags(fake.dir, file),
    });
    assert.equal(result.code, 0);
    assert.equal(readRecord(fake, "iface"), "tun-x");
    assert.equal(Deno.readTextFileSync(file), "");
  },
);

Deno.test("with IFACE_FILE, a missing or invalid IFACE_NAME is refused naming IFACE_NAME, file untouched", async () => {
  for (
    const name of [
      undefined,
      "",
      ".",
      "..",
      "a/b",
      "a:b",
      "a b",
      "x".repeat(16),
    ]
  ) {
    const fake = installFakePhantun();
    const file = `${fake.scratch}/iface`;
    Deno.writeTextFileSync(file, "old");
    const env: Record<string, string> = { ...CLIENT, IFACE_FILE: file };
    if (name !== undefined) env.IFACE_NAME = name;
    const result = await runSupervisor(fake, {
      args: [`--phantun-dir=${fake.dir}`, "--"],
      env,
      flags: manifestFlags(fake.dir, file),
    });
    assert.equal(result.code, 2, JSON.stringify(name));
    assertRuntimeError(result, "IFACE_NAME");
    assert.equal(Deno.readTextFileSync(file), "old");
    assert.ok(nothingLaunched(fake));
  }
});

fakeTest(
  "an IFACE_FILE that is a directory or has no parent directory is refused with the reason; for a directory, the likely cause and the fix",
  async (fake) => {
    await assertHandoffRefused(
      fake,
      fake.scratch,
      'is a directory: the host file did not exist when the container started, so the engine made a directory in its place: remove that directory on the host and create the file (README "After a reboot")',
    );
    await assertHandoffRefused(
      installFakePhantun(),
      `${fake.scratch}/no/such/iface`,
      "No such file or directory",
    );
  },
);

fakeTest(
  "an IFACE_FILE that is a symbolic link is refused and its target untouched",
  async (fake) => {
    const target = `${fake.scratch}/target`;
    const link = `${fake.scratch}/iface`;
    Deno.writeTextFileSync(target, "keep");
    Deno.symlinkSync(target, link);
    await assertHandoffRefused(fake, link, "is a symbolic link");
    assert.equal(Deno.readTextFileSync(target), "keep");
  },
);

testWhen(
  missingCommand("mkfifo"),
  "an IFACE_FILE that is a FIFO is refused at once instead of blocking",
  async () => {
    const fake = installFakePhantun();
    const fifo = `${fake.scratch}/iface`;
    output("mkfifo", fifo);
    await assertHandoffRefused(fake, fifo, "is not a regular file");
  },
);

fakeTest(
  "an IFACE_FILE outside the write grant is refused naming the granted path",
  async (fake) => {
    const file = `${fake.scratch}/iface`;
    Deno.writeTextFileSync(file, "old");
    await assertHandoffRefused(fake, file, '"/run/phantun/iface"', {
      grant: `${fake.scratch}/other`,
    });
    assert.equal(Deno.readTextFileSync(file), "old");
  },
);

fakeTest(
  "an IFACE_FILE inside the write grant but outside the read grant is refused naming the read grant",
  async (fake) => {
    const file = `${fake.scratch}/iface`;
    Deno.writeTextFileSync(file, "old");
    const result = await runSupervisor(fake, {
      args: [`--phantun-dir=${fake.dir}`, "--"],
      env: { ...CLIENT, IFACE_FILE: file, IFACE_NAME: "ptun0" },
      flags: [...manifestFlags(fake.dir), `--allow-write=${file}`],
    });
    assert.equal(result.code, 2);
    assertRuntimeError(result, "is outside the read grant");
    assert.equal(Deno.readTextFileSync(file), "old");
    assert.ok(nothingLaunched(fake));
  },
);

fakeTest(
  "a refusal stays one line when IFACE_FILE holds a newline",
  async (fake) => {
    await assertHandoffRefused(
      fake,
      `${fake.scratch}/no\nsuch/iface`,
      "No such file or directory",
    );
  },
);

testWhen(
  NEEDS_MOUNT,
  "an IFACE_FILE on a read-only or a full filesystem is refused with the reason",
  async () => {
    const fake = installFakePhantun();
    const mnt = `${fake.scratch}/mnt`;
    Deno.mkdirSync(mnt);
    const ro =
      `mount -t tmpfs -o size=64k tmpfs ${mnt} && echo old > ${mnt}/iface && mount -o remount,ro ${mnt}`;
    await assertHandoffRefused(fake, `${mnt}/iface`, "Read-only file system", {
      wrapper: inPrivateMount(ro),
    });
    const full =
      `mount -t tmpfs -o size=4k tmpfs ${mnt} && (head -c 8192 /dev/zero > ${mnt}/fill 2>/dev/null || true)`;
    await assertHandoffRefused(
      installFakePhantun(),
      `${mnt}/iface`,
      "No space left on device",
      { wrapper: inPrivateMount(full) },
    );
  },
);

fakeTest(
  "each of SIGHUP, SIGQUIT, SIGUSR2 is forwarded every time it arrives while IFACE_FILE keeps the name; SIGUSR1 never is; SIGTERM then empties the file and exits 143",
  async (fake) => {
    const file = `${fake.scratch}/iface`;
    const run = startSupervisor(fake, {
      args: [`--phantun-dir=${fake.dir}`, "--"],
      env: { ...WAITING, IFACE_FILE: file, IFACE_NAME: "ptun0" },
      flags: manifestFlags(fake.dir, file),
    });
    await waitFor("fake ready", () => readRecord(fake, "ready") !== null);
    assert.equal(Deno.readTextFileSync(file), "ptun0");
    const expected: string[] = [];
    for (const round of [1, 2, 3]) {
      for (
        const signal of ["SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"] as const
      ) {
        run.process.kill(signal);
        if (signal === "SIGUSR1") continue;
        expected.push(signal.slice(3));
        // In order: a forwarded SIGUSR1 would show before this one. Recorded
        // by phantun, so the supervisor has handled it: a shutdown would have
        // emptied the file before passing the signal on.
        await waitFor(
          `${signal} #${round}`,
          () => readRecord(fake, "signals") === expected.join("\n") + "\n",
        );
        assert.equal(
          Deno.readTextFileSync(file),
          "ptun0",
          `IFACE_FILE after ${signal} #${round}`,
        );
      }
    }
    run.process.kill("SIGTERM");
    const result = await run.finished;
    assert.equal(result.code, 143, result.stderr);
    assert.equal(result.stderr, "");
    assert.equal(Deno.readTextFileSync(file), "");
    assert.equal(
      readRecord(fake, "signals"),
      [...expected, "TERM"].join("\n") + "\n",
    );
  },
);

for (const [signal, code] of [["SIGTERM", 143], ["SIGINT", 130]] as const) {
  fakeTest(
    `${signal} empties IFACE_FILE as shutdown begins, so a later SIGKILL leaves no stale name`,
    async (fake) => {
      const file = `${fake.scratch}/iface`;
      const run = startSupervisor(fake, {
        args: [`--phantun-dir=${fake.dir}`, "--"],
        env: {
          ...WAITING,
          IFACE_FILE: file,
          IFACE_NAME: "ptun0",
          FAKE_IGNORE_TERM: "1",
        },
        flags: manifestFlags(fake.dir, file),
      });
      await waitFor("fake ready", () => readRecord(fake, "ready") !== null);
      assert.equal(Deno.readTextFileSync(file), "ptun0");
      run.process.kill(signal);
      await waitFor("file emptied", () => Deno.readTextFileSync(file) === "");
      await waitFor(
        "signal forwarded",
        () => readRecord(fake, "signals") === `${signal.slice(3)}\n`,
      );
      run.process.kill(signal);
      await waitFor(
        "forwarded again",
        () => readRecord(fake, "signals") === `${signal.slice(3)}\n`.repeat(2),
      );
      run.process.kill("SIGKILL");
      assert.equal((await run.process.status).signal, "SIGKILL");
      assert.equal(Deno.readTextFileSync(file), "");
      killFake(fake); // orphaned by the SIGKILL; it holds the output pipes
      await run.finished;
    },
  );

  fakeTest(
    `${signal} to the supervisor kills phantun and exits ${code} (128+N)`,
    async (fake) => {
      const run = startSupervisor(fake, {
        args: [`--phantun-dir=${fake.dir}`, "--"],
        env: WAITING,
      });
      await waitFor("fake ready", () => readRecord(fake, "ready") !== null);
      run.process.kill(signal);
      const result = await run.finished;
      assert.equal(result.code, code);
      assert.equal(result.signal, null);
      assert.equal(result.stderr, "");
    },
  );
}

/** True once `pid` catches all five forwarded signals (bits of SigCgt in /proc). */
function catchesForwardedSignals(pid: number): boolean {
  const mask = [1, 2, 3, 12, 15].reduce(
    (bits, n) => bits | (1n << BigInt(n - 1)),
    0n,
  );
  const caught = output("cat", `/proc/${pid}/status`).match(
    /SigCgt:\s*([0-9a-f]+)/,
  )!;
  return (BigInt(`0x${caught[1]}`) & mask) === mask;
}

testWhen(
  missingCommand("strace"),
  "a signal that arrives before phantun exists is forwarded once it starts",
  async () => {
    const fake = installFakePhantun();
    const file = `${fake.scratch}/iface`;
    // strace holds the open of IFACE_FILE for 1.5 s: listeners are installed, phantun is not yet spawned.
    const hold = [
      "strace",
      "-f",
      "-qq",
      "-o",
      "/dev/null",
      "-P",
      file,
      "-e",
      "trace=openat",
      "-e",
      "inject=openat:delay_enter=1500000",
    ];
    const run = startSupervisor(fake, {
      args: [`--phantun-dir=${fake.dir}`, "--"],
      env: { ...WAITING, IFACE_FILE: file, IFACE_NAME: "ptun0" },
      flags: manifestFlags(fake.dir, file),
      wrapper: hold,
    });
    // strace forks short-lived probes of its own first: wait for the deno child.
    let supervisor = 0;
    await waitFor("deno under strace", () => {
      const found = output(
        "sh",
        "-c",
        `pgrep -P ${run.process.pid} -x deno || true`,
      ).trim();
      supervisor = Number(found);
      return found !== "";
    });
    try {
      await waitFor(
        "listeners installed",
        () => catchesForwardedSignals(supervisor),
      );
      assert.ok(nothingLaunched(fake));
      Deno.kill(supervisor, "SIGTERM");
      const result = await run.finished;
      assert.equal(result.code, 143);
    } finally {
      // strace detaches when it dies; never leave its tracee behind.
      try {
        Deno.kill(supervisor, "SIGKILL");
      } catch {
        // already gone
      }
    }
    assert.notEqual(readRecord(fake, "pid"), null);
    assert.equal(Deno.readTextFileSync(file), "");
  },
);
