/**
 * The engine harness of the image suite (`deno task test:image`, the files
 * beside this one): commands, the README's container commands verbatim, the
 * local build, and "hosts" made of containers, for Docker and Podman alike.
 *
 * The Dockerfile, unchanged, is built with BuildKit against local stand-ins of
 * its base images (scripts/docker-standins.sh, which also starts dockerd) and
 * a local upstream serving phantun 0.8.1's source (scripts/phantun-upstream.sh);
 * the result is tagged phantun-runtime:test. Podman runs the same image,
 * loaded from Docker (`docker save | podman load`).
 *
 * Network: builds reach the local upstream on 127.0.0.1 (--network host).
 * Everything else stays between containers, networks and namespaces made
 * here. The "host" of a --network host example is a holder container's
 * namespace, configured as the README configures a host, and joined with
 * --network container:HOLDER.
 */
import assert from "node:assert/strict";
import { readmeBlock } from "../../e2e/topology.ts";
import { IMAGE_DENO_RUN } from "../../scripts/launch.ts";
import {
  IS_ROOT,
  listeners,
  missingCommand,
  ROOT,
  tempDir as processTempDir,
  testWhen,
} from "../helpers.ts";

export { listeners, ROOT };

/** The image every test runs, as Docker names it. */
export const IMAGE = "phantun-runtime:test";
/** Every container, network, tag, namespace and compose project made here starts so. */
export const PREFIX = "phantun-runtime-test-";
/** Deno inside the image. */
export const DENO_BIN = "/usr/local/bin/deno";

/** The image's ENTRYPOINT after tini and env: Deno running the supervisor. */
export const DENO_RUN = IMAGE_DENO_RUN;
/** The production manifest's handoff path. */
export const IFACE = "/run/phantun/iface";
/** The image's record of the phantun source it was built from. */
export const RECORD = "/usr/local/share/phantun-runtime/phantun-source";
/** The Cargo.lock phantun was built with, in the image. */
export const CARGO_LOCK = "/usr/local/share/phantun-runtime/Cargo.lock";
/** CAP_NET_ADMIN as a bit of a capability set. */
export const NET_ADMIN = 1n << 12n;
/** The runtime's version, from deno.json. */
export const VERSION: string = JSON.parse(
  Deno.readTextFileSync(`${ROOT}deno.json`),
).version;
/** Where scripts/provision-tools.sh keeps what it builds and writes. */
export const CACHE = Deno.env.get("PHANTUN_CACHE") ??
  `${Deno.env.get("HOME")}/.cache/phantun-runtime`;

/** True when `path` is a regular file (Deno guards /proc, /dev and /sys: not for those). */
export function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------- engines

/** A container engine and how the image is named in its store. */
export type Engine = {
  readonly name: "docker" | "podman";
  readonly bin: string;
  /** The image's name in this engine's store. */
  readonly image: string;
  /** Added to the environment of every command of this engine. */
  readonly env: Record<string, string>;
  /**
   * What Docker's `--read-only` is in this engine: Podman mounts writable
   * tmpfs on /run, /tmp and /var/tmp under --read-only unless told not to.
   */
  readonly readOnly: string;
  /**
   * The capabilities a non-root container's own processes (tini, the
   * supervisor) hold after `--cap-add NET_ADMIN`: none under Docker; rootful
   * Podman adds them to the ambient set, so NET_ADMIN, also under
   * no-new-privileges.
   */
  readonly ambient: bigint;
  /** Why this engine cannot be used here, or null. */
  readonly missing: string | null;
};

/** Debian's Docker engine, with BuildKit. */
export const DOCKER: Engine = {
  name: "docker",
  bin: "/usr/bin/docker",
  image: IMAGE,
  env: { DOCKER_BUILDKIT: "1" },
  readOnly: "--read-only",
  ambient: 0n,
  missing: !IS_ROOT
    ? "needs root (dockerd, mknod, nsenter)"
    : !isFile("/usr/bin/docker")
    ? "/usr/bin/docker not found (Debian's docker.io)"
    : missingCommand(
      "dockerd",
      "debootstrap",
      "nft",
      "nsenter",
      "ip",
      "getcap",
      "python3",
      "git",
      "curl",
      "rustup",
    ),
};

const CONTAINERS_CONF = `${CACHE}/containers.conf`;

