/**
 * The release path: the specification's multi-platform commands on a
 * BuildKit daemon and a registry run here (buildkitd built from the Go module
 * proxy, Debian's docker-registry on 127.0.0.1, holding the base-image
 * stand-ins that buildkitd's docker.io mirror serves), the pushed manifest
 * list and its provenance, each platform pulled by digest and run, the
 * arm64 tarball, and the README's signing with cosign, which a tampered tag
 * fails.
 */
import assert from "node:assert/strict";
import { waitFor } from "../helpers.ts";
import {
  CACHE,
  cmd,
  DOCKER,
  docker,
  elfFiles,
  engineExec,
  exec,
  exportImage,
  imageTest,
  inspect,
  isFile,
  lines,
  ok,
  prepare,
  readme,
  readmeOk,
  ROOT,
  tempDir,
  untag,
  VERSION,
  withUpstream,
} from "./harness.ts";

/** deploy/README.md block buildx-remote. */
const BUILDX_REMOTE = String
  .raw`buildkitd --addr unix:///run/buildkit/buildkitd.sock &
docker buildx create --name phantun-release --driver remote unix:///run/buildkit/buildkitd.sock --use`;

/** deploy/README.md block buildx-multiarch (the specification's commands). */
const MULTIARCH = String
  .raw`docker buildx build --platform linux/amd64,linux/arm64 -t phantun-runtime:multiarch --push .
docker buildx build --platform linux/arm64 --output type=docker,dest=phantun-runtime-arm64.tar .
docker load -i phantun-runtime-arm64.tar`;

/** deploy/README.md block release. */
const RELEASE = String
  .raw`docker buildx build --platform linux/amd64,linux/arm64 \
  --build-arg RUNTIME_SOURCE="$SOURCE" --build-arg RUNTIME_REVISION="$(git rev-parse HEAD)" \
  --build-arg PHANTUN_COMMIT="$COMMIT" --build-arg SOURCE_DATE_EPOCH="$(git log -1 --format=%ct)" \
  --provenance=mode=max -t "$REGISTRY/phantun-runtime:$VERSION" --push .
digest=$(docker buildx imagetools inspect "$REGISTRY/phantun-runtime:$VERSION" --format '{{json .Manifest.Digest}}' | tr -d '"')
cosign generate-key-pair
cosign sign --yes --key cosign.key "$REGISTRY/phantun-runtime@$digest"`;

/** deploy/README.md block release-verify. */
const VERIFY = String
  .raw`cosign verify --key cosign.pub "$REGISTRY/phantun-runtime:$VERSION"
docker buildx imagetools inspect "$REGISTRY/phantun-runtime:$VERSION" --format '{{json .Provenance}}'`;

const BUILDKITD = `${CACHE}/buildkitd-v0.34.2`;
const COSIGN = `${CACHE}/cosign-v2.6.5`;
const MISSING = !isFile(BUILDKITD)
  ? `${BUILDKITD} not found (scripts/provision-tools.sh)`
  : !isFile(COSIGN)
  ? `${COSIGN} not found (scripts/provision-tools.sh)`
  : !isFile("/usr/bin/docker-registry")
  ? "/usr/bin/docker-registry not found (apt-get install docker-registry)"
  : null;

/** A free TCP port on the loopback. */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** A daemon process, killed and awaited when the test is done. */
async function stop(child: Deno.ChildProcess): Promise<void> {
  try {
    child.kill("SIGTERM");
  } catch {
    // gone already
  }
  await child.status;
}

/** The default of a base image's ARG in the Dockerfile (e.g. debian:12.15-slim). */
function baseImage(arg: "DEBIAN_IMAGE" | "RUST_IMAGE"): string {
  const dockerfile = Deno.readTextFileSync(`${ROOT}Dockerfile`);
  return dockerfile.match(new RegExp(`^ARG ${arg}=(.*)$`, "m"))![1];
}

/** Tags the local `image` as `target`, pushes it, and removes the tag. */
async function push(image: string, target: string): Promise<void> {
  await docker(cmd`tag ${image} ${target}`);
  await docker(cmd`push -q ${target}`);
  await docker(cmd`rmi ${target}`);
}

/**
 * A registry on 127.0.0.1 only, in memory of a temporary directory, holding
 * the Dockerfile's base images (the local stand-ins, made by
 * {@link prepare}) as docker.io names it.
 */
