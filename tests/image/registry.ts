/**
 * A release's surroundings for the image suite: a registry on 127.0.0.1
 * (Debian's docker-registry) holding the base-image stand-ins, buildkitd
 * daemons of our own (built from the Go module proxy) added to buildx as
 * remote builders, and cosign run offline (no Rekor, no Fulcio here).
 */
import assert from "node:assert/strict";
import { waitFor } from "../helpers.ts";
import { readmeBlock } from "../../e2e/topology.ts";
import {
  CACHE,
  cmd,
  DOCKER,
  docker,
  exec,
  isFile,
  ok,
  prepare,
  ROOT,
  tempDir,
} from "./harness.ts";

/** deploy/README.md block buildx-remote. */
export const BUILDX_REMOTE = readmeBlock("buildx-remote");

const BUILDKITD = `${CACHE}/buildkitd-v0.34.2`;
const COSIGN = `${CACHE}/cosign-v2.6.5`;

/** Why the release tests cannot run here, or null. */
export const MISSING_RELEASE_TOOLS = !isFile(BUILDKITD)
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
 * A registry on 127.0.0.1 only, in a temporary directory, holding the
 * Dockerfile's base images (the local stand-ins, made by {@link prepare}) as
 * docker.io names them; the images the engine pulled from it are removed
 * afterwards.
 */
export async function withRegistry(
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
    // What the engine pulled from it (README's check pulls the release).
    const images = await exec(
      cmd`${DOCKER.bin} images --format ${"{{.ID}} {{.Repository}}"}`,
    );
    const pulled = images.stdout.split("\n")
      .filter((line) => line.includes(` ${address}/`))
      .map((line) => line.split(" ")[0]);
    if (pulled.length > 0) {
      await exec(cmd`${DOCKER.bin} rmi -f ${[...new Set(pulled)]}`);
    }
  }
}

/** How {@link withBuildkit}'s daemon differs from the suite's usual one. */
export type Elsewhere = {
  /** Its hostname (a UTS namespace of its own), TZ and umask, also the client's. */
  readonly hostname: string;
  readonly tz: string;
  readonly umask: string;
};

/**
 * buildkitd, rootful with this machine's runc (and QEMU's binfmt handler for
 * arm64), mirroring docker.io to `registry`, added to buildx by the README's
 * command as builder phantun-release. buildx keeps its state in a directory
 * of the test's (BUILDX_CONFIG in the environment `fn` gets), so the
 * machine's own builders are never touched. Its cache is kept outside git,
 * pruned to 12 GB when `fn` ends;
 * `elsewhere` gives it an empty cache of its own instead, and another
 * hostname, time zone and umask, for both the daemon and `fn`'s commands
 * (run them through the `run` words `fn` gets).
 */
export async function withBuildkit(
  registry: string,
  fn: (env: Record<string, string>, run: string[]) => Promise<void>,
  elsewhere?: Elsewhere,
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
  const env = {
    ...DOCKER.env,
    BUILDX_CONFIG: `${dir}/buildx`,
    ...(elsewhere ? { TZ: elsewhere.tz } : {}),
  };
  // The same hostname and umask for the daemon and the test's commands.
  const run = elsewhere
    ? [
      "unshare",
      "--uts",
      "sh",
      "-c",
      `hostname ${elsewhere.hostname} && umask ${elsewhere.umask} && exec "$@"`,
      "sh",
    ]
    : [];
  const [daemon, create] = BUILDX_REMOTE.split("\n");
  const buildkitd = [
    ...run,
    "sh",
    "-c",
    `exec ${
      daemon.replace(/ &$/, "").replace("buildkitd", BUILDKITD)
        .replace("unix:///run/buildkit/buildkitd.sock", `unix://${socket}`)
    } --config ${dir}/buildkitd.toml --root ${
      elsewhere ? `${dir}/root` : `${CACHE}/buildkit`
    }`,
  ];
  const daemonProcess = new Deno.Command(buildkitd[0], {
    args: buildkitd.slice(1),
    env,
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
    await ok([
      ...run,
      "sh",
      "-c",
      create.replace("docker ", `${DOCKER.bin} `)
        .replace("unix:///run/buildkit/buildkitd.sock", `unix://${socket}`),
    ], { env });
    const platforms = await ok(
      [...run, ...cmd`${DOCKER.bin} buildx inspect --bootstrap`],
      { env },
    );
    assert.match(platforms, /linux\/amd64/);
    assert.match(platforms, /linux\/arm64/);
    await fn(env, run);
  } finally {
    // The kept cache stays bounded (a run of the suite adds about 10 GB):
    // buildkitd's own collection waits a minute after a build, and the
    // daemon is stopped sooner.
    if (!elsewhere) {
      await exec(
        cmd`${DOCKER.bin} buildx prune --builder phantun-release --force --max-used-space 12gb`,
        { env },
      );
    }
    await exec(cmd`${DOCKER.bin} buildx rm phantun-release`, { env });
    await stop(daemonProcess);
    if (elsewhere) await exec(cmd`rm -rf ${dir}/root`);
  }
}

/**
 * A directory for PATH holding `cosign`: the provisioned binary, run offline
 * (signatures and attestations stay in the registry: no transparency log
 * upload, none checked; the registry on 127.0.0.1 speaks plain HTTP).
 */
export function offlineCosign(): string {
  const bin = tempDir();
  Deno.writeTextFileSync(
    `${bin}/cosign`,
    `#!/bin/sh
command=$1; shift
case "$command" in
  sign|attest) exec ${COSIGN} "$command" --tlog-upload=false --allow-insecure-registry "$@" ;;
  verify|verify-attestation) exec ${COSIGN} "$command" --insecure-ignore-tlog=true --allow-insecure-registry "$@" ;;
  *) exec ${COSIGN} "$command" "$@" ;;
esac
`,
    { mode: 0o755 },
  );
  return bin;
}

// deno-lint-ignore no-explicit-any
export type Json = any;

/** The OCI index (or manifest list) behind `ref`, as the registry serves it. */
export async function index(
  ref: string,
  env: Record<string, string>,
): Promise<Json> {
  return JSON.parse(
    await ok(cmd`${DOCKER.bin} buildx imagetools inspect --raw ${ref}`, {
      env,
    }),
  );
}
