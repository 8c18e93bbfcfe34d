/**
 * Checks that a published image is what its labelled source builds:
 *
 *   deno task verify IMAGE        (IMAGE: a tag or digest in a registry)
 *
 * Reads the image's labels from the registry (every platform of a manifest
 * list), clones the labelled source at the labelled revision, rebuilds every
 * platform with the labelled build arguments on the current `docker buildx`
 * builder (BuildKit 0.11 or later, so that SOURCE_DATE_EPOCH fixes the
 * image's times), and compares image manifest digests. Prints `MATCH
 * PLATFORM DIGEST` for each platform (and for the list, when it carries no
 * attestation), or `MISMATCH PLATFORM` with the first differing paths of the
 * two images' files (type, mode, owner, time, size, content, link, capability)
 * and exits 1. DESIGN.md §8, "Reproducible".
 */
import { createHash } from "node:crypto";

// deno-lint-ignore no-explicit-any
type Json = any;

/** What a release's labels say about how it was built. */
type Release = {
  readonly source: string;
  readonly revision: string;
  readonly args: Record<string, string>;
};

/** How many differing paths a mismatch prints. */
const SHOWN = 10;

const decoder = new TextDecoder();

/** Runs `argv`; its stdout, or a one-line failure naming the command. */
async function run(argv: string[], cwd?: string): Promise<string> {
  const { code, stdout, stderr } = await new Deno.Command(argv[0], {
    args: argv.slice(1),
    cwd,
    stdin: "null",
  }).output();
  if (code !== 0) {
    fail(`${argv.slice(0, 3).join(" ")} failed: ${decoder.decode(stderr)}`);
  }
  return decoder.decode(stdout);
}

function fail(message: string): never {
  console.error(`verify: ${message.trim().replaceAll("\n", " ")}`);
  Deno.exit(2);
}

/** `docker buildx imagetools inspect REF --format TEMPLATE`, parsed. */
async function inspect(ref: string, template: string): Promise<Json> {
  return JSON.parse(
    await run([
      "docker",
      "buildx",
      "imagetools",
      "inspect",
      ref,
      "--format",
      template,
    ]),
  );
}

/** The build arguments a release's labels record, or why they cannot be had. */
function release(labels: Record<string, string>): Release {
  const label = (name: string) => labels[name] ?? "";
  const commit = label("phantun-runtime.phantun.commit");
  if (!/^[0-9a-f]{40}$/.test(commit)) {
    fail(`not a release: phantun's commit is "${commit}", not pinned`);
  }
  const epoch = label("phantun-runtime.source-date-epoch");
  if (!/^\d+$/.test(epoch)) fail("not a release: no SOURCE_DATE_EPOCH label");
  const source = label("org.opencontainers.image.source");
  const revision = label("org.opencontainers.image.revision");
  if (source === "" || revision === "") {
    fail("not a release: no source or revision label");
  }
  const repository = label("phantun-runtime.phantun.repository").split("/");
  return {
    source,
    revision,
    args: {
      RUNTIME_VERSION: label("org.opencontainers.image.version"),
      RUNTIME_SOURCE: source,
      RUNTIME_REVISION: revision,
      PHANTUN_UPSTREAM: repository.slice(0, -2).join("/"),
      PHANTUN_OWNER: repository.at(-2)!,
      PHANTUN_REPO: repository.at(-1)!,
      PHANTUN_COMMIT: commit,
      PHANTUN_TARBALL_SHA256: label("phantun-runtime.phantun.tarball-sha256"),
      SOURCE_DATE_EPOCH: epoch,
    },
  };
}

/** Refuses a builder whose BuildKit cannot fix an image's times. */
async function requireBuildkit(): Promise<void> {
  const text = await run(["docker", "buildx", "inspect"]);
  const version = text.match(/BuildKit version: *v?(\d+)\.(\d+)/);
  if (!version || Number(version[1]) === 0 && Number(version[2]) < 11) {
    fail(
      `the current buildx builder runs BuildKit ${
        version ? `${version[1]}.${version[2]}` : "of unknown version"
      }: a rebuild needs 0.11 or later (SOURCE_DATE_EPOCH); create one, e.g. docker buildx create --use`,
    );
  }
}

/** An OCI layout's blob. */
function blob(layout: string, digest: string): Uint8Array {
  return Deno.readFileSync(`${layout}/blobs/${digest.replace(":", "/")}`);
}

/**
 * Every file of an image as one line each, keyed by path: type, mode, owner,
 * time, size, content hash, link target and capability, from its layers
 * unpacked in order into `dir` (whiteouts applied).
 */
async function files(
  layers: string[],
  dir: string,
): Promise<Map<string, string>> {
  Deno.mkdirSync(dir);
  for (const layer of layers) {
    await run([
      "tar",
      "-xf",
      layer,
      "-C",
      dir,
      "--same-owner",
      "--xattrs",
      "--xattrs-include=security.capability",
    ]);
    const listing = await run(["find", dir, "-name", ".wh.*"]);
    for (const marker of listing.split("\n").filter((line) => line !== "")) {
      const target = marker.replace(/\/\.wh\.([^/]*)$/, "/$1");
      Deno.removeSync(target, { recursive: true });
      Deno.removeSync(marker);
    }
  }
  const entries = await run([
    "find",
    dir,
    "-mindepth",
    "1",
    "-printf",
    "%P\\t%y %m %U:%G %T@ %s %l\\n",
  ]);
  // getcap -r: "PATH CAPABILITIES" for each file that has some.
  const caps = new Map(
    (await run(["getcap", "-r", dir])).split("\n").filter((l) => l !== "")
      .map((
        line,
      ) => [
        line.slice(dir.length + 1, line.indexOf(" ")),
        line.slice(line.indexOf(" ") + 1),
      ]),
  );
  const result = new Map<string, string>();
  for (const line of entries.split("\n").filter((l) => l !== "")) {
    const [path, meta] = line.split("\t");
    const content = meta.startsWith("f ")
      ? createHash("sha256").update(Deno.readFileSync(`${dir}/${path}`)).digest(
        "hex",
      )
      : "";
    result.set(
      `/${path}`,
      [meta, content, caps.get(path) ?? ""].join(" ").trim(),
    );
  }
  return result;
}