/** Rootful Podman, running the image loaded from Docker. */
export const PODMAN: Engine = {
  name: "podman",
  bin: "/usr/bin/podman",
  image: `localhost/${IMAGE}`,
  // The machine lacks CAP_SYS_RESOURCE: podman's default rlimits fail here.
  env: { CONTAINERS_CONF },
  readOnly: "--read-only --read-only-tmpfs=false",
  ambient: NET_ADMIN,
  missing: DOCKER.missing ??
    (!isFile("/usr/bin/podman")
      ? "/usr/bin/podman not found (scripts/provision-tools.sh)"
      : !isFile(CONTAINERS_CONF)
      ? `${CONTAINERS_CONF} not found (scripts/provision-tools.sh)`
      : null),
};

/** Both engines, for the scenarios that must hold under each. */
export const ENGINES: readonly Engine[] = [DOCKER, PODMAN];

/**
 * Registers a test that needs root, Docker and the image; under Podman also
 * Podman, with the image loaded into its store first.
 */
export function imageTest(
  name: string,
  fn: () => Promise<void>,
  engine: Engine = DOCKER,
  missing: string | null = null,
): void {
  testWhen(engine.missing ?? missing, name, async () => {
    await ensureImage();
    if (engine === PODMAN) await loadIntoPodman();
    await fn();
  });
}

let imageSeen = false;

/**
 * Builds phantun-runtime:test unless it exists (a file of the suite run
 * alone); looked up once per test process, since no test removes the tag.
 */
export async function ensureImage(): Promise<void> {
  if (imageSeen) return;
  if ((await exec([DOCKER.bin, "image", "inspect", IMAGE])).code !== 0) {
    const built = await build(IMAGE);
    assert.equal(built.code, 0, built.stderr);
  }
  imageSeen = true;
}

let loaded = false;

/** `docker save IMAGE | podman load`, once per test process. */
export async function loadIntoPodman(): Promise<void> {
  if (loaded) return;
  await ok([
    "sh",
    "-c",
    `${DOCKER.bin} save ${IMAGE} | CONTAINERS_CONF=${CONTAINERS_CONF} ${PODMAN.bin} load -q`,
  ]);
  loaded = true;
}

// ---------------------------------------------------------------- commands

/**
 * A command line written as text: the literal parts split at whitespace, each
 * `${value}` joined to the text around it, and each `${array}` its elements.
 */
export function cmd(
  strings: TemplateStringsArray,
  ...values: (string | number | readonly string[])[]
): string[] {
  const words: string[] = [];
  let word: string | null = null;
  const flush = () => {
    if (word !== null) words.push(word);
    word = null;
  };
  strings.forEach((text, i) => {
    text.split(/\s+/).forEach((piece, j) => {
      if (j > 0) flush();
      if (piece !== "") word = (word ?? "") + piece;
    });
    if (i === values.length) return;
    const value = values[i];
    if (Array.isArray(value)) {
      flush();
      words.push(...value);
    } else {
      word = (word ?? "") + value;
    }
  });
  flush();
  return words;
}

type Output = { code: number; stdout: string; stderr: string };

/** Runs a command to completion; `env` adds to the inherited environment. */
export async function exec(
  argv: string[],
  options: { env?: Record<string, string>; cwd?: string } = {},
): Promise<Output> {
  const { code, stdout, stderr } = await new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdin: "null",
    ...options,
  }).output();
  const text = new TextDecoder();
  return { code, stdout: text.decode(stdout), stderr: text.decode(stderr) };
}

/** Runs a command, asserts it succeeded, returns its trimmed stdout. */
export async function ok(
  argv: string[],
  options: { env?: Record<string, string>; cwd?: string } = {},
): Promise<string> {
  const result = await exec(argv, options);
  assert.equal(result.code, 0, `${argv.join(" ")}\n${result.stderr}`);
  return result.stdout.trim();
}

/** `ENGINE ARGS` to completion. */
export function engineExec(engine: Engine, argv: string[]): Promise<Output> {
  return exec([engine.bin, ...argv], { env: engine.env });
}

/** `ENGINE ARGS`, asserted to succeed; its trimmed stdout. */
export function engineOk(engine: Engine, argv: string[]): Promise<string> {
  return ok([engine.bin, ...argv], { env: engine.env });
}

/** `docker ARGS`, asserted to succeed; its trimmed stdout. */
export const docker = (argv: string[]) => engineOk(DOCKER, argv);

