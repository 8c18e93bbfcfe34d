/**
 * Image tests (`deno task test:image`): the Dockerfile, unchanged, built with
 * BuildKit against local stand-ins of its base images
 * (scripts/docker-standins.sh, which also starts dockerd) and a local upstream
 * serving phantun 0.8.1's source (scripts/phantun-upstream.sh); the result is
 * left tagged phantun-runtime:test. Then real phantun runs in containers.
 *
 * Network: the build reaches the local upstream on 127.0.0.1 (--network host).
 * Everything else stays between containers and networks made here. The "host"
 * of a --network host example is a holder container's namespace, configured
 * as the README configures a host, and joined with --network container:HOLDER.
 */
import assert from "node:assert/strict";
import { readmeBlock } from "../e2e/topology.ts";
import { IS_ROOT, missingCommand, ROOT, testWhen } from "./helpers.ts";
import { restartLoop } from "./restart_loop.ts";

const DOCKER = "/usr/bin/docker";
const IMAGE = "phantun-runtime:test";
/** Every container, network, tag and compose project made here starts so. */
const PREFIX = "phantun-runtime-test-";
const DENO_BIN = "/usr/local/bin/deno";
const IFACE = "/run/phantun-runtime/iface";
const RECORD = "/usr/local/share/phantun-runtime/phantun-source";
const NET_ADMIN = 1n << 12n;
const VERSION: string = JSON.parse(
  Deno.readTextFileSync(`${ROOT}deno.json`),
).version;

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

const MISSING = !IS_ROOT
  ? "needs root (dockerd, mknod, nsenter)"
  : !isFile(DOCKER)
  ? `${DOCKER} not found (Debian's docker.io)`
  : missingCommand(
    "dockerd",
    "debootstrap",
    "docker-compose",
    "nft",
    "nsenter",
    "ip",
    "getcap",
    "python3",
    "git",
    "curl",
    "npm",
  );

/** Registers a test that needs root and Docker. */
function imageTest(name: string, fn: () => Promise<void>): void {
  testWhen(MISSING, name, fn);
}

// ---------------------------------------------------------------- commands

/**
 * A command line written as text: the literal parts split at whitespace, each
 * `${value}` joined to the text around it, and each `${array}` its elements.
 */
