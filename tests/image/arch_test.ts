/**
 * Architectures: the README's buildx build for linux/arm64 (phantun
 * cross-compiled, only the final stage arm64), checked file by file and run
 * under QEMU user emulation, with UDP echo through an arm64 phantun_server.
 */
import assert from "node:assert/strict";
import {
  ARM64,
  ARM64_TAG,
  assertEcho,
  cmd,
  device,
  DOCKER,
  elfFiles,
  engineExec,
  ensureArm64,
  exportImage,
  IMAGE,
  imageTest,
  inspect,
  ipOf,
  lines,
  missingArm64,
  ok,
  PREFIX,
  readmeBuild,
  readmeOk,
  remove,
  tunNode,
  VERSION,
  waitForLink,
  withHosts,
} from "./harness.ts";

const MISSING_ARM64 = missingArm64();
const AS_TAG = ["phantun-runtime:arm64", ARM64_TAG] as const;

/** ELF e_machine of an aarch64 file. */
const EM_AARCH64 = 183;

imageTest(
  "the README's buildx build makes an arm64 image whose every ELF file is aarch64, phantun keeping its file capability; under QEMU it prints its version",
  async () => {
    const built = await readmeBuild(lines(ARM64, 0, 1), {}, ARM64_TAG);
    assert.equal(built.code, 0, built.stderr);
    assert.equal(
      await inspect(DOCKER, "{{.Architecture}}", ARM64_TAG),
      "arm64",
    );
    const dir = await exportImage(ARM64_TAG);
    const elves = elfFiles(dir);
    for (const [file, machine] of elves) {
      assert.equal(machine, EM_AARCH64, file);
    }
    for (
      const file of [
        "/usr/bin/tini",
        "/usr/bin/env",
        "/usr/local/bin/deno",
        "/usr/local/bin/phantun_server",
        "/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1",
        "/lib/aarch64-linux-gnu/libc.so.6",
      ]
    ) {
      assert.ok(elves.has(file), file);
    }
    const caps = (await ok(cmd`getcap -r ${dir}`)).split("\n").sort();
    assert.deepEqual(caps, [
      `${dir}/usr/local/bin/phantun_client cap_net_admin=ep`,
      `${dir}/usr/local/bin/phantun_server cap_net_admin=ep`,
    ]);
    const version = await readmeOk(DOCKER, lines(ARM64, 1), [AS_TAG]);
    assert.equal(version.split("\n").at(-1), `phantun-runtime ${VERSION}`);
  },
  DOCKER,
  MISSING_ARM64,
);

imageTest(
  "under QEMU the arm64 image's --help, phantun's --version and phantun's own error for a bad argument come through the supervisor",
  async () => {
    await ensureArm64();
    const help = await engineExec(DOCKER, cmd`run --rm ${ARM64_TAG} --help`);
    assert.match(help.stdout, /^Usage: MODE=/);
    const version = await engineExec(
      DOCKER,
      cmd`run --rm --cap-add NET_ADMIN -e MODE=server ${ARM64_TAG} -- --version`,
    );
    assert.equal(version.stdout.trim(), "Phantun Server 0.8.1", version.stderr);
    const bad = await engineExec(
      DOCKER,
      cmd`run --rm --cap-add NET_ADMIN -e MODE=client ${ARM64_TAG} -- --bogus`,
    );
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /error: unexpected argument '--bogus' found/);
  },
  DOCKER,
  MISSING_ARM64,
);

imageTest(
  "UDP echo through an arm64 phantun_server under QEMU (root profile: emulation ignores file capabilities) and an amd64 phantun_client",
  async () => {
    await ensureArm64();
    const tun = await tunNode();
    const names = [`${PREFIX}server`, `${PREFIX}client`];
    await withHosts(DOCKER, "arm64", async (hosts) => {
      try {
        await ok(
          cmd`${DOCKER.bin} run -d --name ${
            names[0]
          } --network container:${hosts.server} --user 0 --cap-drop ALL --cap-add NET_ADMIN ${
            device(tun)[1].split(" ")
          } -e MODE=server ${ARM64_TAG} -- --local 4567 --remote 127.0.0.1:1234 --tun ptun0`,
        );
        await ok(
          cmd`${DOCKER.bin} run -d --name ${
            names[1]
          } --network container:${hosts.client} --cap-add NET_ADMIN ${
            device(tun)[1].split(" ")
          } -e MODE=client ${IMAGE} -- --local 127.0.0.1:1234 --remote ${await ipOf(
            DOCKER,
            hosts.server,
          )}:4567 --tun ptun0`,
        );
        for (const name of names) await waitForLink(DOCKER, name, "ptun0");
        await assertEcho(
          DOCKER,
          `container:${hosts.client}`,
          "127.0.0.1",
          1234,
        );
      } finally {
        await remove(DOCKER, ...names);
      }
    });
  },
  DOCKER,
  MISSING_ARM64,
);