/**
 * Removes containers, ignoring those that do not exist (one at a time: Podman
 * removes none when one name is unknown).
 */
export async function remove(
  engine: Engine,
  ...names: string[]
): Promise<void> {
  for (const name of names) await engineExec(engine, ["rm", "-f", name]);
}

/**
 * A fresh directory under this test process's temporary root (removed on
 * unload), open to the image's user 65532 (mode 0755).
 */
export function tempDir(): string {
  const dir = processTempDir();
  Deno.chmodSync(dir, 0o755);
  return dir;
}

/**
 * A TUN device node of mode 0666 (this machine's /dev/net/tun may be 0600);
 * another `minor` or `mode` makes the nodes the Troubleshooting cases need.
 */
export async function tunNode(minor = 200, mode = "0666"): Promise<string> {
  const node = `${tempDir()}/tun`;
  await ok(cmd`mknod ${node} c 10 ${minor}`);
  await ok(cmd`chmod ${mode} ${node}`);
  return node;
}

/** The README's IFACE file on the host: empty, owned by the image's user. */
export async function ifaceFile(): Promise<string> {
  const dir = `${tempDir()}/phantun`;
  await ok(cmd`install -d ${dir}`);
  await ok(cmd`install -o 65532 -g 65532 -m 0644 /dev/null ${dir}/iface`);
  return `${dir}/iface`;
}

/** The value of a `{{...}}` format of `inspect` for one object. */
export function inspect(
  engine: Engine,
  format: string,
  name: string,
): Promise<string> {
  return engineOk(engine, cmd`inspect -f ${format} ${name}`);
}

// ---------------------------------------------------------------- README

/*
 * The README's container commands run verbatim (tests/readme_test.ts checks
 * each line against README.md) with `sh -e`, after replacements for what
 * differs on this machine: the image is phantun-runtime:test; builds reach the
 * local upstream (`--network host --build-arg PHANTUN_UPSTREAM=URL`); the TUN
 * device is a 0666 node of the test's; host paths are temporary; container and
 * network names get PREFIX; a "host" is a holder container's namespace. Under
 * Podman, `docker` becomes `podman` and `--read-only` Podman's equivalent.
 */

/** README block quickstart-docker. */
export const QUICKSTART = String.raw`docker build -t phantun-runtime .
install -D -m 0644 deploy/seccomp/phantun-runtime.json /etc/phantun-runtime/seccomp.json
install -m 0644 deploy/tmpfiles.d/phantun-runtime.conf /etc/tmpfiles.d/ && systemd-tmpfiles --create phantun-runtime.conf
docker run --rm --network host --device /dev/net/tun --cap-add NET_ADMIN --security-opt seccomp=/etc/phantun-runtime/seccomp.json -e MODE=server phantun-runtime -- --local 4567 --remote 127.0.0.1:1234 --tun ptun0`;

/** deploy/README.md block docker-build-labels. */
export const BUILD_LABELS = String
  .raw`docker build --build-arg RUNTIME_SOURCE="$SOURCE" --build-arg RUNTIME_REVISION="$(git rev-parse HEAD)" -t phantun-runtime .`;

/** README block docker-pin-commit. */
export const PIN_COMMIT = String
  .raw`docker build --build-arg PHANTUN_COMMIT="$COMMIT" -t phantun-runtime .`;

/** deploy/README.md block docker-pin-tarball. */
export const PIN_TARBALL = String
  .raw`docker build --build-arg PHANTUN_COMMIT="$COMMIT" --build-arg PHANTUN_TARBALL_SHA256="$SHA256" -t phantun-runtime .`;

/** README block docker-audit. */
export const AUDIT = String
  .raw`docker inspect -f '{{json .Config.Labels}}' phantun-runtime
docker run --rm --entrypoint /usr/local/bin/deno phantun-runtime eval 'console.log(Deno.readTextFileSync("/usr/local/share/phantun-runtime/phantun-source"))'
docker inspect -f '{{index .Config.Labels "phantun-runtime.permissions"}}' phantun-runtime
docker inspect -f '{{json .Config.Entrypoint}}' phantun-runtime
id=$(docker create phantun-runtime)
docker cp "$id:/usr/local/share/phantun-runtime/sbom.cdx.json" sbom.cdx.json
docker rm "$id"
syft scan docker:phantun-runtime`;

