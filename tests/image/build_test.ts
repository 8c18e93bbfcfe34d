/**
 * The build contract: the README's builds (default branch, pinned commit,
 * verified archive, labels), what stops a build, and what the image holds.
 */
import assert from "node:assert/strict";
import { entrypoint } from "../../scripts/launch.ts";
import {
  AUDIT,
  build,
  BUILD_LABELS,
  buildFrom,
  CARGO_LOCK,
  cmd,
  DENO_BIN,
  DOCKER,
  docker,
  exec,
  exportImage,
  IMAGE,
  imageTest,
  inspect,
  lines,
  ok,
  PIN_COMMIT,
  PIN_TARBALL,
  prepare,
  QUICKSTART,
  readmeBuild,
  readmeOk,
  RECORD,
  remove,
  ROOT,
  tempDir,
  untag,
  VERSION,
  withUpstream,
} from "./harness.ts";

/** True when BuildKit's plain progress shows the cargo build taken from the cache. */
function cargoCached(progress: string): boolean {
  const step = progress.match(/^#(\d+) \[build \d+\/\d+\] RUN case/m);
  return step !== null &&
    new RegExp(`^#${step[1]} CACHED$`, "m").test(progress);
}

/** The README's audit commands for `tag`: its labels and its record of phantun. */
async function audit(
  tag = IMAGE,
): Promise<{ labels: Record<string, string>; record: string }> {
  const [labels, ...record] = (await readmeOk(DOCKER, lines(AUDIT, 0, 2), [[
    / phantun-runtime(?=\s|$)/gm,
    ` ${tag}`,
  ]])).split("\n");
  return { labels: JSON.parse(labels), record: record.join("\n") };
}

imageTest(
  "the README's release build labels the image with the runtime's source and revision, the licenses and phantun's origin",
  async () => {
    const source = "https://example.invalid/phantun-runtime";
    const built = await readmeBuild(BUILD_LABELS, { SOURCE: source });
    assert.equal(built.code, 0, built.stderr);
    const { labels } = await audit();
    const revision = await ok(cmd`git -C ${ROOT} rev-parse HEAD`);
    assert.match(
      labels["phantun-runtime.phantun.repository"],
      /^http:\/\/127\.0\.0\.1:\d+\/dndx\/phantun$/,
    );
    assert.deepEqual(labels, {
      "org.opencontainers.image.title": "phantun-runtime",
      "org.opencontainers.image.description":
        "Upstream phantun (UDP over fake TCP) client and server under a Deno supervisor",
      "org.opencontainers.image.version": VERSION,
      "org.opencontainers.image.source": source,
      "org.opencontainers.image.revision": revision,
      "org.opencontainers.image.licenses": "MIT AND (MIT OR Apache-2.0)",
      "phantun-runtime.phantun.repository":
        labels["phantun-runtime.phantun.repository"],
      "phantun-runtime.phantun.commit": "HEAD",
      "phantun-runtime.phantun.tarball-sha256": "",
      "phantun-runtime.phantun.record": RECORD,
      "phantun-runtime.phantun.cargo-lock": CARGO_LOCK,
      "phantun-runtime.sbom": "/usr/local/share/phantun-runtime/sbom.cdx.json",
      "phantun-runtime.source-date-epoch": "",
      "phantun-runtime.permissions": JSON.stringify(
        JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`)).permissions
          .production,
      ),
    });
  },
);

imageTest(
  "the README's docker build with no build args builds the default branch's HEAD; its audit commands show the labels and the resolved commit",
  async () => {
    const { head } = await prepare();
    const built = await readmeBuild(lines(QUICKSTART, 0, 1));
    assert.equal(built.code, 0, built.stderr);
    const { labels, record } = await audit();
    assert.equal(labels["org.opencontainers.image.version"], VERSION);
    assert.equal(labels["org.opencontainers.image.title"], "phantun-runtime");
    assert.match(
      labels["phantun-runtime.phantun.repository"],
      /^http:\/\/127\.0\.0\.1:\d+\/dndx\/phantun$/,
    );
    assert.equal(labels["phantun-runtime.phantun.commit"], "HEAD");
    assert.equal(labels["phantun-runtime.phantun.tarball-sha256"], "");
    assert.equal(labels["phantun-runtime.phantun.record"], RECORD);
    assert.equal(labels["org.opencontainers.image.source"], "");
    assert.equal(labels["org.opencontainers.image.revision"], "");
    assert.match(record, new RegExp(`^commit=${head}\ntarball-sha256=$`, "m"));
    const version = await docker(
      cmd`run --rm --cap-add NET_ADMIN --entrypoint /usr/local/bin/phantun_server ${IMAGE} --version`,
    );
    assert.equal(version, "Phantun Server 0.8.1");
  },
);

imageTest(
  "the README's PHANTUN_COMMIT build builds exactly that commit and names it in the labels",
  async () => {
    const { first } = await prepare();
    const built = await readmeBuild(PIN_COMMIT, { COMMIT: first });
    assert.equal(built.code, 0, built.stderr);
    const { labels, record } = await audit();
    assert.equal(labels["phantun-runtime.phantun.commit"], first);
    assert.match(record, new RegExp(`^commit=${first}$`, "m"));
  },
);

imageTest(
  "the README's PHANTUN_TARBALL_SHA256 build builds the verified archive of PHANTUN_COMMIT, or of HEAD resolved at build time, and labels the digest",
  async () => {
    const { first, head, digest } = await prepare();
    const built = await readmeBuild(PIN_TARBALL, {
      COMMIT: first,
      SHA256: await digest(first),
    });
    assert.equal(built.code, 0, built.stderr);
    const pinned = await audit();
    assert.equal(pinned.labels["phantun-runtime.phantun.commit"], first);
    assert.equal(
      pinned.labels["phantun-runtime.phantun.tarball-sha256"],
      await digest(first),
    );
    assert.match(
      pinned.record,
      new RegExp(
        `^commit=${first}\ntarball-sha256=${await digest(first)}$`,
        "m",
      ),
    );
    const tag = `${IMAGE}-tarball`;
    try {
      const args = { PHANTUN_TARBALL_SHA256: await digest(head) };
      assert.equal((await build(tag, { args })).code, 0);
      const resolved = await audit(tag);
      assert.equal(resolved.labels["phantun-runtime.phantun.commit"], "HEAD");
      assert.match(
        resolved.record,
        new RegExp(
          `^commit=${head}\ntarball-sha256=${await digest(head)}$`,
          "m",
        ),
      );
    } finally {
      await untag(tag);
    }
  },
);

imageTest(
  "a rebuild picks up a new default-branch HEAD although everything else is cached",
  async () => {
    const copy = tempDir();
    await ok(cmd`cp -a ${(await prepare()).dir}/. ${copy}`);
    const repo = `${copy}/dndx/phantun`;
    const git = (args: string) =>
      ok(
        cmd`git -C ${repo} -c user.name=test -c user.email=test@localhost ${
          args.split(" ")
        }`,
      );
    const tag = `${IMAGE}-moved`;
    try {
      await withUpstream(async (url) => {
        assert.equal((await buildFrom(url, tag)).code, 0);
        const moved = await git("commit-tree main^{tree} -p main -m moved");
        await git(`update-ref refs/heads/main ${moved}`);
        await git("update-server-info");
        const rebuild = await buildFrom(url, tag);
        assert.equal(rebuild.code, 0, rebuild.stderr);
        assert.ok(cargoCached(rebuild.stderr), "cargo build ran again");
        const { record } = await audit(tag);
        assert.match(record, new RegExp(`^commit=${moved}$`, "m"));
      }, copy);
    } finally {
      await untag(tag);
    }
  },
);

imageTest(
  "the README's PHANTUN_TARBALL_SHA256 build with a wrong digest stops, showing the expected and the actual digest",
  async () => {
    const { first, head, digest } = await prepare();
    const expected = await digest(head);
    const result = await readmeBuild(PIN_TARBALL, {
      COMMIT: first,
      SHA256: expected,
    });
    assert.notEqual(result.code, 0);
    assert.match(
      result.stderr,
      new RegExp(`expected ${expected}, actual ${await digest(first)}`),
    );
  },
);

imageTest(
  "a RUNTIME_VERSION other than deno.json's version stops the build",
  async () => {
    const result = await build(`${IMAGE}-version`, {
      args: { RUNTIME_VERSION: "0.0.0-other" },
    });
    assert.notEqual(result.code, 0);
    assert.match(
      result.stderr,
      new RegExp(`RUNTIME_VERSION=0.0.0-other but deno.json has ${VERSION}`),
    );
  },
);

imageTest(
  "the legacy builder, which would drop phantun's file capability, is refused",
  async () => {
    const result = await build(`${IMAGE}-legacy`, {
      flags: ["--force-rm"],
      env: { DOCKER_BUILDKIT: "0" },
    });
    assert.notEqual(result.code, 0);
    // It stops at the first stage: at its platform or at the TARGETARCH check.
    assert.match(
      result.stderr,
      /BuildKit is required|failed to parse platform/,
    );
  },
);

imageTest(
  "docker inspect shows user 65532 and an exec-form entrypoint: tini, then env blocking SIGUSR1 with Deno's own variables removed or pinned, then deno run without V8's JIT under -P=production, as scripts/launch.ts writes it; with no arguments the image prints its usage",
  async () => {
    const config = JSON.parse(await inspect(DOCKER, "{{json .Config}}", IMAGE));
    assert.equal(config.User, "65532:65532");
    assert.deepEqual(config.Entrypoint, entrypoint());
    assert.equal(
      await docker(cmd`run --rm --read-only ${IMAGE} --version`),
      `phantun-runtime ${VERSION}`,
    );
    assert.match(await docker(cmd`run --rm ${IMAGE}`), /^Usage: MODE=/);
    assert.match(await docker(cmd`run --rm ${IMAGE} --help`), /^Usage: MODE=/);
  },
);

/** Files in a container's filesystem that Docker itself adds. */
const DOCKER_FILES = new Set([
  "/.dockerenv",
  "/etc/hostname",
  "/etc/hosts",
  "/etc/mtab",
  "/etc/resolv.conf",
]);

/** The packages' copyright files (libgcc-s1's a link to gcc-12-base's) and dpkg status entries. */
const DEBIAN =
  /^(\/usr\/share\/doc\/(libc6|gcc-12-base|tini|coreutils|base-files)\/copyright|\/usr\/share\/doc\/libgcc-s1|\/var\/lib\/dpkg\/status\.d\/(libc6|libgcc-s1|gcc-12-base|tini|coreutils|base-files)(\.md5sums)?)$/;

/** The only libraries allowed: what deno and phantun link, and the loader. */
const LIBRARY =
  /^\/lib(64)?\/([^/]+\/)?(libc\.so\.6|libm\.so\.6|libgcc_s\.so\.1|libdl\.so\.2|librt\.so\.1|libpthread\.so\.0|ld-linux-[^/]+\.so\.\d)$/;

imageTest(
  "the image holds only tini, env, deno, phantun, their libraries, phantun's records, the SBOM, the Debian packages' copyright files, status entries and os-release, and the supervisor as one module, no Deno cache: no shell, no setuid or setgid file, cap_net_admin on phantun only",
  async () => {
    const dir = await exportImage(IMAGE);
    const files: string[] = [];
    const walk = (path: string) => {
      for (const entry of Deno.readDirSync(`${dir}${path}`)) {
        const child = `${path}/${entry.name}`;
        const { mode } = Deno.lstatSync(`${dir}${child}`);
        assert.equal(mode! & 0o6000, 0, `setuid or setgid: ${child}`);
        if (entry.isDirectory) walk(child);
        else if (!DOCKER_FILES.has(child) && !child.startsWith("/dev/")) {
          files.push(child);
        }
      }
    };
    walk("");
    const expected = [
      "/usr/bin/tini",
      "/usr/bin/env",
      DENO_BIN,
      "/usr/local/bin/phantun_client",
      "/usr/local/bin/phantun_server",
      RECORD,
      CARGO_LOCK,
      "/usr/local/share/phantun-runtime/sbom.cdx.json",
      "/usr/lib/os-release",
      "/etc/os-release",
      "/app/deno.json",
      "/app/deno.lock",
      "/app/main.js",
    ];
    for (const file of expected) assert.ok(files.includes(file), file);
    for (const file of files) {
      assert.ok(
        expected.includes(file) || LIBRARY.test(file) || DEBIAN.test(file),
        `unexpected ${file}`,
      );
    }
    const lock = Deno.readTextFileSync(`${dir}${CARGO_LOCK}`);
    assert.match(lock, /^name = "phantun"\nversion = "0\.8\.1"$/m);
    assert.match(lock, /^name = "tokio"$/m);
    const caps = (await ok(cmd`getcap -r ${dir}`)).split("\n").sort();
    assert.deepEqual(caps, [
      `${dir}/usr/local/bin/phantun_client cap_net_admin=ep`,
      `${dir}/usr/local/bin/phantun_server cap_net_admin=ep`,
    ]);
  },
);

imageTest(
  "the image's /app/main.js is `deno bundle` of this checkout's main.ts and lib/, byte for byte",
  async () => {
    const dir = tempDir();
    const bundle = await exec(
      cmd`${Deno.execPath()} bundle --quiet --platform=deno --output=${dir}/main.js main.ts`,
      { cwd: ROOT },
    );
    assert.equal(bundle.code, 0, bundle.stderr);
    const id = await docker(cmd`create ${IMAGE}`);
    try {
      await docker(cmd`cp ${id}:/app/main.js ${dir}/image.js`);
    } finally {
      await remove(DOCKER, id);
    }
    const image = Deno.readTextFileSync(`${dir}/image.js`);
    assert.equal(image, Deno.readTextFileSync(`${dir}/main.js`));
    for (const entry of Deno.readDirSync(`${ROOT}lib`)) {
      assert.ok(image.includes(`// lib/${entry.name}\n`), entry.name);
    }
  },
);

imageTest(
  "scripts/docker-standins.sh leaves an image it did not make under a base image's name as it was, and makes no stand-in for it",
  async () => {
    const names = [`${IMAGE}-real-debian`, `${IMAGE}-real-rust`];
    const empty = tempDir();
    try {
      for (const name of names) {
        await ok([
          "sh",
          "-c",
          `tar -C ${empty} -c . | ${DOCKER.bin} import - ${name} >/dev/null`,
        ]);
      }
      const id = (name: string) => inspect(DOCKER, "{{.Id}}", name);
      const before = await Promise.all(names.map(id));
      await ok([`${ROOT}scripts/docker-standins.sh`], {
        env: { DEBIAN_IMAGE: names[0], RUST_IMAGE: names[1] },
      });
      // The same image ids: nothing was retagged over them.
      assert.deepEqual(await Promise.all(names.map(id)), before);
    } finally {
      for (const name of names) await untag(name);
    }
  },
);