function cmd(
  strings: TemplateStringsArray,
  ...values: (string | number | string[])[]
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
async function exec(
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
async function ok(argv: string[]): Promise<string> {
  const result = await exec(argv);
  assert.equal(result.code, 0, `${argv.join(" ")}\n${result.stderr}`);
  return result.stdout.trim();
}

/** `docker ARGS`, asserted to succeed; its trimmed stdout. */
const docker = (argv: string[]) => ok([DOCKER, ...argv]);

/** Removes containers, ignoring those that do not exist. */
async function remove(...names: string[]): Promise<void> {
  await exec([DOCKER, "rm", "-f", ...names]);
}

let scratch: string | undefined;

/** A fresh directory inside this run's scratch directory, removed at exit. */
function tempDir(): string {
  if (scratch === undefined) {
    scratch = Deno.makeTempDirSync({ prefix: PREFIX });
    const root = scratch;
    globalThis.addEventListener("unload", () => {
      Deno.removeSync(root, { recursive: true });
    });
  }
  return Deno.makeTempDirSync({ dir: scratch });
}

/** A TUN device node of mode 0666 (this machine's /dev/net/tun is 0600). */
async function tunNode(): Promise<string> {
  const node = `${tempDir()}/tun`;
  await ok(cmd`mknod ${node} c 10 200`);
  await ok(cmd`chmod 0666 ${node}`);
  return node;
}

/** The README's IFACE file on the host: empty, owned by the image's user. */
async function ifaceFile(): Promise<string> {
  const dir = `${tempDir()}/phantun`;
  await ok(cmd`install -d ${dir}`);
  await ok(cmd`install -o 65532 -g 65532 -m 0644 /dev/null ${dir}/iface`);
  return `${dir}/iface`;
}

/** The value of a `{{...}}` format of `docker inspect` for one object. */
function inspect(format: string, name: string): Promise<string> {
  return docker(cmd`inspect -f ${format} ${name}`);
}

// ---------------------------------------------------------------- README

/*
 * The README's container commands, verbatim (tests/readme_test.ts checks each
 * line against README.md). They run with `sh -e` after replacements for what
 * differs on this machine: the image is phantun-runtime:test; builds reach the
 * local upstream (`--network host --build-arg PHANTUN_UPSTREAM=URL`); the TUN
 * device is a 0666 node of the test's; host paths are temporary; container and
 * network names get PREFIX; a "host" is a holder container's namespace.
 */

/** README block quickstart-docker. */
const QUICKSTART = String.raw`docker build -t phantun-runtime .
docker run --rm --network host --device /dev/net/tun --cap-add NET_ADMIN -e MODE=server phantun-runtime -- --local 4567 --remote 127.0.0.1:1234 --tun ptun0`;

/** README block docker-pin-commit. */
const PIN_COMMIT = String
  .raw`docker build --build-arg PHANTUN_COMMIT="$COMMIT" -t phantun-runtime .`;

/** README block docker-pin-tarball. */
const PIN_TARBALL = String
  .raw`docker build --build-arg PHANTUN_COMMIT="$COMMIT" --build-arg PHANTUN_TARBALL_SHA256="$SHA256" -t phantun-runtime .`;

/** README block docker-audit. */
const AUDIT = String
  .raw`docker inspect -f '{{json .Config.Labels}}' phantun-runtime
docker run --rm --entrypoint /usr/local/bin/deno phantun-runtime eval 'console.log(Deno.readTextFileSync("/usr/local/share/phantun-runtime/phantun-source"))'`;

/** README block docker-iface. */
const IFACE_FILES = String.raw`install -d /run/phantun
install -o 65532 -g 65532 -m 0644 /dev/null /run/phantun/server.iface
install -o 65532 -g 65532 -m 0644 /dev/null /run/phantun/client.iface`;

/** README block docker-host-server. */
const HOST_SERVER = String
  .raw`docker run -d --name phantun-server --network host \
  --cap-add NET_ADMIN --device /dev/net/tun \
  -v /run/phantun/server.iface:/run/phantun-runtime/iface \
  -e MODE=server -e IFACE_FILE=/run/phantun-runtime/iface -e IFACE_NAME=ptun0 \
  phantun-runtime -- --local 4567 --remote 127.0.0.1:1234 --tun ptun0`;

/** README block docker-host-client. */
const HOST_CLIENT = String
  .raw`docker run -d --name phantun-client --network host \
  --cap-add NET_ADMIN --device /dev/net/tun \
  -v /run/phantun/client.iface:/run/phantun-runtime/iface \
  -e MODE=client -e IFACE_FILE=/run/phantun-runtime/iface -e IFACE_NAME=ptun0 \
  phantun-runtime -- --local 127.0.0.1:1234 --remote server.example.com:4567 --tun ptun0`;

/** README block docker-stop. */
const STOP = String.raw`docker stop phantun-server
docker inspect -f '{{.State.ExitCode}}' phantun-server`;

/** README block docker-root. */
const ROOT_PROFILE = String
  .raw`docker run -d --name phantun-server --network host \
  --user 0 --cap-drop ALL --cap-add NET_ADMIN --security-opt no-new-privileges \
  --device /dev/net/tun \
  -e MODE=server phantun-runtime -- --local 4567 --remote 127.0.0.1:1234 --tun ptun0`;

/** README block docker-bridge-server. */
const BRIDGE_SERVER = String.raw`docker network create phantun
docker run -d --name phantun-server --network phantun \
  --sysctl net.ipv4.ip_forward=1 -p 4567:4567/tcp \
  --cap-add NET_ADMIN --device /dev/net/tun \
  -e MODE=server phantun-runtime -- --local 4567 --remote app:1234 --tun ptun0
nsenter -n -t "$(docker inspect -f '{{.State.Pid}}' phantun-server)" nft -f - <<EOF
table inet phantun_server {
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    iifname "eth0" tcp dport 4567 dnat ip to 192.168.201.2
    iifname "eth0" tcp dport 4567 dnat ip6 to fcc9::2
  }
}
EOF`;

/** README block docker-bridge-client. */
const BRIDGE_CLIENT = String
  .raw`docker run -d --name phantun-client --network phantun \
  --sysctl net.ipv4.ip_forward=1 -p 127.0.0.1:1234:1234/udp \
  --cap-add NET_ADMIN --device /dev/net/tun \
  -e MODE=client phantun-runtime -- --local 0.0.0.0:1234 --remote server.example.com:4567 --tun ptun0
nsenter -n -t "$(docker inspect -f '{{.State.Pid}}' phantun-client)" nft -f - <<EOF
table inet phantun_client {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    iifname "ptun0" oifname "eth0" masquerade
  }
}
EOF`;

/** README block docker-compose. */
const COMPOSE = String.raw`docker-compose up -d phantun-server
PHANTUN_SERVER=server.example.com docker-compose up -d phantun-client
docker-compose stop`;

/** One replacement applied to README text before it runs here. */
type Replacement = readonly [string | RegExp, string];

/** The image's name as a word of a command line. */
const IMAGE_NAME: Replacement = [/(?<=\s)phantun-runtime(?=\s|$)/gm, IMAGE];
/** Container names phantun-server and phantun-client. */
const NAMES: Replacement = [/\bphantun-(server|client)\b/g, `${PREFIX}$1`];

/** `--device /dev/net/tun` becomes the test's own node. */
const device = (tun: string): Replacement => [
  "--device /dev/net/tun",
  `--device ${tun}:/dev/net/tun`,
];

/** Runs README text with `sh -e` after `replacements` and {@link IMAGE_NAME}. */
function readme(
  text: string,
  replacements: Replacement[],
  env: Record<string, string> = {},
): Promise<Output> {
  const script = [...replacements, IMAGE_NAME].reduce(
    (script, [from, to]) => script.replaceAll(from, to),
    text,
  );
  return exec(["sh", "-ec", script], {
    cwd: ROOT,
    env: {
      PATH: `/usr/bin:${Deno.env.get("PATH")}`,
      DOCKER_BUILDKIT: "1",
      ...env,
    },
  });
}

/** {@link readme}, asserted to succeed; its trimmed stdout. */
async function readmeOk(
  text: string,
  replacements: Replacement[],
  env: Record<string, string> = {},
): Promise<string> {
  const result = await readme(text, replacements, env);
  assert.equal(result.code, 0, `${text}\n${result.stderr}`);
  return result.stdout.trim();
}

/** The lines of README text from `start` to `end` (exclusive). */
function lines(text: string, start: number, end?: number): string {
  return text.split("\n").slice(start, end).join("\n");
}

// ---------------------------------------------------------------- build

/** The local upstream: its directory, its two commits and their archives. */
type Upstream = {
  readonly dir: string;
  readonly head: string;
  readonly first: string;
  readonly digest: (commit: string) => Promise<string>;
};

let upstream: Upstream | undefined;

/** Makes the stand-in base images and the local upstream, once. */
async function prepare(): Promise<Upstream> {
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
async function withUpstream<T>(
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
async function replacing<T>(tag: string, fn: () => Promise<T>): Promise<T> {
  const id = () => exec(cmd`${DOCKER} image inspect -f {{.Id}} ${tag}`);
  const before = await id();
  const result = await fn();
  if (before.code === 0 && before.stdout !== (await id()).stdout) {
    await exec(cmd`${DOCKER} rmi ${before.stdout.trim()}`);
  }
  return result;
}

/** A README `docker build` line, run against the local upstream. */
function readmeBuild(
  text: string,
  env: Record<string, string> = {},
): Promise<Output> {
  return withUpstream((url) =>
    replacing(IMAGE, () =>
      readme(text, [[
        "docker build",
        `docker build --network host --build-arg PHANTUN_UPSTREAM=${url}`,
      ]], env))
  );
}

type BuildOptions = {
  /** `--build-arg NAME=VALUE` for each. */
  readonly args?: Record<string, string>;
  /** More `docker build` flags. */
  readonly flags?: string[];
  /** The environment added; BuildKit by default. */
  readonly env?: Record<string, string>;
};

/** A build that is not in the README: `tag` from the upstream at `url`. */
function buildFrom(
  url: string,
  tag: string,
  options: BuildOptions = {},
): Promise<Output> {
  const args = Object.entries(options.args ?? {}).flatMap(([key, value]) =>
    cmd`--build-arg ${key}=${value}`
  );
  return replacing(tag, () =>
    exec(
      cmd`${DOCKER} build --network host --build-arg PHANTUN_UPSTREAM=${url} ${args} ${
        options.flags ?? []
      } -t ${tag} .`,
      { env: options.env ?? { DOCKER_BUILDKIT: "1" }, cwd: ROOT },
    ));
}

/** {@link buildFrom} the local upstream, served for this build. */
function build(tag: string, options: BuildOptions = {}): Promise<Output> {
  return withUpstream((url) => buildFrom(url, tag, options));
}

/** True when BuildKit's plain progress shows the cargo build taken from the cache. */
function cargoCached(progress: string): boolean {
  const step = progress.match(/^#(\d+) \[build \d+\/\d+\] RUN cargo build/m);
  return step !== null &&
    new RegExp(`^#${step[1]} CACHED$`, "m").test(progress);
}

/** The README's audit commands for `tag`: its labels and its record of phantun. */
async function audit(
  tag = IMAGE,
): Promise<{ labels: Record<string, string>; record: string }> {
  const [labels, ...record] = (await readmeOk(AUDIT, [[IMAGE_NAME[0], tag]]))
    .split("\n");
  return { labels: JSON.parse(labels), record: record.join("\n") };
}

/** Removes an image tag, if it exists. */
async function untag(tag: string): Promise<void> {
  await exec([DOCKER, "rmi", tag]);
}

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
    assert.match(result.stderr, /BuildKit is required/);
  },
);

// ---------------------------------------------------------------- image

imageTest(
  "docker inspect shows user 65532 and an exec-form entrypoint: tini, then deno run -P=production; with no arguments the image prints its usage",
  async () => {
    const config = JSON.parse(await inspect("{{json .Config}}", IMAGE));
    assert.equal(config.User, "65532:65532");
    assert.deepEqual(
      config.Entrypoint,
      cmd`/usr/bin/tini -- ${DENO_BIN} run --no-prompt --quiet --config=/app/deno.json -P=production /app/main.js`,
    );
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

/** The only libraries allowed: what deno and phantun link, and the loader. */
const LIBRARY =
  /^\/lib(64)?\/([^/]+\/)?(libc\.so\.6|libm\.so\.6|libgcc_s\.so\.1|libdl\.so\.2|librt\.so\.1|libpthread\.so\.0|ld-linux-[^/]+\.so\.\d)$/;

imageTest(
  "the image holds only tini, deno, phantun, their libraries and the supervisor as one module with its code cache: no shell, no setuid or setgid file, cap_net_admin on phantun only",
  async () => {
    const dir = tempDir();
    const id = await docker(cmd`create ${IMAGE}`);
    try {
      await ok([
        "sh",
        "-c",
        `${DOCKER} export ${id} | tar -C ${dir} -x --xattrs --xattrs-include='*'`,
      ]);
    } finally {
      await remove(id);
    }
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
      DENO_BIN,
      "/usr/local/bin/phantun_client",
      "/usr/local/bin/phantun_server",
      RECORD,
      "/app/deno.json",
      "/app/deno.lock",
      "/app/main.js",
      "/deno-dir/v8_code_cache_v2",
    ];
    for (const file of expected) assert.ok(files.includes(file), file);
    for (const file of files) {
      assert.ok(
        expected.includes(file) || LIBRARY.test(file) ||
          file.startsWith("/deno-dir/"),
        `unexpected ${file}`,
      );
    }
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
      await remove(id);
    }
    const image = Deno.readTextFileSync(`${dir}/image.js`);
    assert.equal(image, Deno.readTextFileSync(`${dir}/main.js`));
    for (const entry of Deno.readDirSync(`${ROOT}lib`)) {
      assert.ok(image.includes(`// lib/${entry.name}\n`), entry.name);
    }
  },
);

// ---------------------------------------------------------------- running

/**
 * The /proc/PID/status of the container's tini (PID 1), of deno under it and
 * of phantun under that. Read with cat: Deno guards /proc.
 */
async function processChain(name: string): Promise<string[]> {
  const pids = [await inspect("{{.State.Pid}}", name)];
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
function capEff(status: string): bigint {
  return BigInt(`0x${status.match(/^CapEff:\s+([0-9a-f]+)$/m)![1]}`);
}

/** Runs a command in the container's network namespace, as a host admin would. */
async function inNetns(name: string, argv: string[]): Promise<Output> {
  const pid = await inspect("{{.State.Pid}}", name);
  return await exec(cmd`nsenter -n -t ${pid} ${argv}`);
}

/** Polls until the interface exists in the container's network namespace. */
async function waitForLink(name: string, link: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while ((await inNetns(name, cmd`ip link show ${link}`)).code !== 0) {
    const { stderr } = await exec(cmd`${DOCKER} logs ${name}`);
    assert(Date.now() < deadline, `no ${link} in ${name}: ${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A phantun server creating ptun0, with `flags` before the image. */
const SERVER = (flags: string[]) =>
  cmd`${flags} -e MODE=server ${IMAGE} -- --local 4567 --remote 127.0.0.1:1234 --tun ptun0`;

/** Starts a server container named `name`. */
async function startServer(name: string, flags: string[]): Promise<void> {
  await remove(name);
  await docker(cmd`run -d --name ${name} ${SERVER(flags)}`);
}

imageTest(
  "non-root profile: phantun creates its TUN with NET_ADMIN from its file capability while the supervisor holds none, also with --cap-drop ALL and --read-only",
  async () => {
    const tun = await tunNode();
    const name = `${PREFIX}profile`;
    try {
      for (
        const profile of [
          cmd`--cap-add NET_ADMIN`,
          cmd`--cap-drop ALL --cap-add NET_ADMIN --read-only`,
        ]
      ) {
        await startServer(name, cmd`${profile} --device ${tun}:/dev/net/tun`);
        await waitForLink(name, "ptun0");
        const [tini, deno, phantun] = await processChain(name);
        assert.equal(capEff(tini), 0n, "tini");
        assert.equal(capEff(deno), 0n, "the supervisor");
        assert.equal(capEff(phantun), NET_ADMIN, "phantun");
        assert.match(phantun, /^Uid:\s+65532\s/m);
      }
    } finally {
      await remove(name);
    }
  },
);

imageTest(
  "the README's root profile works under no-new-privileges, where the non-root profile fails with phantun's EPERM",
  async () => {
    const tun = await tunNode();
    const name = `${PREFIX}server`;
    await remove(name);
    try {
      // A network namespace of its own instead of the host's.
      await readmeOk(ROOT_PROFILE, [
        ["--network host", "--network none"],
        device(tun),
        NAMES,
      ]);
      await waitForLink(name, "ptun0");
      const [, deno, phantun] = await processChain(name);
      assert.equal(capEff(deno), NET_ADMIN, "the supervisor, as root");
      assert.equal(capEff(phantun), NET_ADMIN, "phantun");
    } finally {
      await remove(name);
    }
    const refused = await exec(
      cmd`${DOCKER} run --rm ${
        SERVER(
          cmd`--cap-add NET_ADMIN --security-opt no-new-privileges --device ${tun}:/dev/net/tun`,
        )
      }`,
    );
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /EPERM/);
  },
);

imageTest(
  "without NET_ADMIN phantun cannot be started (126); without the TUN device phantun fails (non-zero)",
  async () => {
    const tun = await tunNode();
    const noCap = await exec(
      cmd`${DOCKER} run --rm ${SERVER(cmd`--device ${tun}:/dev/net/tun`)}`,
    );
    assert.equal(noCap.code, 126, noCap.stderr);
    assert.match(
      noCap.stderr,
      /cannot start "\/usr\/local\/bin\/phantun_server": .*Operation not permitted/,
    );
    const noDevice = await exec(
      cmd`${DOCKER} run --rm ${SERVER(cmd`--cap-add NET_ADMIN`)}`,
    );
    assert.notEqual(noDevice.code, 0);
    assert.match(noDevice.stderr, /No such file or directory/);
  },
);

/** The README's handoff flags: the bind-mounted host file and its variables. */
const handoff = (file: string) =>
  cmd`-v ${file}:${IFACE} -e IFACE_FILE=${IFACE} -e IFACE_NAME=ptun0`;

imageTest(
  "docker stop right after docker run returns promptly with 143 and leaves the bind-mounted IFACE_FILE empty",
  async () => {
    const tun = await tunNode();
    const file = await ifaceFile();
    const name = `${PREFIX}stop`;
    const flags = cmd`--cap-add NET_ADMIN --device ${tun}:/dev/net/tun ${
      handoff(file)
    }`;
    try {
      for (let round = 0; round < 3; round++) {
        await startServer(name, flags);
        const started = Date.now();
        await docker(cmd`stop ${name}`);
        const took = Date.now() - started;
        assert.ok(took < 5_000, `docker stop took ${took} ms`);
        assert.equal(await inspect("{{.State.ExitCode}}", name), "143");
        assert.equal(Deno.readTextFileSync(file), "");
      }
      await startServer(name, flags);
      await waitForLink(name, "ptun0");
      assert.equal(Deno.readTextFileSync(file), "ptun0");
      await docker(cmd`stop ${name}`);
      assert.equal(await inspect("{{.State.ExitCode}}", name), "143");
      assert.equal(Deno.readTextFileSync(file), "");
    } finally {
      await remove(name);
    }
  },
);

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

imageTest(
  "under --read-only the IFACE file is the only path outside /dev, /proc and /sys that the default user or root can write",
  async () => {
    const file = await ifaceFile();
    for (const user of ["65532", "0"]) {
      const found = await docker(
        cmd`run --rm --read-only --user ${user} -v ${file}:${IFACE} --entrypoint ${DENO_BIN} ${IMAGE} eval ${WRITABLE_PROBE}`,
      );
      assert.deepEqual(JSON.parse(found), [IFACE], `user ${user}`);
    }
  },
);

// ---------------------------------------------------------------- networks

/** Deno code for a UDP echo server on `port`. */
const udpEcho = (port: number) =>
  `import dgram from "node:dgram";
const socket = dgram.createSocket("udp4");
socket.on("message", (message, peer) => socket.send(message, peer.port, peer.address));
socket.bind(${port});`;

/** Deno code that sends a datagram every 200 ms until it is echoed, 15 s at most. */
const udpSend = (host: string, port: number) =>
  `import dgram from "node:dgram";
const socket = dgram.createSocket("udp4");
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
async function denoContainer(
  name: string,
  network: string,
  code: string,
): Promise<void> {
  await remove(name);
  await docker(
    cmd`run -d --name ${name} --network ${network} --entrypoint ${DENO_BIN} ${IMAGE} eval ${code}`,
  );
}

/** Asserts a datagram sent from `network` to host:port comes back. */
async function assertEcho(
  network: string,
  host: string,
  port: number,
): Promise<void> {
  const result = await exec(
    cmd`${DOCKER} run --rm --network ${network} --entrypoint ${DENO_BIN} ${IMAGE} eval ${
      udpSend(host, port)
    }`,
  );
  assert.equal(result.stdout.trim(), "echoed", result.stderr);
}

/** The container's address on its network. */
function ipOf(name: string): Promise<string> {
  return inspect(
    "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
    name,
  );
}

/** Creates a network for `fn`; removes it and `containers` afterwards. */
async function withNetwork(
  net: string,
  containers: string[],
  fn: () => Promise<void>,
): Promise<void> {
  await remove(...containers);
  await exec(cmd`${DOCKER} network rm ${net}`);
  await docker(cmd`network create ${net}`);
  try {
    await fn();
  } finally {
    await remove(...containers);
    await exec(cmd`${DOCKER} network rm ${net}`);
  }
}

/** The two "hosts" of a test and what the README's commands need to use them. */
type Hosts = {
  readonly client: string;
  readonly server: string;
  /** `--network host` of a README command becomes the holder's namespace. */
  readonly on: (host: string) => Replacement;
};

/**
 * Two "hosts" on a network of their own: holder containers whose namespaces
 * get the README's host setup (variables, forwarding, nftables) through
 * nsenter. The server host runs a UDP echo on port 1234, the service behind
 * phantun.
 */
async function withHosts(
  label: string,
  fn: (hosts: Hosts) => Promise<void>,
): Promise<void> {
  const net = `${PREFIX}${label}`;
  const client = `${net}-client-host`;
  const server = `${net}-server-host`;
  await withNetwork(net, [client, server], async () => {
    await denoContainer(client, net, "setInterval(() => {}, 3_600_000);");
    await denoContainer(server, net, udpEcho(1234));
    const setup = readmeBlock("variables") + readmeBlock("forwarding");
    for (
      const [host, nat] of [[client, "client-nft"], [server, "server-nft"]]
    ) {
      const result = await inNetns(
        host,
        ["sh", "-ec", setup + readmeBlock(nat)],
      );
      assert.equal(result.code, 0, result.stderr);
    }
    await fn({
      client,
      server,
      on: (host) => ["--network host", `--network container:${host}`],
    });
  });
}

imageTest(
  "the README quick start's docker run creates ptun0 in the host's namespace and ends with 143 when docker run gets SIGTERM",
  async () => {
    const tun = await tunNode();
    await withHosts("quickstart", async (hosts) => {
      const script = [hosts.on(hosts.server), device(tun), IMAGE_NAME].reduce(
        (text, [from, to]) => text.replaceAll(from, to),
        lines(QUICKSTART, 1),
      );
      const run = new Deno.Command("sh", {
        args: ["-ec", `exec ${script}`],
        env: { PATH: `/usr/bin:${Deno.env.get("PATH")}` },
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      try {
        await waitForLink(hosts.server, "ptun0");
      } finally {
        run.kill("SIGTERM");
      }
      const { code, stderr } = await run.output();
      assert.equal(code, 143, new TextDecoder().decode(stderr));
    });
  },
);

imageTest(
  "host network: the README's docker run examples carry UDP echo and hand off ptun0 through the bind-mounted files; docker stop ends them with 143",
  async () => {
    const tun = await tunNode();
    const dir = tempDir();
    const names = [`${PREFIX}server`, `${PREFIX}client`];
    await withHosts("host", async (hosts) => {
      const files: Replacement = ["/run/phantun/", `${dir}/`];
      await readmeOk(IFACE_FILES, [files]);
      const address = await ipOf(hosts.server);
      try {
        await readmeOk(HOST_SERVER, [
          hosts.on(hosts.server),
          device(tun),
          files,
          NAMES,
        ]);
        await readmeOk(HOST_CLIENT, [
          hosts.on(hosts.client),
          device(tun),
          files,
          NAMES,
          ["server.example.com", address],
        ]);
        for (const name of names) await waitForLink(name, "ptun0");
        for (const mode of ["server", "client"]) {
          assert.equal(Deno.readTextFileSync(`${dir}/${mode}.iface`), "ptun0");
        }
        await assertEcho(`container:${hosts.client}`, "127.0.0.1", 1234);
        assert.equal(await readmeOk(STOP, [NAMES]), `${PREFIX}server\n143`);
        assert.equal(Deno.readTextFileSync(`${dir}/server.iface`), "");
        assert.equal(
          await readmeOk(STOP, [[/phantun-server/g, `${PREFIX}client`]]),
          `${PREFIX}client\n143`,
        );
        assert.equal(Deno.readTextFileSync(`${dir}/client.iface`), "");
      } finally {
        await remove(...names);
      }
    });
  },
);

imageTest(
  "bridge network: the README's client and server containers carry UDP echo, with ip_forward from --sysctl and NAT applied in their namespaces from outside",
  async () => {
    const tun = await tunNode();
    const net = `${PREFIX}bridge`;
    const app = `${net}-app`;
    const [server, client] = [`${PREFIX}server`, `${PREFIX}client`];
    const bridge: Replacement[] = [
      [/(network create|--network) phantun\b/g, `$1 ${net}`],
      ["-p 4567:4567/tcp ", ""],
      ["-p 127.0.0.1:1234:1234/udp ", ""],
      ["app:1234", `${app}:1234`],
      ["server.example.com", server],
      device(tun),
      NAMES,
    ];
    await remove(server, client);
    await exec(cmd`${DOCKER} network rm ${net}`);
    try {
      await readmeOk(lines(BRIDGE_SERVER, 0, 1), bridge);
      await denoContainer(app, net, udpEcho(1234));
      await readmeOk(lines(BRIDGE_SERVER, 1), bridge);
      await readmeOk(BRIDGE_CLIENT, bridge);
      await waitForLink(server, "ptun0");
      await waitForLink(client, "ptun0");
      await assertEcho(net, client, 1234);
    } finally {
      await remove(app, server, client);
      await exec(cmd`${DOCKER} network rm ${net}`);
    }
  },
);

imageTest(
  "compose.yaml under docker-compose: the README's commands start the server and the client, which carry UDP echo and stop with 143",
  async () => {
    const tun = await tunNode();
    await withHosts("compose", async (hosts) => {
      const dir = tempDir();
      // Only what would touch this machine: its network, device and files.
      const override = (mode: "server" | "client") => ({
        image: IMAGE,
        network_mode: `container:${hosts[mode]}`,
        devices: [`${tun}:/dev/net/tun`],
        volumes: [`${dir}/${mode}.iface:${IFACE}`],
      });
      const overrideFile = `${dir}/override.yaml`;
      Deno.writeTextFileSync(
        overrideFile,
        JSON.stringify({
          services: {
            "phantun-server": override("server"),
            "phantun-client": override("client"),
          },
        }),
      );
      const project = `${PREFIX}compose`;
      const compose: Replacement = [
        "docker-compose",
        `docker-compose -f compose.yaml -f ${overrideFile} -p ${project}`,
      ];
      await readmeOk(IFACE_FILES, [["/run/phantun/", `${dir}/`]]);
      const names = [
        `${project}_phantun-server_1`,
        `${project}_phantun-client_1`,
      ];
      try {
        await readmeOk(lines(COMPOSE, 0, 2), [
          compose,
          ["server.example.com", await ipOf(hosts.server)],
        ]);
        for (const name of names) await waitForLink(name, "ptun0");
        assert.equal(Deno.readTextFileSync(`${dir}/server.iface`), "ptun0");
        await assertEcho(`container:${hosts.client}`, "127.0.0.1", 1234);
        const [, deno, phantun] = await processChain(names[1]);
        assert.equal(capEff(deno), 0n);
        assert.equal(capEff(phantun), NET_ADMIN);
        await readmeOk(lines(COMPOSE, 2), [compose]);
        for (const name of names) {
          assert.equal(await inspect("{{.State.ExitCode}}", name), "143");
        }
        assert.equal(Deno.readTextFileSync(`${dir}/server.iface`), "");
        assert.equal(Deno.readTextFileSync(`${dir}/client.iface`), "");
      } finally {
        await readme("docker-compose down", [compose]);
      }
    });
  },
);

imageTest(
  "docker run --restart on-failure with a phantun that crashes at every start keeps IFACE_FILE consistent at every step",
  async () => {
    const report = await restartLoop({ docker: DOCKER, image: IMAGE });
    assert.equal(report.starts, 6);
  },
);
