/**
 * Runs in the image build (the Dockerfile's assemble stage), after the
 * runtime's filesystem is complete:
 *
 *   deno run --allow-read --allow-write=OUT scripts/sbom.ts ROOTFS RECORDS OUT
 *
 * Writes OUT, a CycloneDX 1.6 SBOM of what ROOTFS holds, made only from the
 * build's own records and the files themselves: the supervisor (/app/main.js),
 * Deno (RECORDS/deno.record, from fetch-deno.sh), phantun
 * (RECORDS/phantun-source, from fetch-phantun.sh) with every crate its
 * binaries embed (cargo auditable's .dep-v0 section), their licenses
 * (RECORDS/cargo-metadata.json) and checksums (the image's Cargo.lock), and
 * the Debian packages of ROOTFS/var/lib/dpkg/status.d (dpkg-status.sh) with
 * their .deb's SHA-256 (RECORDS/debs.sha256) and the licenses their copyright
 * files name. RECORDS/build holds the build's arguments (key=value lines:
 * version, source, revision, arch, epoch). Same inputs, same bytes.
 */
import { type Crate, crates } from "./auditable.ts";

const [rootfs, records, out] = Deno.args;
if (out === undefined) {
  console.error("usage: sbom.ts ROOTFS RECORDS OUT");
  Deno.exit(2);
}

/** key=value lines, as the build's record files hold them. */
function keyValues(path: string): Record<string, string> {
  return Object.fromEntries(
    Deno.readTextFileSync(path).split("\n").filter((line) => line.includes("="))
      .map((
        line,
      ) => [
        line.slice(0, line.indexOf("=")),
        line.slice(line.indexOf("=") + 1),
      ]),
  );
}

/** Bytes as lowercase hex. */
const hex = (bytes: Uint8Array) =>
  [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");

async function sha256(path: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", Deno.readFileSync(path));
  return hex(new Uint8Array(digest));
}

/** The hex of an npm `sha512-BASE64` integrity. */
function integrityHex(integrity: string): string {
  const bytes = atob(integrity.replace(/^sha512-/, ""));
  return hex(Uint8Array.from(bytes, (c) => c.charCodeAt(0)));
}

/** Fields of a dpkg control paragraph (continuation lines dropped). */
function control(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const match = line.match(/^([A-Za-z0-9-]+): (.*)$/);
    if (match) fields[match[1]] = match[2];
  }
  return fields;
}

/**
 * The licenses a Debian copyright file names: its machine-readable
 * `License:` fields, and the /usr/share/common-licenses files it refers to.
 */
function debianLicenses(copyright: string): string[] {
  const named = [
    ...[...copyright.matchAll(/^License: (.+)$/gm)].map((m) => m[1].trim()),
    ...[...copyright.matchAll(/\/usr\/share\/common-licenses\/([\w.+-]+)/g)]
      .map((m) => m[1].replace(/\.+$/, "")),
  ];
  return [...new Set(named)].sort();
}

/** Cargo.lock's checksum (the .crate's SHA-256) by name@version. */
function lockChecksums(lock: string): Map<string, string> {
  const sums = new Map<string, string>();
  for (const block of lock.split("[[package]]")) {
    const field = (name: string) =>
      block.match(new RegExp(`^${name} = "(.*)"$`, "m"))?.[1];
    const checksum = field("checksum");
    if (checksum) sums.set(`${field("name")}@${field("version")}`, checksum);
  }
  return sums;
}

const build = keyValues(`${records}/build`);
const deno = keyValues(`${records}/deno.record`);
const phantunSource = keyValues(`${records}/phantun-source`);
const share = "/usr/local/share/phantun-runtime";
const checksums = lockChecksums(
  Deno.readTextFileSync(`${rootfs}${share}/Cargo.lock`),
);
const metadata: {
  packages: {
    name: string;
    version: string;
    license: string | null;
    license_file: string | null;
  }[];
} = JSON.parse(Deno.readTextFileSync(`${records}/cargo-metadata.json`));
/** A crate's licenses: its SPDX expression, or the file it names instead. */
const licensesOf = new Map(
  metadata.packages.map((p) => [
    `${p.name}@${p.version}`,
    p.license
      ? [{ expression: p.license.replaceAll("/", " OR ") }]
      : p.license_file
      ? [{
        license: { name: `the crate's ${p.license_file.replace(/^.*\//, "")}` },
      }]
      : undefined,
  ]),
);
const osRelease = keyValues(`${rootfs}/usr/lib/os-release`);
const distro = `${osRelease.ID}-${osRelease.VERSION_ID.replaceAll('"', "")}`;

// deno-lint-ignore no-explicit-any
type Component = Record<string, any>;
const occurrences = (...paths: string[]) => ({
  occurrences: paths.map((location) => ({ location })),
});

const supervisor: Component = {
  type: "application",
  "bom-ref": "phantun-runtime",
  name: "phantun-runtime",
  version: build.version,
  description: "the supervisor: main.ts and lib/, bundled",
  hashes: [{ alg: "SHA-256", content: await sha256(`${rootfs}/app/main.js`) }],
  licenses: [{ license: { id: "MIT" } }],
  ...(build.source
    ? { externalReferences: [{ type: "vcs", url: build.source }] }
    : {}),
  properties: [{ name: "phantun-runtime:revision", value: build.revision }],
  evidence: occurrences("/app/main.js"),
};