/** deploy/README.md block docker-handoff. */
export const HANDOFF = String
  .raw`mkdir -p state && install -o 65532 -g 65532 -m 0644 /dev/null state/iface
docker run -d --name phantun-server --network host --device /dev/net/tun --cap-add NET_ADMIN \
  --security-opt seccomp=/etc/phantun-runtime/seccomp.json \
  -e MODE=server -e IFACE_NAME=ptun0 -e IFACE_FILE=/run/phantun/iface \
  -v "$(pwd)/state/iface:/run/phantun/iface" \
  phantun-runtime -- --local 4567 --remote 127.0.0.1:1234 --tun ptun0`;

/** README block docker-host-server. */
export const HOST_SERVER = String
  .raw`docker run -d --name phantun-server --network host \
  --cap-add NET_ADMIN --device /dev/net/tun --security-opt seccomp=/etc/phantun-runtime/seccomp.json \
  -v /run/phantun/server.iface:/run/phantun/iface \
  -e MODE=server -e IFACE_FILE=/run/phantun/iface -e IFACE_NAME=ptun0 \
  phantun-runtime -- --local 4567 --remote 127.0.0.1:1234 --tun ptun0`;

/** README block docker-host-client. */
export const HOST_CLIENT = String
  .raw`docker run -d --name phantun-client --network host \
  --cap-add NET_ADMIN --device /dev/net/tun --security-opt seccomp=/etc/phantun-runtime/seccomp.json \
  -v /run/phantun/client.iface:/run/phantun/iface \
  -e MODE=client -e IFACE_FILE=/run/phantun/iface -e IFACE_NAME=ptun0 \
  phantun-runtime -- --local 127.0.0.1:1234 --remote server.example.com:4567 --tun ptun0`;

/** README block docker-stop. */
export const STOP = String.raw`docker stop phantun-server
docker inspect -f '{{.State.ExitCode}}' phantun-server
docker rm phantun-server`;

/**
 * README's stop, run on container `name`: it prints the name (stop), 143
 * (phantun died of SIGTERM) and the name again (rm).
 */
export async function assertReadmeStop(
  engine: Engine,
  name: string,
): Promise<void> {
  assert.equal(
    await readmeOk(engine, STOP, [[/phantun-server/g, name]]),
    `${name}\n143\n${name}`,
  );
}

/** README block docker-root. */
export const ROOT_PROFILE = String
  .raw`docker run -d --name phantun-server --network host \
  --user 0 --cap-drop ALL --cap-add NET_ADMIN --security-opt no-new-privileges \
  --security-opt seccomp=/etc/phantun-runtime/seccomp.json --device /dev/net/tun \
  -e MODE=server phantun-runtime -- --local 4567 --remote 127.0.0.1:1234 --tun ptun0`;

/** README block tmpfiles-install. */
export const TMPFILES_INSTALL = lines(QUICKSTART, 2, 3);

/** Where README's tmpfiles-install puts the shipped file. */
export const TMPFILES_CONF = "/etc/tmpfiles.d/phantun-runtime.conf";

/**
 * A host's root directory after the README's tmpfiles-install, run with its
 * paths under a fresh directory (`systemd-tmpfiles --root`): the handoff
 * files of compose.yaml and deploy/kubernetes/ under ROOT/run/phantun.
 */
export async function installTmpfiles(): Promise<string> {
  const root = tempDir();
  await ok(cmd`install -d ${root}/etc/tmpfiles.d ${root}/run`);
  await readmeOk(DOCKER, TMPFILES_INSTALL, [
    [" /etc/tmpfiles.d/", ` ${root}/etc/tmpfiles.d/`],
    ["systemd-tmpfiles --create", `systemd-tmpfiles --root=${root} --create`],
  ]);
  return root;
}

/**
 * What a boot does to `root` (from {@link installTmpfiles}): /run starts
 * empty, then `systemd-tmpfiles --create` applies every installed file.
 */
export async function boot(root: string): Promise<void> {
  Deno.removeSync(`${root}/run`, { recursive: true });
  await ok(cmd`install -d ${root}/run`);
  await ok(cmd`systemd-tmpfiles --root=${root} --create`);
}

/** One replacement applied to README text before it runs here. */
export type Replacement = readonly [string | RegExp, string];

/** Container names phantun-server and phantun-client. */
export const NAMES: Replacement = [
  /\bphantun-(server|client)\b/g,
  `${PREFIX}$1`,
];