async function withRegistry(
  fn: (address: string) => Promise<void>,
): Promise<void> {
  await prepare();
  const dir = tempDir();
  const address = `127.0.0.1:${freePort()}`;
  Deno.writeTextFileSync(
    `${dir}/config.yml`,
    `version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: ${dir}/data
http:
  addr: ${address}
`,
  );
  const registry = new Deno.Command("docker-registry", {
    args: ["serve", `${dir}/config.yml`],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    await waitFor(
      "the registry to come up",
      async () => (await exec(cmd`curl -fs http://${address}/v2/`)).code === 0,
      30_000,
      200,
    );
    for (const arg of ["DEBIAN_IMAGE", "RUST_IMAGE"] as const) {
      const image = baseImage(arg);
      await push(image, `${address}/library/${image}`);
    }
    await fn(address);
  } finally {
    await stop(registry);
  }
}

/**
 * buildkitd, rootful with this machine's runc (and QEMU's binfmt handler for
 * arm64), mirroring docker.io to `registry`; its cache is kept outside git.
 * The README's commands add it to buildx as a remote builder; buildx keeps
 * its state in a directory of the test's (BUILDX_CONFIG), so the machine's
 * own builders are never touched.
 */
async function withBuildkit(
  registry: string,
  fn: (env: Record<string, string>) => Promise<void>,
): Promise<void> {
  const dir = tempDir();
  Deno.writeTextFileSync(
    `${dir}/buildkitd.toml`,
    `[worker.oci]
  enabled = true
[worker.containerd]
  enabled = false
[registry."docker.io"]
  mirrors = ["${registry}"]
[registry."${registry}"]
  http = true
`,
  );
  const socket = `${dir}/buildkitd.sock`;
  const env = { ...DOCKER.env, BUILDX_CONFIG: `${dir}/buildx` };
  const [daemon, create] = BUILDX_REMOTE.split("\n");
  const buildkitd = new Deno.Command("sh", {
    args: [
      "-c",
      `exec ${
        daemon.replace(/ &$/, "").replace("buildkitd", BUILDKITD)
          .replace("unix:///run/buildkit/buildkitd.sock", `unix://${socket}`)
      } --config ${dir}/buildkitd.toml --root ${CACHE}/buildkit`,
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    await waitFor(
      "buildkitd to come up",
      async () => (await exec(cmd`test -S ${socket}`)).code === 0,
      30_000,
      200,
    );
    await readmeOk(DOCKER, create, [
      ["unix:///run/buildkit/buildkitd.sock", `unix://${socket}`],
    ], { env });
    const platforms = await ok(cmd`${DOCKER.bin} buildx inspect --bootstrap`, {
      env,
    });
    assert.match(platforms, /linux\/amd64/);
    assert.match(platforms, /linux\/arm64/);
    await fn(env);
  } finally {
    await exec(cmd`${DOCKER.bin} buildx rm phantun-release`, { env });
    await stop(buildkitd);
  }
}

// deno-lint-ignore no-explicit-any
type Json = any;

/** The OCI index (or manifest list) behind `ref`, as the registry serves it. */
async function index(ref: string, env: Record<string, string>): Promise<Json> {
  return JSON.parse(
    await ok(cmd`${DOCKER.bin} buildx imagetools inspect --raw ${ref}`, {
      env,
    }),
  );
}

/** ELF e_machine for each platform. */
const MACHINE: Record<string, number> = { amd64: 62, arm64: 183 };

