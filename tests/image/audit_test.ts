/**
 * The image as an auditor sees it: its SBOM, valid CycloneDX 1.6; Syft
 * (pinned) finding every package inside on amd64 and arm64, each ELF file
 * owned, against the build's own records; the permission manifest in a label;
 * and the README's audit commands. (A rebuild from the labels giving the same
 * image digest: release_test.ts, through `deno task verify`.)
 */
import assert from "node:assert/strict";
import {
  ARM64_TAG,
  AUDIT,
  CACHE,
  CARGO_LOCK,
  cmd,
  DOCKER,
  docker,
  elfFiles,
  ensureArm64,
  exec,
  exportImage,
  IMAGE,
  imageTest,
  isFile,
  lines,
  missingArm64,
  readmeOk,
  remove,
  ROOT,
  tempDir,
} from "./harness.ts";

/** Where the image keeps its SBOM. */
const SBOM = "/usr/local/share/phantun-runtime/sbom.cdx.json";
const SYFT = `${CACHE}/syft-v1.57.1`;
const PYTHON = `${CACHE}/venv/bin/python`;
const MISSING_SYFT = isFile(SYFT)
  ? null
  : `${SYFT} not found (scripts/provision-tools.sh)`;
const MISSING_VALIDATOR = isFile(PYTHON)
  ? null
  : `${PYTHON} not found (scripts/provision-tools.sh)`;

/** Debian packages the SBOM must hash and Syft must find, at the image's architecture. */
const DEBS = ["libc6", "libgcc-s1", "tini", "coreutils"];

/** Syft never asks the network for a newer version here. */
const SYFT_ENV = { SYFT_CHECK_FOR_APP_UPDATE: "false" };

// deno-lint-ignore no-explicit-any
type Json = any;

/** A file of an image, copied out. */
async function fileOf(tag: string, path: string): Promise<string> {
  const dir = tempDir();
  const id = await docker(cmd`create ${tag}`);
  try {
    await docker(cmd`cp ${id}:${path} ${dir}/file`);
  } finally {
    await remove(DOCKER, id);
  }
  return Deno.readTextFileSync(`${dir}/file`);
}

/** The CycloneDX 1.6 schema's verdict on `text`, offline: null when valid. */
async function schemaErrors(text: string): Promise<string | null> {
  const dir = tempDir();
  Deno.writeTextFileSync(`${dir}/bom.json`, text);
  const { stdout } = await exec([
    PYTHON,
    "-c",
    `import sys
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read())
print(errors or "valid")`,
    `${dir}/bom.json`,
  ]);
  return stdout.trim() === "valid" ? null : stdout.trim();
}

imageTest(
  "the image's SBOM is valid CycloneDX 1.6 by its schema, checked offline (a broken one is not), and names the supervisor, Deno, phantun with its crates and the Debian packages, each with its license and checksums",
  async () => {
    const text = await fileOf(IMAGE, SBOM);
    assert.equal(await schemaErrors(text), null);
    const bom: Json = JSON.parse(text);
    assert.notEqual(
      await schemaErrors(JSON.stringify({ ...bom, specVersion: 16 })),
      null,
      "the validator accepts anything",
    );
    const byName = new Map<string, Json>(
      bom.components.map((c: Json) => [c.name, c]),
    );
    const sha256 = (c: Json) =>
      c.hashes?.find((h: Json) => h.alg === "SHA-256")?.content;
    const supervisor = byName.get("phantun-runtime");
    const bundle = new TextEncoder().encode(
      await fileOf(IMAGE, "/app/main.js"),
    );
    const digest = new Uint8Array(
      await crypto.subtle.digest("SHA-256", bundle),
    );
    assert.equal(
      sha256(supervisor),
      [...digest].map((b) => b.toString(16).padStart(2, "0")).join(""),
    );
    const deno = byName.get("deno");
    assert.equal(deno.version, "2.9.6");
    assert.match(deno.externalReferences[0].comment, /sha512-/);
    const phantun = byName.get("phantun");
    assert.equal(phantun.version, "0.8.1");
    assert.match(
      phantun.externalReferences[0].comment,
      /^commit [0-9a-f]{40}$/,
    );
    for (const component of bom.components) {
      if (component.type === "file") continue;
      assert.ok(
        component.licenses?.length > 0 || component.name === "base-files",
        `${component.name}: no license`,
      );
      if (component.purl?.startsWith("pkg:cargo/") && component !== phantun) {
        assert.match(sha256(component), /^[0-9a-f]{64}$/, component.name);
      }
    }
    for (const deb of DEBS) {
      assert.match(sha256(byName.get(deb)), /^[0-9a-f]{64}$/, deb);
    }
  },
  DOCKER,
  MISSING_VALIDATOR,
);

