/**
 * Run profiles, under Docker and under Podman: non-root with phantun's file
 * capability, root under no-new-privileges, what a missing capability or
 * device gives, stop, --read-only, the handoff through a bind-mounted file,
 * and SIGUSR1, which must never open a debugger port.
 */
import assert from "node:assert/strict";
import {
  capEff,
  cmd,
  DENO_BIN,
  device,
  DOCKER,
  type Engine,
  engineExec,
  engineOk,
  ENGINES,
  HANDOFF,
  handoff,
  IFACE,
  ifaceFile,
  imageTest,
  inspect,
  listeners,
  NAMES,
  NET_ADMIN,
  ok,
  pidOf,
  PODMAN,
  PREFIX,
  processChain,
  readmeOk,
  remove,
  ROOT_PROFILE,
  server,
  startServer,
  tempDir,
  tunNode,
  VERSION,
  waitForLink,
} from "./harness.ts";

/** Prints every path outside /dev, /proc and /sys (and no symlink) that the process can write. */
const WRITABLE_PROBE = `const found = [];
const walk = (dir) => {
  for (const entry of Deno.readDirSync(dir)) {
    const path = dir === "/" ? "/" + entry.name : dir + "/" + entry.name;
    if (entry.isSymlink || ["/dev", "/proc", "/sys"].includes(path)) continue;
    try {
      if (entry.isDirectory) {
        Deno.openSync(path + "/.probe", { write: true, createNew: true }).close();
        Deno.removeSync(path + "/.probe");
      } else {
        Deno.openSync(path, { write: true }).close();
      }
      found.push(path);
    } catch { /* not writable */ }
    if (entry.isDirectory) walk(path);
  }
};
walk("/");
console.log(JSON.stringify(found));`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Stops the container and asserts the contract's end: status 143 (phantun
 * died of SIGTERM) and the bind-mounted IFACE file emptied. Returns how long
 * the stop took, in ms.
 */
async function assertStop(
  engine: Engine,
  name: string,
  file: string,
): Promise<number> {
  const started = Date.now();
  await engineOk(engine, cmd`stop ${name}`);
  const took = Date.now() - started;
  assert.equal(await inspect(engine, "{{.State.ExitCode}}", name), "143");
  assert.equal(Deno.readTextFileSync(file), "");
  return took;
}