const denoComponent: Component = {
  type: "application",
  "bom-ref": "deno",
  name: "deno",
  version: deno.version,
  purl: `pkg:npm/${encodeURIComponent(deno.package)}@${deno.version}`,
  hashes: [{
    alg: "SHA-256",
    content: await sha256(`${rootfs}/usr/local/bin/deno`),
  }],
  licenses: [{ license: { id: deno.license } }],
  externalReferences: [{
    type: "distribution",
    url: deno.url,
    hashes: [{ alg: "SHA-512", content: integrityHex(deno.integrity) }],
    comment: `npm integrity ${deno.integrity}, checked by fetch-deno.sh`,
  }],
  evidence: occurrences("/usr/local/bin/deno"),
};

const binaries = ["phantun_client", "phantun_server"].map((name) =>
  `/usr/local/bin/${name}`
);
const embedded = await crates(`${rootfs}${binaries[0]}`);
const other = await crates(`${rootfs}${binaries[1]}`);
if (JSON.stringify(embedded) !== JSON.stringify(other)) {
  throw new Error("phantun_client and phantun_server embed different crates");
}
const crateRef = (crate: Crate) => `pkg:cargo/${crate.name}@${crate.version}`;
const root = embedded.find((crate) => crate.root)!;
const phantun: Component = {
  type: "application",
  "bom-ref": crateRef(root),
  name: root.name,
  version: root.version,
  purl: crateRef(root),
  licenses: licensesOf.get(`${root.name}@${root.version}`),
  externalReferences: [{
    type: "vcs",
    url: phantunSource.repository,
    comment: `commit ${phantunSource.commit}`,
    ...(phantunSource["tarball-sha256"]
      ? {
        hashes: [{ alg: "SHA-256", content: phantunSource["tarball-sha256"] }],
      }
      : {}),
  }],
  properties: [
    { name: "phantun-runtime:commit", value: phantunSource.commit },
    {
      name: "phantun-runtime:tarball-sha256",
      value: phantunSource["tarball-sha256"],
    },
  ],
  components: await Promise.all(binaries.map(async (path) => ({
    type: "file",
    "bom-ref": path,
    name: path,
    hashes: [{ alg: "SHA-256", content: await sha256(`${rootfs}${path}`) }],
  }))),
  evidence: occurrences(...binaries),
};
const crateComponents: Component[] = embedded.filter((crate) => !crate.root)
  .map((crate) => {
    const checksum = checksums.get(`${crate.name}@${crate.version}`);
    return {
      type: "library",
      "bom-ref": crateRef(crate),
      name: crate.name,
      version: crate.version,
      scope: crate.kind === "build" ? "excluded" : "required",
      purl: crateRef(crate),
      ...(checksum ? { hashes: [{ alg: "SHA-256", content: checksum }] } : {}),
      licenses: licensesOf.get(`${crate.name}@${crate.version}`),
      properties: [{ name: "cargo-auditable:kind", value: crate.kind }],
    };
  });

const status = `${rootfs}/var/lib/dpkg/status.d`;
const debSums = new Map(
  Deno.readTextFileSync(`${records}/debs.sha256`).trim().split("\n").map(
    (line) => {
      const [sum, file] = line.split(/\s+/);
      return [file.replace(/^.*\//, "").split("_")[0], sum];
    },
  ),
);
const debComponents: Component[] = [];
for (
  const entry of [...Deno.readDirSync(status)].map((e) => e.name)
    .filter((name) => !name.includes(".")).sort()
) {
  const fields = control(Deno.readTextFileSync(`${status}/${entry}`));
  const files = Deno.readTextFileSync(`${status}/${entry}.md5sums`).trim()
    .split("\n").map((line) => `/${line.split(/\s+/)[1]}`);
  const copyright = files.find((path) => path.endsWith("/copyright")) ??
    `/usr/share/doc/${entry}/copyright`;
  let licenses: string[] = [];
  try {
    licenses = debianLicenses(Deno.readTextFileSync(`${rootfs}${copyright}`));
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  const purl = `pkg:deb/debian/${fields.Package}@${
    encodeURIComponent(fields.Version)
  }?arch=${fields.Architecture}&distro=${distro}`;
  debComponents.push({
    type: "library",
    "bom-ref": purl,
    supplier: { name: fields.Maintainer },
    name: fields.Package,
    version: fields.Version,
    purl,
    hashes: [{ alg: "SHA-256", content: debSums.get(fields.Package) }],
    ...(licenses.length > 0
      ? { licenses: licenses.map((name) => ({ license: { name } })) }
      : {}),
    properties: [
      ...(fields.Source
        ? [{ name: "debian:source", value: fields.Source }]
        : []),
      { name: "debian:copyright", value: copyright },
    ],
    evidence: occurrences(...files),
  });
}

const top = [supervisor, denoComponent, phantun, ...debComponents];
const bom = {
  bomFormat: "CycloneDX",
  specVersion: "1.6",
  version: 1,
  metadata: {
    ...(build.epoch
      ? { timestamp: new Date(Number(build.epoch) * 1000).toISOString() }
      : {}),
    tools: {
      components: [{ type: "application", name: "scripts/sbom.ts" }],
    },
    component: {
      type: "container",
      "bom-ref": "image",
      name: "phantun-runtime",
      version: build.version,
      properties: [{ name: "phantun-runtime:architecture", value: build.arch }],
    },
  },
  components: [...top, ...crateComponents],
  dependencies: [
    { ref: "image", dependsOn: top.map((c) => c["bom-ref"]) },
    ...embedded.filter((crate) => crate.dependencies.length > 0).map((
      crate,
    ) => ({
      ref: crateRef(crate),
      dependsOn: crate.dependencies.map((i) => crateRef(embedded[i])),
    })),
  ],
};
Deno.writeTextFileSync(out, `${JSON.stringify(bom, null, 2)}\n`);
