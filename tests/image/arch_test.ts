/**
 * Architectures: the README's buildx build for linux/arm64 (phantun
 * cross-compiled, only the final stage arm64), checked file by file and run
 * under QEMU user emulation, with UDP echo through an arm64 phantun_server.
 */
import assert from "node:assert/strict";
import {
  assertEcho,
  cmd,
  device,
  DOCKER,
  engineExec,
  exportImage,
  IMAGE,
  imageTest,
  inspect,
  ipOf,
  isFile,
  lines,
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

/** README block docker-buildx-arm64. */
const ARM64 = String
  .raw`docker buildx build --platform linux/arm64 --load -t phantun-runtime:arm64 .
docker run --rm phantun-runtime:arm64 --version`;

const TAG = "phantun-runtime:test-arm64";
const AS_TAG = ["phantun-runtime:arm64", TAG] as const;

const MISSING =
  !isFile(`${Deno.env.get("HOME")}/.docker/cli-plugins/docker-buildx`)
    ? "the docker buildx plugin is missing (scripts/provision-tools.sh)"
    // Deno guards /proc: ask test(1).
    : !new Deno.Command("test", {
        args: ["-e", "/proc/sys/fs/binfmt_misc/qemu-aarch64"],
      }).outputSync().success
    ? "qemu-aarch64 is not registered with binfmt_misc (scripts/provision-tools.sh)"
    : null;

/** ELF e_machine of an aarch64 file. */
const EM_AARCH64 = 183;

/** The e_machine of an ELF file, or null when `path` is not one. */
function elfMachine(path: string): number | null {
  const file = Deno.openSync(path);
  try {
    const header = new Uint8Array(20);
    if (file.readSync(header) !== 20) return null;
    if (String.fromCharCode(...header.subarray(0, 4)) !== "\x7fELF") {
      return null;
    }
    return header[18] | (header[19] << 8);
  } finally {
    file.close();
  }
}

/** Builds the arm64 image unless it exists (a test of this file run alone). */
async function ensureArm64(): Promise<void> {
  if ((await engineExec(DOCKER, cmd`image inspect ${TAG}`)).code === 0) return;
  const built = await readmeBuild(lines(ARM64, 0, 1), {}, TAG);
  assert.equal(built.code, 0, built.stderr);
}

imageTest(
  "the README's buildx build makes an arm64 image whose every ELF file is aarch64, phantun keeping its file capability; under QEMU it prints its version",
  async () => {
    const built = await readmeBuild(lines(ARM64, 0, 1), {}, TAG);
    assert.equal(built.code, 0, built.stderr);
    assert.equal(await inspect(DOCKER, "{{.Architecture}}", TAG), "arm64");
    const dir = await exportImage(TAG);
    const elves: string[] = [];
    const walk = (path: string) => {
      for (const entry of Deno.readDirSync(`${dir}${path}`)) {
        const child = `${path}/${entry.name}`;
        if (entry.isDirectory) walk(child);
        else if (entry.isFile && elfMachine(`${dir}${child}`) !== null) {
          assert.equal(elfMachine(`${dir}${child}`), EM_AARCH64, child);
          elves.push(child);
        }
      }
    };
    walk("");
    for (
      const file of [
        "/usr/bin/tini",
        "/usr/bin/env",
        "/usr/local/bin/deno",
        "/usr/local/bin/phantun_server",
        "/lib/ld-linux-aarch64.so.1",
        "/lib/aarch64-linux-gnu/libc.so.6",
      ]
    ) {
      assert.ok(elves.includes(file), file);
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
  MISSING,
);

imageTest(
  "under QEMU the arm64 image's --help, phantun's --version and phantun's own error for a bad argument come through the supervisor",
  async () => {
    await ensureArm64();
    const help = await engineExec(DOCKER, cmd`run --rm ${TAG} --help`);
    assert.match(help.stdout, /^Usage: MODE=/);
    const version = await engineExec(
      DOCKER,
      cmd`run --rm --cap-add NET_ADMIN -e MODE=server ${TAG} -- --version`,
    );
    assert.equal(version.stdout.trim(), "Phantun Server 0.8.1", version.stderr);
    const bad = await engineExec(
      DOCKER,
      cmd`run --rm --cap-add NET_ADMIN -e MODE=client ${TAG} -- --bogus`,
    );
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /error: unexpected argument '--bogus' found/);
  },
  DOCKER,
  MISSING,
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
          } -e MODE=server ${TAG} -- --local 4567 --remote 127.0.0.1:1234 --tun ptun0`,
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
  MISSING,
);