for (const engine of ENGINES) {
  const e = engine.name;

  imageTest(
    `${e}: non-root profile: phantun creates its TUN with NET_ADMIN from its file capability, the supervisor holding ${
      engine.ambient ? "the ambient NET_ADMIN" : "none"
    }, also with --cap-drop ALL and --read-only`,
    async () => {
      const tun = await tunNode();
      const name = `${PREFIX}profile`;
      try {
        for (
          const profile of [
            cmd`--cap-add NET_ADMIN`,
            cmd`--cap-drop ALL --cap-add NET_ADMIN ${
              engine.readOnly.split(" ")
            }`,
          ]
        ) {
          await startServer(
            engine,
            name,
            cmd`${profile} --device ${tun}:/dev/net/tun`,
          );
          await waitForLink(engine, name, "ptun0");
          const [tini, deno, phantun] = await processChain(engine, name);
          assert.equal(capEff(tini), engine.ambient, "tini");
          assert.equal(capEff(deno), engine.ambient, "the supervisor");
          assert.match(deno, /^Name:\s+deno$/m);
          assert.equal(capEff(phantun), NET_ADMIN, "phantun");
          assert.match(phantun, /^Uid:\s+65532\s/m);
        }
      } finally {
        await remove(engine, name);
      }
    },
    engine,
  );

  imageTest(
    `${e}: the README's root profile works under no-new-privileges${
      engine.ambient
        ? ""
        : ", where the non-root profile fails with phantun's EPERM"
    }`,
    async () => {
      const tun = await tunNode();
      const name = `${PREFIX}server`;
      await remove(engine, name);
      try {
        // A network namespace of its own instead of the host's.
        await readmeOk(engine, ROOT_PROFILE, [
          ["--network host", "--network none"],
          device(tun),
          NAMES,
        ]);
        await waitForLink(engine, name, "ptun0");
        const [, deno, phantun] = await processChain(engine, name);
        assert.equal(capEff(deno), NET_ADMIN, "the supervisor, as root");
        assert.equal(capEff(phantun), NET_ADMIN, "phantun");
      } finally {
        await remove(engine, name);
      }
      // With ambient capabilities (Podman) no-new-privileges takes nothing away.
      if (engine.ambient) return;
      const refused = await engineExec(
        engine,
        cmd`run --rm ${
          server(
            engine,
            cmd`--cap-add NET_ADMIN --security-opt no-new-privileges --device ${tun}:/dev/net/tun`,
          )
        }`,
      );
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /EPERM/);
    },
    engine,
  );

  imageTest(
    `${e}: without NET_ADMIN phantun cannot be started (126); without the TUN device phantun panics (101)`,
    async () => {
      const tun = await tunNode();
      const noCap = await engineExec(
        engine,
        cmd`run --rm ${server(engine, cmd`--device ${tun}:/dev/net/tun`)}`,
      );
      assert.equal(noCap.code, 126, noCap.stderr);
      assert.match(
        noCap.stderr,
        /cannot start "\/usr\/local\/bin\/phantun_server": Operation not permitted$/m,
      );
      const noDevice = await engineExec(
        engine,
        cmd`run --rm ${server(engine, cmd`--cap-add NET_ADMIN`)}`,
      );
      assert.equal(noDevice.code, 101, noDevice.stderr); // phantun's panic
      assert.match(noDevice.stderr, /No such file or directory/);
    },
    engine,
  );

  imageTest(
    `${e}: stop right after run returns promptly with 143 and leaves the bind-mounted IFACE_FILE empty`,
    async () => {
      const tun = await tunNode();
      const file = await ifaceFile();
      const name = `${PREFIX}stop`;
      const flags = cmd`--cap-add NET_ADMIN --device ${tun}:/dev/net/tun ${
        handoff(file)
      }`;
      try {
        for (let round = 0; round < 3; round++) {
          await startServer(engine, name, flags);
          const took = await assertStop(engine, name, file);
          assert.ok(took < 5_000, `stop took ${took} ms`);
        }
        await startServer(engine, name, flags);
        await waitForLink(engine, name, "ptun0");
        assert.equal(Deno.readTextFileSync(file), "ptun0");
        await assertStop(engine, name, file);
      } finally {
        await remove(engine, name);
      }
    },
    engine,
  );

  imageTest(
    `${e}: under --read-only the IFACE file is the only path outside /dev, /proc and /sys that the default user or root can write`,
    async () => {
      const file = await ifaceFile();
      for (const user of ["65532", "0"]) {
        const found = await engineOk(
          engine,
          cmd`run --rm ${
            engine.readOnly.split(" ")
          } --user ${user} -v ${file}:${IFACE} --entrypoint ${DENO_BIN} ${engine.image} eval ${WRITABLE_PROBE}`,
        );
        assert.deepEqual(JSON.parse(found), [IFACE], `user ${user}`);
      }
    },
    engine,
  );

  imageTest(
    `${e}: the README's handoff example, as written, hands ptun0 to the host file at /run/phantun/iface and empties it on stop`,
    async () => {
      const tun = await tunNode();
      const cwd = tempDir();
      const name = `${PREFIX}server`;
      await remove(engine, name);
      try {
        await readmeOk(engine, HANDOFF, [
          ["--network host", "--network none"],
          device(tun),
          NAMES,
        ], { cwd });
        await waitForLink(engine, name, "ptun0");
        assert.equal(Deno.readTextFileSync(`${cwd}/state/iface`), "ptun0");
        await assertStop(engine, name, `${cwd}/state/iface`);
      } finally {
        await remove(engine, name);
      }
    },
    engine,
  );

  imageTest(
    `${e}: a host IFACE file the image's user cannot write is refused in one line that says how to fix it`,
    async () => {
      const tun = await tunNode();
      const file = `${tempDir()}/iface`;
      await ok(cmd`touch ${file}`); // root's, 0644, as a newcomer makes it
      const result = await engineExec(
        engine,
        cmd`run --rm ${
          server(
            engine,
            cmd`--cap-add NET_ADMIN --device ${tun}:/dev/net/tun ${
              handoff(file)
            }`,
          )
        }`,
      );
      assert.equal(result.code, 2, result.stderr);
      assert.equal(
        result.stderr.split("\n").filter((line) => line !== "").at(-1),
        `phantun-runtime: cannot write IFACE_FILE "${IFACE}": Permission denied: give the runtime's user (uid 65532 in the image) write access to the host file, e.g. chown 65532:65532 FILE, or use the root profile (--user 0)`,
      );
      assert.equal(Deno.readTextFileSync(file), "");
    },
    engine,
  );

  imageTest(
    `${e}: SIGUSR1 to the container or to the supervisor, early and late, opens no listening socket and is not forwarded; stop still gives 143`,
    async () => {
      const tun = await tunNode();
      const file = await ifaceFile();
      const name = `${PREFIX}usr1`;
      try {
        // --network none: a namespace of the container's own, loopback up.
        await startServer(
          engine,
          name,
          cmd`--network none --cap-add NET_ADMIN --device ${tun}:/dev/net/tun ${
            handoff(file)
          }`,
        );
        const started = Date.now();
        // Early: before Deno's own listener (0.5 s), through tini.
        await sleep(150);
        await engineOk(engine, cmd`kill -s USR1 ${name}`);
        await waitForLink(engine, name, "ptun0");
        const [, deno, phantun] = await processChain(engine, name);
        assert.deepEqual(listeners(pidOf(deno)), [], "early");
        // Late, to the container and to the supervisor itself.
        for (const at of [1_000, 2_500]) {
          await sleep(Math.max(0, started + at - Date.now()));
          await engineOk(engine, cmd`kill -s USR1 ${name}`);
          Deno.kill(pidOf(deno), "SIGUSR1");
          await sleep(700);
          assert.deepEqual(listeners(pidOf(deno)), [], `at ${at} ms`);
        }
        // phantun inherits the block: a forwarded SIGUSR1 would be pending there.
        assert.equal(await inspect(engine, "{{.State.Running}}", name), "true");
        const pending = await ok(cmd`cat /proc/${pidOf(phantun)}/status`);
        assert.match(pending, /^ShdPnd:\s+0+$/m, "forwarded to phantun");
        assert.equal(Deno.readTextFileSync(file), "ptun0");
        await assertStop(engine, name, file);
      } finally {
        await remove(engine, name);
      }
    },
    engine,
  );
}