/** What Syft reports of `tag`. */
async function syft(tag: string): Promise<Json> {
  const result = await exec(cmd`${SYFT} scan docker:${tag} -o json -q`, {
    env: SYFT_ENV,
  });
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout);
}

/**
 * Holds Syft's report of `tag` against the build's own records (its SBOM
 * and its Cargo.lock): the Debian packages at their versions and
 * architecture, phantun and its runtime crates, deno, and every ELF file
 * owned by a package.
 */
async function assertScanned(tag: string, arch: string): Promise<void> {
  const report = await syft(tag);
  const tree = await exportImage(tag);
  const bom: Json = JSON.parse(Deno.readTextFileSync(`${tree}${SBOM}`));
  const lock = Deno.readTextFileSync(`${tree}${CARGO_LOCK}`);
  const packages: Json[] = report.artifacts;
  const key = (p: Json) => `${p.name}@${p.version}`;
  const of = (type: string) =>
    new Set(packages.filter((p) => p.type === type).map(key));

  const debs = bom.components.filter((c: Json) =>
    c.purl?.startsWith("pkg:deb/")
  );
  assert.deepEqual(of("deb"), new Set(debs.map(key)));
  for (const name of DEBS) {
    const deb = packages.find((p) => p.type === "deb" && p.name === name);
    assert.ok(deb, `${name} not found by Syft`);
    assert.equal(deb.metadata.architecture, arch, name);
  }
  assert.equal(report.distro.id, "debian");

  const runtime = bom.components.filter((c: Json) =>
    c.purl?.startsWith("pkg:cargo/") &&
    (c.name === "phantun" ||
      c.properties.some((p: Json) => p.value === "runtime"))
  );
  assert.deepEqual(of("rust-crate"), new Set(runtime.map(key)));
  for (const crate of runtime) {
    assert.match(
      lock,
      new RegExp(`^name = "${crate.name}"\nversion = "${crate.version}"$`, "m"),
      `${key(crate)} not in the image's Cargo.lock`,
    );
  }
  assert.ok(of("binary").has("deno@2.9.6"), "deno 2.9.6 not found");

  // Every ELF file: listed by a dpkg package, or where a package was found.
  const ids = new Map(packages.map((p) => [p.id, p]));
  const owned = new Set<string>();
  const files = new Map<string, Json>(
    report.files.map((f: Json) => [f.id, f]),
  );
  for (const relation of report.artifactRelationships) {
    if (relation.type === "contains" && ids.has(relation.parent)) {
      const file = files.get(relation.child);
      if (file) owned.add(file.location.path);
    }
  }
  for (const p of packages) {
    for (const location of p.locations) owned.add(location.path);
  }
  const elves = [...elfFiles(tree).keys()];
  assert.ok(elves.includes("/usr/local/bin/phantun_server"), "no ELF found");
  for (const path of elves) assert.ok(owned.has(path), `${path}: no package`);
  const unknown = report.files.filter((f: Json) => f.unknowns?.length > 0);
  assert.deepEqual(unknown.map((f: Json) => f.location.path), []);
}

imageTest(
  "Syft finds everything in the amd64 image: libc6, libgcc-s1, tini and coreutils at the versions the build downloaded, phantun's crates equal to the runtime crates the build recorded and in the image's Cargo.lock, deno 2.9.6, and a package for every ELF file",
  () => assertScanned(IMAGE, "amd64"),
  DOCKER,
  MISSING_SYFT,
);

imageTest(
  "Syft finds everything in the arm64 image the same way, at arm64",
  async () => {
    await ensureArm64();
    await assertScanned(ARM64_TAG, "arm64");
  },
  DOCKER,
  MISSING_SYFT ?? missingArm64(),
);

imageTest(
  "the README's audit commands show the permission manifest in force, equal to deno.json's production set, the entrypoint, the SBOM and Syft's listing",
  async () => {
    const cwd = tempDir();
    const output = (await readmeOk(DOCKER, lines(AUDIT, 2), [
      [/ phantun-runtime(?=$|\))/gm, ` ${IMAGE}`],
      ["syft scan docker:phantun-runtime", `${SYFT} scan docker:${IMAGE}`],
    ], { cwd, env: SYFT_ENV })).split("\n");
    const [permissions, entrypoint, , ...rest] = output;
    const listing = rest.join("\n");
    const config = JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`));
    assert.deepEqual(JSON.parse(permissions), config.permissions.production);
    assert.ok(JSON.parse(entrypoint).includes("-P=production"));
    assert.equal(
      Deno.readTextFileSync(`${cwd}/sbom.cdx.json`),
      await fileOf(IMAGE, SBOM),
    );
    assert.match(listing, /^libc6\s+2\.36-\S+\s+deb\s*$/m);
    assert.match(listing, /^phantun\s+0\.8\.1\s+rust-crate/m);
  },
  DOCKER,
  MISSING_SYFT,
);