imageTest(
  "the specification's multi-platform commands on a BuildKit and a registry run here: the push is a manifest list of linux/amd64 and linux/arm64, each pulled by digest runs and prints its version (arm64 under QEMU), their labels agree, every ELF file is its platform's; the arm64 tarball loads and runs",
  async () => {
    await withRegistry((registry) =>
      withBuildkit(registry, (env) =>
        withUpstream(async (url) => {
          const cwd = tempDir();
          const build = (text: string) =>
            readmeOk(DOCKER, text, [
              [
                /docker buildx build/g,
                `docker buildx build --build-arg PHANTUN_UPSTREAM=${url}`,
              ],
              [
                " -t phantun-runtime:multiarch",
                ` -t ${registry}/phantun-runtime:multiarch`,
              ],
              [/ \.$/gm, ` ${ROOT}`],
              ["dest=phantun-runtime-arm64.tar", `dest=${cwd}/arm64.tar`],
              ["-i phantun-runtime-arm64.tar", `-i ${cwd}/arm64.tar`],
            ], { env, cwd });
          await build(lines(MULTIARCH, 0, 1));
          const ref = `${registry}/phantun-runtime:multiarch`;
          const list = await index(ref, env);
          const images = list.manifests.filter((m: Json) =>
            m.platform?.os === "linux"
          );
          assert.deepEqual(
            images.map((m: Json) => m.platform.architecture).sort(),
            ["amd64", "arm64"],
          );
          // What was pushed, for the record of the run.
          const digest = await ok([
            DOCKER.bin,
            ...cmd`buildx imagetools inspect ${ref} --format`,
            "{{json .Manifest.Digest}}",
          ], { env });
          console.log(
            `pushed ${ref} ${digest.replaceAll('"', "")}: ${
              images.map((m: Json) =>
                `linux/${m.platform.architecture} ${m.digest}`
              )
                .join(", ")
            }`,
          );
          const labels: string[] = [];
          for (const image of images) {
            const arch = image.platform.architecture;
            const pinned = `${registry}/phantun-runtime@${image.digest}`;
            await docker(cmd`pull -q ${pinned}`);
            try {
              const { stdout, stderr } = await engineExec(
                DOCKER,
                cmd`run --rm ${pinned} --version`,
              );
              assert.equal(
                stdout.trim(),
                `phantun-runtime ${VERSION}`,
                `${arch}: ${stderr}`,
              );
              labels.push(
                await inspect(DOCKER, "{{json .Config.Labels}}", pinned),
              );
              for (
                const [path, machine] of elfFiles(await exportImage(pinned))
              ) {
                assert.equal(machine, MACHINE[arch], `${arch}: ${path}`);
              }
            } finally {
              await untag(pinned);
            }
          }
          assert.equal(labels[0], labels[1], "the platforms' labels differ");
          const loaded = await build(lines(MULTIARCH, 1));
          const tag = loaded.match(/Loaded image(?: ID)?: (\S+)/)?.[1];
          assert.ok(tag, loaded);
          try {
            assert.equal(
              await docker(cmd`run --rm ${tag} --version`),
              `phantun-runtime ${VERSION}`,
            );
            assert.equal(
              await docker(cmd`image inspect -f {{.Architecture}} ${tag}`),
              "arm64",
            );
          } finally {
            await untag(tag);
          }
        }))
    );
  },
  DOCKER,
  MISSING,
);

imageTest(
  "the README's release: a signed multi-platform push with a max-mode provenance attestation naming phantun's commit; cosign verify passes, and fails once the tag names another image",
  async () => {
    const { head } = await prepare();
    await withRegistry((registry) =>
      withBuildkit(registry, (env) =>
        withUpstream(async (url) => {
          const cwd = tempDir();
          const cosignDir = `${tempDir()}/bin`;
          await ok(cmd`mkdir ${cosignDir}`);
          await ok(cmd`ln -s ${COSIGN} ${cosignDir}/cosign`);
          const variables = {
            ...env,
            PATH: `${cosignDir}:${Deno.env.get("PATH")}`,
            SOURCE: "https://example.invalid/phantun-runtime",
            COMMIT: head,
            REGISTRY: registry,
            VERSION,
            COSIGN_PASSWORD: "",
          };
          // No Rekor or Fulcio here: the signature stays in the registry.
          const offline = [
            [
              "cosign sign --yes",
              "cosign sign --yes --tlog-upload=false --allow-insecure-registry",
            ],
            [
              "cosign verify",
              "cosign verify --insecure-ignore-tlog=true --allow-insecure-registry",
            ],
          ] as const;
          await readmeOk(DOCKER, RELEASE, [
            [
              /docker buildx build/g,
              `docker buildx build --build-arg PHANTUN_UPSTREAM=${url}`,
            ],
            [/ \.$/gm, ` ${ROOT}`],
            [/git (rev-parse|log)/g, `git -C ${ROOT} $1`],
            ...offline,
          ], { env: variables, cwd });
          const ref = `${registry}/phantun-runtime:${VERSION}`;
          const list = await index(ref, env);
          const attestations = list.manifests.filter((m: Json) =>
            m.annotations?.["vnd.docker.reference.type"] ===
              "attestation-manifest"
          );
          assert.equal(attestations.length, 2, "an attestation per platform");
          // cosign's verified signatures (one line), then the provenance.
          const [verified, ...provenance] = (await readmeOk(
            DOCKER,
            VERIFY,
            [...offline],
            { env: variables, cwd },
          )).split("\n");
          assert.ok(JSON.parse(verified).length > 0, "no verified signature");
          const predicates: Json = JSON.parse(provenance.join("\n"));
          for (const platform of ["linux/amd64", "linux/arm64"]) {
            const text = JSON.stringify(predicates[platform]);
            assert.ok(
              text.includes(`"build-arg:PHANTUN_COMMIT":"${head}"`),
              `${platform}: ${text.slice(0, 400)}`,
            );
          }
          // Tampered: the tag now names another image.
          await push(baseImage("DEBIAN_IMAGE"), ref);
          const tampered = await readme(
            DOCKER,
            lines(VERIFY, 0, 1),
            [...offline],
            { env: variables, cwd },
          );
          assert.notEqual(tampered.code, 0, "verify passed for a tampered tag");
          assert.match(tampered.stderr, /no (matching )?signatures/i);
        }))
    );
  },
  DOCKER,
  MISSING,
);
