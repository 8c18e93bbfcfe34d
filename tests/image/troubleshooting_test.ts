/**
 * README "Troubleshooting" and "Logs": every message of the table is what the
 * image prints in that case, with the exit status the table gives; and
 * phantun's log level comes from RUST_LOG, read with the engine.
 */
import assert from "node:assert/strict";
import {
  cmd,
  device,
  DOCKER,
  engineExec,
  ENGINES,
  handoff,
  imageTest,
  lines,
  ok,
  PODMAN,
  readme,
  readmeOk,
  remove,
  ROOT,
  startServer,
  tempDir,
  tunNode,
  waitForLink,
} from "./harness.ts";

/** README block logs. */
const LOGS = String
  .raw`docker run -d --name phantun-logs --network host --cap-add NET_ADMIN --device /dev/net/tun \
  --security-opt seccomp=/etc/phantun-runtime/seccomp.json \
  -e RUST_LOG=debug -e MODE=server phantun-runtime -- --local 4567 --remote 127.0.0.1:1234 --tun ptun0
docker logs phantun-logs
docker rm -f phantun-logs`;

/** The table's rows: case -> { message, exit }. */
function table(): Map<string, { message: string; exit: number }> {
  const readme = Deno.readTextFileSync(`${ROOT}README.md`);
  const section = readme.slice(readme.indexOf("## Troubleshooting"))
    .split("\n## ")[0];
  const rows = new Map<string, { message: string; exit: number }>();
  for (const line of section.split("\n")) {
    const cells = line.split(" | ").map((cell) =>
      cell.replace(/^\| ?|\s+$/g, "")
    );
    if (cells.length < 4 || !/^\d+$/.test(cells[2])) continue;
    const message = cells[1].match(/^(`+) ?(.*?) ?\1$/)?.[2];
    assert.ok(message, `no message in: ${line}`);
    rows.set(cells[0], { message, exit: Number(cells[2]) });
  }
  return rows;
}

/** phantun's arguments in every run of a server here. */
const PHANTUN_ARGS = cmd`--local 4567 --remote 127.0.0.1:1234 --tun ptun0`;

// Docker's: under rootful Podman the non-root profile holds NET_ADMIN itself
// (deploy/README.md "Podman"), so the capability rows read differently there.
{
  const engine = DOCKER;
  imageTest(
    `${engine.name}: every case of README's Troubleshooting table prints the table's message and exits with its status`,
    async () => {
      const tun = await tunNode();
      const locked = await tunNode(200, "0600");
      // No driver behind it: what the host gives without `tun`.
      const dead = await tunNode(199);
      const missing = `${tempDir()}/phantun/server.iface`; // a fresh /run
      const rootsFile = `${tempDir()}/iface`;
      await ok(cmd`touch ${rootsFile}`);
      const cap = cmd`--cap-add NET_ADMIN`;
      const dev = (node: string) => cmd`--device ${node}:/dev/net/tun`;
      const mode = cmd`-e MODE=server`;
      const base = [...cap, ...dev(tun)];
      /** The server's run with `flags` before the image and `args` after it. */
      const run = (flags: string[], args = ["--", ...PHANTUN_ARGS]) =>
        engineExec(
          engine,
          cmd`run --rm --network none ${flags} ${engine.image} ${args}`,
        );
      const cases: Record<string, string[]> = {
        "no TUN device": [...cap, ...mode],
        "no NET_ADMIN": [...dev(tun), ...mode],
        "non-root profile under no-new-privileges": [
          ...cap,
          ...cmd`--security-opt no-new-privileges`,
          ...dev(tun),
          ...mode,
        ],
        "`/dev/net/tun` not usable by uid 65532": [
          ...cap,
          ...dev(locked),
          ...mode,
        ],
        "`tun` module not loaded": [...cap, ...dev(dead), ...mode],
        "handoff file missing after a reboot": [
          ...base,
          ...handoff(missing),
          ...mode,
        ],
        "handoff file not writable": [...base, ...handoff(rootsFile), ...mode],
        "MODE unset": base,
        "MODE wrong": [...base, "-e", "MODE=Server"],
      };
      const rows = table();
      const outcomes = new Map<string, { stderr: string; code: number }>();
      for (const [name, flags] of Object.entries(cases)) {
        outcomes.set(name, await run(flags));
      }
      outcomes.set(
        "a forgotten `--`",
        await run(
          [...base, ...mode],
          cmd`--local 4567 --remote 127.0.0.1:1234`,
        ),
      );
      outcomes.set(
        "an argument phantun rejects",
        await run([...base, ...mode], cmd`-- --local 4567 --remote`),
      );
      assert.deepEqual([...outcomes.keys()].sort(), [...rows.keys()].sort());
      for (const [name, { stderr, code }] of outcomes) {
        const row = rows.get(name)!;
        assert.ok(
          stderr.includes(row.message),
          `${name}: "${row.message}" not in: ${stderr}`,
        );
        assert.equal(code, row.exit, `${name}: ${stderr}`);
      }
      // The engine made a directory for the missing file, as after a reboot.
      assert.ok(Deno.statSync(missing).isDirectory);
    },
    engine,
  );
}

imageTest(
  "the README's log commands: phantun logs at RUST_LOG's level, read with docker logs and podman logs; without RUST_LOG it prints nothing",
  async () => {
    const tun = await tunNode();
    const name = "phantun-runtime-test-logs";
    const replacements = [
      ["--network host", "--network none"] as const,
      device(tun),
      [/phantun-logs/g, name] as const,
    ];
    for (const engine of ENGINES) {
      // Under Podman, `docker` reads `podman` (the README says so).
      await remove(engine, name);
      try {
        const run = await readme(engine, lines(LOGS, 0, 3), replacements);
        assert.equal(run.code, 0, run.stderr);
        await waitForLink(engine, name, "ptun0");
        const logs = await readme(engine, lines(LOGS, 3, 4), replacements);
        assert.match(
          logs.stdout + logs.stderr,
          /INFO +server > Created TUN device ptun0/,
        );
        await readmeOk(engine, lines(LOGS, 4), replacements);
        const gone = await engineExec(engine, cmd`inspect ${name}`);
        assert.notEqual(gone.code, 0, "the README's rm removed the container");
      } finally {
        await remove(engine, name);
      }
    }
    try {
      await startServer(
        DOCKER,
        name,
        cmd`--network none --cap-add NET_ADMIN --device ${tun}:/dev/net/tun`,
      );
      await waitForLink(DOCKER, name, "ptun0");
      const { stdout, stderr } = await engineExec(DOCKER, cmd`logs ${name}`);
      assert.equal(stdout + stderr, "");
    } finally {
      await remove(DOCKER, name);
    }
  },
  PODMAN,
);