/** deploy/README.md block podman-load. */
const PODMAN_LOAD = String.raw`docker save phantun-runtime | podman load
podman run --rm localhost/phantun-runtime --version`;

imageTest(
  "podman: the README's commands load Docker's image into Podman, which runs it",
  async () => {
    const output = await readmeOk(
      DOCKER,
      PODMAN_LOAD,
      [["localhost/phantun-runtime", PODMAN.image]],
      { env: PODMAN.env },
    );
    assert.equal(output.split("\n").at(-1), `phantun-runtime ${VERSION}`);
  },
  PODMAN,
);

imageTest(
  "docker: the image's Deno, started without env's block, still opens its inspector on SIGUSR1 (if this fails, Deno changed: revisit DESIGN.md, Signals)",
  async () => {
    const name = `${PREFIX}unblocked`;
    try {
      await remove(DOCKER, name);
      await engineOk(
        DOCKER,
        cmd`run -d --name ${name} --network none --entrypoint ${DENO_BIN} ${DOCKER.image} eval ${"setInterval(() => {}, 60_000)"}`,
      );
      await sleep(1_000);
      await engineOk(DOCKER, cmd`kill -s USR1 ${name}`);
      const pid = Number(await inspect(DOCKER, "{{.State.Pid}}", name));
      const deadline = Date.now() + 5_000;
      while (!(listeners(pid)).some((l) => l.includes(":240D "))) {
        assert.ok(Date.now() < deadline, "no inspector on port 9229");
        await sleep(100);
      }
    } finally {
      await remove(DOCKER, name);
    }
  },
);