/** The paths whose lines differ between two {@link files} maps, sorted. */
function differing(a: Map<string, string>, b: Map<string, string>): string[] {
  return [...new Set([...a.keys(), ...b.keys()])].filter((path) =>
    a.get(path) !== b.get(path)
  ).sort();
}

const ref = Deno.args[0];
if (ref === undefined || Deno.args.length > 1) {
  fail("usage: deno task verify IMAGE");
}
const top = await inspect(ref, "{{json .Manifest}}");
const isList = top.mediaType.endsWith("index.v1+json") ||
  top.mediaType.endsWith("manifest.list.v2+json");
const raw = JSON.parse(
  await run(["docker", "buildx", "imagetools", "inspect", ref, "--raw"]),
);
const images: Json[] = isList
  ? raw.manifests.filter((m: Json) =>
    m.annotations?.["vnd.docker.reference.type"] !== "attestation-manifest"
  )
  : [{ digest: top.digest, platform: undefined }];
const attested = isList && images.length < raw.manifests.length;
const configs: Json = await inspect(ref, "{{json .Image}}");
const configOf = (image: Json) =>
  isList
    ? configs[`${image.platform.os}/${image.platform.architecture}`]
    : configs;
const platforms = images.map((image) => {
  const config = configOf(image);
  return `${config.os}/${config.architecture}`;
});
const build = release(configOf(images[0]).config.Labels);
for (const image of images.slice(1)) {
  const other = release(configOf(image).config.Labels);
  if (JSON.stringify(other) !== JSON.stringify(build)) {
    fail("the platforms' labels differ: not one release");
  }
}
await requireBuildkit();

const work = Deno.makeTempDirSync({ prefix: "phantun-runtime-verify-" });
try {
  console.log(
    `verify: ${ref}: ${
      platforms.join(", ")
    } from ${build.source} at ${build.revision}`,
  );
  await run(["git", "clone", "--quiet", build.source, `${work}/src`]);
  await run([
    "git",
    "-C",
    `${work}/src`,
    "checkout",
    "--quiet",
    build.revision,
  ]);
  const layout = `${work}/oci`;
  await run([
    "docker",
    "buildx",
    "build",
    "--quiet",
    "--platform",
    platforms.join(","),
    ...Object.entries(build.args).flatMap((
      [k, v],
    ) => ["--build-arg", `${k}=${v}`]),
    "--provenance=false",
    "--sbom=false",
    "--output",
    `type=oci,dest=${layout},tar=false`,
    `${work}/src`,
  ]);
  const built = JSON.parse(Deno.readTextFileSync(`${layout}/index.json`))
    .manifests[0];
  const rebuilt: Json[] = isList
    ? JSON.parse(decoder.decode(blob(layout, built.digest))).manifests
    : [built];
  let mismatches = 0;
  for (const [i, image] of images.entries()) {
    const platform = platforms[i];
    const mine = isList
      ? rebuilt.find((m) =>
        `${m.platform.os}/${m.platform.architecture}` === platform
      )
      : rebuilt[0];
    if (mine?.digest === image.digest) {
      console.log(`MATCH ${platform} ${image.digest}`);
      continue;
    }
    mismatches++;
    console.log(
      `MISMATCH ${platform}: the registry has ${image.digest}, the rebuild ${mine?.digest}`,
    );
    // The registry's image, pulled, saved and unpacked beside the rebuild's.
    const pulled = `${ref.replace(/[@:][^/]*$/, "")}@${image.digest}`;
    await run(["docker", "pull", "--quiet", "--platform", platform, pulled]);
    const id =
      (await run(["docker", "image", "inspect", "-f", "{{.Id}}", pulled]))
        .trim();
    const saved = `${work}/saved-${i}`;
    Deno.mkdirSync(saved);
    await run([
      "sh",
      "-c",
      `docker save "$1" | tar -x -C "$2"`,
      "sh",
      id,
      saved,
    ]);
    const theirs = JSON.parse(
      Deno.readTextFileSync(`${saved}/manifest.json`),
    )[0]
      .Layers.map((layer: string) => `${saved}/${layer}`);
    const manifest = JSON.parse(decoder.decode(blob(layout, mine.digest)));
    const ours = manifest.layers.map((layer: Json) =>
      `${layout}/blobs/${layer.digest.replace(":", "/")}`
    );
    const paths = differing(
      await files(theirs, `${work}/registry-${i}`),
      await files(ours, `${work}/rebuilt-${i}`),
    );
    for (const path of paths.slice(0, SHOWN)) console.log(`  ${path}`);
    if (paths.length > SHOWN) console.log(`  (${paths.length - SHOWN} more)`);
    if (paths.length === 0) {
      console.log("  (same files: the image's config differs)");
    }
  }
  if (isList && mismatches === 0) {
    console.log(
      attested
        ? `the list ${top.digest} also holds attestations, which no rebuild reproduces: its images match`
        : built.digest === top.digest
        ? `MATCH list ${top.digest}`
        : `MISMATCH list: the registry has ${top.digest}, the rebuild ${built.digest}`,
    );
    if (!attested && built.digest !== top.digest) mismatches++;
  }
  Deno.exitCode = mismatches === 0 ? 0 : 1;
} finally {
  Deno.removeSync(work, { recursive: true });
}