/** `--device /dev/net/tun` becomes the test's own node. */
export const device = (tun: string): Replacement => [
  "--device /dev/net/tun",
  `--device ${tun}:/dev/net/tun`,
];

/** Where the README installs the seccomp profile on a host. */
export const SECCOMP_FILE = "/etc/phantun-runtime/seccomp.json";

/** The profile itself, deploy/seccomp/phantun-runtime.json of this checkout. */
export const SECCOMP = `${ROOT}deploy/seccomp/phantun-runtime.json`;

/**
 * What every README command needs under `engine`: its CLI, the image's name,
 * its `--read-only`, and the seccomp profile where this checkout has it.
 */
function engineWords(engine: Engine): Replacement[] {
  return [
    [SECCOMP_FILE, SECCOMP],
    [/\bdocker(?= )/g, engine.name],
    [/(?<=\s)phantun-runtime(?=\s|$)/gm, engine.image],
    [/(?<=\s)--read-only(?=\s)/g, engine.readOnly],
  ];
}

/** README text after `replacements`, then the engine's words. */
export function rewrite(
  engine: Engine,
  text: string,
  replacements: Replacement[],
): string {
  return [...replacements, ...engineWords(engine)].reduce(
    (script, [from, to]) => script.replaceAll(from, to),
    text,
  );
}

/** Runs README text with `sh -e` under `engine` after `replacements`. */
export function readme(
  engine: Engine,
  text: string,
  replacements: Replacement[],
  options: { env?: Record<string, string>; cwd?: string } = {},
): Promise<Output> {
  return exec(["sh", "-ec", rewrite(engine, text, replacements)], {
    cwd: options.cwd ?? ROOT,
    env: {
      PATH: `/usr/bin:${Deno.env.get("PATH")}`,
      ...engine.env,
      ...options.env,
    },
  });
}

/** {@link readme}, asserted to succeed; its trimmed stdout. */
export async function readmeOk(
  engine: Engine,
  text: string,
  replacements: Replacement[],
  options: { env?: Record<string, string>; cwd?: string } = {},
): Promise<string> {
  const result = await readme(engine, text, replacements, options);
  assert.equal(result.code, 0, `${text}\n${result.stderr}`);
  return result.stdout.trim();
}

/** The lines of README text from `start` to `end` (exclusive). */
export function lines(text: string, start: number, end?: number): string {
  return text.split("\n").slice(start, end).join("\n");
}

// ---------------------------------------------------------------- build

/** The local upstream: its directory, its two commits and their archives. */
export type Upstream = {
  readonly dir: string;
  readonly head: string;
  readonly first: string;
  readonly digest: (commit: string) => Promise<string>;
};

let upstream: Upstream | undefined;

/** Makes the stand-in base images and the local upstream, once. */
export async function prepare(): Promise<Upstream> {
  if (upstream) return upstream;
  await ok([`${ROOT}scripts/docker-standins.sh`]);
  const dir = tempDir();
  await ok([`${ROOT}scripts/phantun-upstream.sh`, dir]);
  const repo = `${dir}/dndx/phantun`;
  upstream = {
    dir,
    head: await ok(cmd`git -C ${repo} rev-parse main`),
    first: await ok(cmd`git -C ${repo} rev-parse main~1`),
    digest: async (commit) =>
      (await ok(cmd`sha256sum ${repo}/archive/${commit}.tar.gz`)).split(" ")[0],
  };
  return upstream;
}

/** Serves `dir`, the upstream by default, on 127.0.0.1 while `fn` runs. */
export async function withUpstream<T>(
  fn: (url: string) => Promise<T>,
  dir?: string,
): Promise<T> {
  const server = new Deno.Command("python3", {
    args: cmd`-u -m http.server 0 --bind 127.0.0.1 --directory ${
      dir ?? (await prepare()).dir
    }`,
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = server.stdout.pipeThrough(new TextDecoderStream())
    .getReader();
  try {
    let banner = "";
    while (!/ port \d+ /.test(banner)) {
      const { value, done } = await reader.read();
      assert(!done, `http.server did not start: ${banner}`);
      banner += value;
    }
    return await fn(`http://127.0.0.1:${banner.match(/ port (\d+) /)![1]}`);
  } finally {
    server.kill();
    await reader.cancel();
    await server.status;
  }
}

/** Runs `fn`; then removes the image `tag` named before, if it names another now. */
async function replacing<T>(
  tag: string,
  fn: () => Promise<T>,
): Promise<T> {
  const id = () => exec(cmd`${DOCKER.bin} image inspect -f {{.Id}} ${tag}`);
  const before = await id();
  const result = await fn();
  if (before.code === 0 && before.stdout !== (await id()).stdout) {
    await exec(cmd`${DOCKER.bin} rmi ${before.stdout.trim()}`);
  }
  return result;
}

/** A README build line (`docker build` or `docker buildx build`) against the local upstream. */
export function readmeBuild(
  text: string,
  env: Record<string, string> = {},
  tag = IMAGE,
): Promise<Output> {
  return withUpstream((url) =>
    replacing(tag, () =>
      readme(DOCKER, text, [
        [
          /docker (buildx )?build/g,
          `docker $1build --network host --build-arg PHANTUN_UPSTREAM=${url}`,
        ],
        [/ -t phantun-runtime(:\S+)? /g, ` -t ${tag} `],
      ], { env }))
  );
}

/** Options of a build that is not in the README. */
type BuildOptions = {
  /** `--build-arg NAME=VALUE` for each. */
  readonly args?: Record<string, string>;
  /** More `docker build` flags. */
  readonly flags?: string[];
  /** The environment added; BuildKit by default. */
  readonly env?: Record<string, string>;
};

/** A build that is not in the README: `tag` from the upstream at `url`. */
export function buildFrom(
  url: string,
  tag: string,
  options: BuildOptions = {},
): Promise<Output> {
  const args = Object.entries(options.args ?? {}).flatMap(([key, value]) =>
    cmd`--build-arg ${key}=${value}`
  );
  return replacing(tag, () =>
    exec(
      cmd`${DOCKER.bin} build --network host --build-arg PHANTUN_UPSTREAM=${url} ${args} ${
        options.flags ?? []
      } -t ${tag} .`,
      { env: options.env ?? DOCKER.env, cwd: ROOT },
    ));
}

/** {@link buildFrom} the local upstream, served for this build. */
export function build(
  tag: string,
  options: BuildOptions = {},
): Promise<Output> {
  return withUpstream((url) => buildFrom(url, tag, options));
}

/** Removes an image tag, if it exists. */
export async function untag(tag: string): Promise<void> {
  await exec([DOCKER.bin, "rmi", tag]);
}

/** The files of an image, exported from a container of it into a fresh directory. */
export async function exportImage(tag: string): Promise<string> {
  const dir = tempDir();
  const id = await docker(cmd`create ${tag}`);
  try {
    await ok([
      "sh",
      "-c",
      `${DOCKER.bin} export ${id} | tar -C ${dir} -x --xattrs --xattrs-include='*'`,
    ]);
  } finally {
    await remove(DOCKER, id);
  }
  return dir;
}

// ---------------------------------------------------------------- arm64

/** deploy/README.md block docker-buildx-arm64. */
export const ARM64 = String
  .raw`docker buildx build --platform linux/arm64 --load -t phantun-runtime:arm64 .
docker run --rm phantun-runtime:arm64 --version`;

/** The arm64 image the suite builds. */
export const ARM64_TAG = "phantun-runtime:test-arm64";

/** Why the arm64 image cannot be built and run here, or null (asked by the files that need it). */
export function missingArm64(): string | null {
  if (!isFile(`${Deno.env.get("HOME")}/.docker/cli-plugins/docker-buildx`)) {
    return "the docker buildx plugin is missing (scripts/provision-tools.sh)";
  }
  // Deno guards /proc: ask test(1).
  const registered = new Deno.Command("test", {
    args: ["-e", "/proc/sys/fs/binfmt_misc/qemu-aarch64"],
  }).outputSync().success;
  return registered
    ? null
    : "qemu-aarch64 is not registered with binfmt_misc (scripts/provision-tools.sh)";
}

/** The e_machine of an ELF file, or null when `path` is not one. */
export function elfMachine(path: string): number | null {
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
export async function ensureArm64(): Promise<void> {
  if ((await engineExec(DOCKER, cmd`image inspect ${ARM64_TAG}`)).code === 0) {
    return;
  }
  const built = await readmeBuild(lines(ARM64, 0, 1), {}, ARM64_TAG);
  assert.equal(built.code, 0, built.stderr);
}

/** The ELF files of an exported image (`dir`), by path, with their e_machine. */
export function elfFiles(dir: string): Map<string, number> {
  const found = new Map<string, number>();
  const walk = (path: string) => {
    for (const entry of Deno.readDirSync(`${dir}${path}`)) {
      const child = `${path}/${entry.name}`;
      if (entry.isDirectory) walk(child);
      else if (entry.isFile) {
        const machine = elfMachine(`${dir}${child}`);
        if (machine !== null) found.set(child, machine);
      }
    }
  };
  walk("");
  return found;
}

// ---------------------------------------------------------------- running

/**
 * The /proc/PID/status of the container's tini (PID 1), of deno under it
 * (after env's exec) and of phantun under that. Read with cat: Deno guards
 * /proc.
 */
export async function processChain(
  engine: Engine,
  name: string,
): Promise<string[]> {
  const pids = [await inspect(engine, "{{.State.Pid}}", name)];
  while (pids.length < 3) {
    const children = await ok(
      cmd`sh -c ${"cat /proc/$0/task/*/children"} ${pids[pids.length - 1]}`,
    );
    assert.match(children, /^\d+$/, `children of ${pids[pids.length - 1]}`);
    pids.push(children);
  }
  return await Promise.all(pids.map((pid) => ok(cmd`cat /proc/${pid}/status`)));
}

/** The effective capability set in a /proc/PID/status. */
export function capEff(status: string): bigint {
  return BigInt(`0x${status.match(/^CapEff:\s+([0-9a-f]+)$/m)![1]}`);
}

/** The pid in a /proc/PID/status. */
export function pidOf(status: string): number {
  return Number(status.match(/^Pid:\s+(\d+)$/m)![1]);
}

/** Runs a command in the container's network namespace, as a host admin would. */
async function inNetns(
  engine: Engine,
  name: string,
  argv: string[],
): Promise<Output> {
  const pid = await inspect(engine, "{{.State.Pid}}", name);
  return await exec(cmd`nsenter -n -t ${pid} ${argv}`);
}

/** Polls until the interface exists in the container's network namespace. */
export async function waitForLink(
  engine: Engine,
  name: string,
  link: string,
): Promise<void> {
  const deadline = Date.now() + 15_000;
  while ((await inNetns(engine, name, cmd`ip link show ${link}`)).code !== 0) {
    const { stderr } = await engineExec(engine, cmd`logs ${name}`);
    assert(Date.now() < deadline, `no ${link} in ${name}: ${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A phantun server creating ptun0, with `flags` before the image. */
export const server = (engine: Engine, flags: string[]) =>
  cmd`${flags} -e MODE=server ${engine.image} -- --local 4567 --remote 127.0.0.1:1234 --tun ptun0`;

/** Starts a server container named `name`. */
export async function startServer(
  engine: Engine,
  name: string,
  flags: string[],
): Promise<void> {
  await remove(engine, name);
  await engineOk(engine, cmd`run -d --name ${name} ${server(engine, flags)}`);
}

/** The README's handoff flags: the bind-mounted host file and its variables. */
export const handoff = (file: string) =>
  cmd`-v ${file}:${IFACE} -e IFACE_FILE=${IFACE} -e IFACE_NAME=ptun0`;

// ---------------------------------------------------------------- networks

/** Deno code for a UDP echo server on each of `ports`. */
export const udpEcho = (...ports: number[]) =>
  `import dgram from "node:dgram";\n${echoOn("udp4", ports)}`;

/** The statements of a UDP echo of `family` on each of `ports` (dgram imported). */
const echoOn = (family: "udp4" | "udp6", ports: readonly number[]) => {
  const options = family === "udp6"
    ? '{ type: "udp6", ipv6Only: true }'
    : '"udp4"';
  return `for (const port of ${JSON.stringify(ports)}) {
  const socket = dgram.createSocket(${options});
  socket.on("message", (message, peer) => socket.send(message, peer.port, peer.address));
  socket.bind(port);
}
`;
};

/** Deno code that sends a datagram every 200 ms until it is echoed, 15 s at most. */
const udpSend = (host: string, port: number) =>
  `import dgram from "node:dgram";
const socket = dgram.createSocket("${host.includes(":") ? "udp6" : "udp4"}");
const payload = "through phantun";
socket.on("message", (message) => {
  if (String(message) === payload) { console.log("echoed"); Deno.exit(0); }
});
let tries = 0;
setInterval(() => {
  if (++tries > 75) { console.error("no echo"); Deno.exit(1); }
  socket.send(payload, ${port}, ${JSON.stringify(host)});
}, 200);`;

/** Starts a container running Deno `code` in `network`. */
export async function denoContainer(
  engine: Engine,
  name: string,
  network: string,
  code: string,
): Promise<void> {
  await remove(engine, name);
  await engineOk(
    engine,
    cmd`run -d --name ${name} --network ${network} --entrypoint ${DENO_BIN} ${engine.image} eval ${code}`,
  );
}

/** Asserts a datagram sent from `network` to host:port comes back. */
export async function assertEcho(
  engine: Engine,
  network: string,
  host: string,
  port: number,
): Promise<void> {
  const result = await engineExec(
    engine,
    cmd`run --rm --network ${network} --entrypoint ${DENO_BIN} ${engine.image} eval ${
      udpSend(host, port)
    }`,
  );
  assert.equal(result.stdout.trim(), "echoed", result.stderr);
}

/** The container's address on its network. */
export function ipOf(engine: Engine, name: string): Promise<string> {
  return inspect(
    engine,
    "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
    name,
  );
}

/** The IPv6 prefix of a test network made with `ipv6`. */
export const TEST_PREFIX6 = "fd42:7072:7474::/64";

/** Creates a network (with IPv6 when `ipv6`) for `fn`; removes it and `containers` afterwards. */
async function withNetwork(
  engine: Engine,
  net: string,
  containers: string[],
  fn: () => Promise<void>,
  ipv6 = false,
): Promise<void> {
  await remove(engine, ...containers);
  await engineExec(engine, cmd`network rm ${net}`);
  const v6 = ipv6 ? cmd`--ipv6 --subnet ${TEST_PREFIX6}` : [];
  await engineOk(engine, cmd`network create ${v6} ${net}`);
  try {
    await fn();
  } finally {
    await remove(engine, ...containers);
    await engineExec(engine, cmd`network rm ${net}`);
  }
}

/** The two "hosts" of a test and what the README's commands need to use them. */
type Hosts = {
  readonly client: string;
  readonly server: string;
  /** `--network host` of a README command becomes the holder's namespace. */
  readonly on: (host: string) => Replacement;
};

/** What {@link withHosts} sets up besides the hosts themselves. */
type HostSetup = {
  /** The README's NAT blocks for the client and the server host. */
  readonly nat?: readonly [string, string];
  /** The ports of the UDP echo on the server host. */
  readonly echo?: readonly number[];
  /** IPv6 on the hosts' network, and the echo on ::1 too. */
  readonly ipv6?: boolean;
};

/**
 * Two "hosts" on a network of their own: holder containers whose namespaces
 * get the README's host setup (forwarding and its variables, then nftables:
 * one tunnel's blocks unless `setup.nat` names others) through nsenter. The server host
 * runs a UDP echo, the service behind phantun, on port 1234 unless
 * `setup.echo` gives others.
 */
export async function withHosts(
  engine: Engine,
  label: string,
  fn: (hosts: Hosts) => Promise<void>,
  setup: HostSetup = {},
): Promise<void> {
  const net = `${PREFIX}${label}`;
  const client = `${net}-client-host`;
  const server = `${net}-server-host`;
  await withNetwork(engine, net, [client, server], async () => {
    await denoContainer(
      engine,
      client,
      net,
      "setInterval(() => {}, 3_600_000);",
    );
    const echo = setup.echo ?? [1234];
    await denoContainer(
      engine,
      server,
      net,
      udpEcho(...echo) + (setup.ipv6 ? echoOn("udp6", echo) : ""),
    );
    // Docker starts containers with IPv6 off for new interfaces (the TUN);
    // a host with IPv6 has it on.
    const ipv6 = setup.ipv6
      ? "sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.default.disable_ipv6=0\n"
      : "";
    const common = ipv6 + readmeBlock("forwarding");
    const [clientNat, serverNat] = setup.nat ?? ["client-nft", "server-nft"];
    for (const [host, nat] of [[client, clientNat], [server, serverNat]]) {
      const result = await inNetns(
        engine,
        host,
        ["sh", "-ec", common + readmeBlock(nat)],
      );
      assert.equal(result.code, 0, result.stderr);
    }
    await fn({
      client,
      server,
      on: (host) => ["--network host", `--network container:${host}`],
    });
  }, setup.ipv6);
}
