/**
 * The release path, on a registry and BuildKit daemons of the test's own
 * (tests/image/registry.ts): the specification's multi-platform commands
 * (each platform pulled by digest and run, the arm64 tarball); and a release
 * by scripts/release.sh as deploy/README.md gives it (two tags, provenance,
 * signature, SBOM attestations), then checked as README says: the signature,
 * the SBOM attestation and `deno task verify`, whose rebuild on a second,
 * empty BuildKit (another hostname, time zone and umask) from another
 * checkout gives the same digests; an attestation-free list matches as a
 * whole; one byte changed in /app/main.js is a MISMATCH naming it; and the
 * signature fails once the tag names another image.
 */
import assert from "node:assert/strict";
import { isDeepStrictEqual } from "node:util";
import { readmeBlock } from "../../e2e/topology.ts";
import {
  cmd,
  DOCKER,
  docker,
  elfFiles,
  engineExec,
  exec,
  exportImage,
  imageTest,
  inspect,
  lines,
  ok,
  prepare,
  readmeOk,
  rewrite,
  ROOT,
  tempDir,
  untag,
  VERSION,
  withUpstream,
} from "./harness.ts";
import {
  index,
  type Json,
  MISSING_RELEASE_TOOLS,
  offlineCosign,
  withBuildkit,
  withRegistry,
} from "./registry.ts";

/** deploy/README.md block buildx-multiarch (the specification's commands). */
const MULTIARCH = readmeBlock("buildx-multiarch");

/** deploy/README.md block release. */
const RELEASE = readmeBlock("release");

/** README block verify-release: a published image checked before use. */
const VERIFY = readmeBlock("verify-release");

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
  MISSING_RELEASE_TOOLS,
);

/**
 * This work tree as it is, committed in a clone of its own: the source a
 * release names (a path) at a revision that holds exactly what is tested.
 */
async function snapshot(): Promise<{ repo: string; revision: string }> {
  const repo = `${tempDir()}/phantun-runtime`;
  await ok(cmd`git clone --quiet ${ROOT} ${repo}`);
  const listed = await ok(
    cmd`git -C ${ROOT} ls-files --cached --others --exclude-standard --deduplicate`,
  );
  for (const file of listed.split("\n")) {
    const from = `${ROOT}${file}`;
    const to = `${repo}/${file}`;
    if (isPresent(from)) {
      await ok(
        cmd`install -D -m ${
          (Deno.statSync(from).mode! & 0o777).toString(8)
        } ${from} ${to}`,
      );
    } else await exec(cmd`rm -f ${to}`);
  }
  await ok(cmd`git -C ${repo} add --all`);
  await ok(
    cmd`git -C ${repo} -c user.name=test -c user.email=test@localhost commit --quiet --allow-empty -m tested`,
  );
  return { repo, revision: await ok(cmd`git -C ${repo} rev-parse HEAD`) };
}

function isPresent(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** The image digest of each platform of the list `ref`, by architecture. */
async function platformDigests(
  ref: string,
  env: Record<string, string>,
): Promise<Record<string, string>> {
  const list = await index(ref, env);
  return Object.fromEntries(
    list.manifests.filter((m: Json) => m.platform?.os === "linux")
      .map((m: Json) => [m.platform.architecture, m.digest]),
  );
}

imageTest(
  "a release by scripts/release.sh (deploy/README.md) is two tags of one signed list with provenance and a signed CycloneDX attestation of each platform's SBOM; README's check passes and its rebuild, on an empty BuildKit with another hostname, time zone and umask, from another checkout, gives both platforms' digests (and an attestation-free list's own); one byte changed in /app/main.js is a MISMATCH naming it; a tag moved to another image fails the signature; Docker 20.10's own BuildKit is refused",
  async () => {
    const { head } = await prepare();
    const { repo } = await snapshot();
    await withRegistry((registry) =>
      withUpstream((url) =>
        withBuildkit(registry, async (env) => {
          const cwd = tempDir();
          const variables = {
            ...env,
            PATH: `${offlineCosign()}:${Deno.env.get("PATH")}`,
            COMMIT: head,
            SOURCE: repo,
            REGISTRY: registry,
            COSIGN_PASSWORD: "",
          };
          const release = (repository: string, flags: string) =>
            readmeOk(DOCKER, RELEASE, [
              ["scripts/release.sh", `${repo}/scripts/release.sh`],
              ['"$REGISTRY/phantun-runtime"', `"${repository}" ${flags}`],
              ...(isPresent(`${cwd}/cosign.key`)
                ? [["cosign generate-key-pair", "true"] as const]
                : []),
            ], { env: variables, cwd });
          // Both builds without any cache; phantun from the local upstream.
          const upstream = `--build-arg PHANTUN_UPSTREAM=${url}`;
          const digest = (await release(
            `${registry}/phantun-runtime`,
            `--no-cache ${upstream}`,
          )).split("\n").at(-1)!;
          const ref = `${registry}/phantun-runtime:${VERSION}`;
          const list = await index(ref, env);
          assert.equal(
            list.manifests.filter((m: Json) =>
              m.annotations?.["vnd.docker.reference.type"] ===
                "attestation-manifest"
            ).length,
            2,
            "a provenance attestation per platform",
          );
          for (const tag of [ref, `${ref}-phantun-${head.slice(0, 7)}`]) {
            assert.equal(
              await ok([
                DOCKER.bin,
                ...cmd`buildx imagetools inspect ${tag} --format`,
                "{{json .Manifest.Digest}}",
              ], { env }),
              JSON.stringify(digest),
              tag,
            );
          }
          const provenance: Json = JSON.parse(
            await ok([
              DOCKER.bin,
              ...cmd`buildx imagetools inspect ${ref} --format`,
              "{{json .Provenance}}",
            ], { env }),
          );
          const digests = await platformDigests(ref, env);
          for (const arch of ["amd64", "arm64"]) {
            assert.ok(
              JSON.stringify(provenance[`linux/${arch}`]).includes(
                `"build-arg:PHANTUN_COMMIT":"${head}"`,
              ),
              `${arch}: the provenance names phantun's commit`,
            );
          }
          // The SBOM attestations are each platform's SBOM, signed.
          const attested = (await ok(
            cmd`cosign verify-attestation --key ${cwd}/cosign.pub --type cyclonedx ${ref}`,
            { env: variables },
          )).split("\n").map((line) => {
            const payload = atob(JSON.parse(line).payload); // UTF-8 bytes
            return JSON.parse(
              new TextDecoder().decode(
                Uint8Array.from(payload, (c) => c.charCodeAt(0)),
              ),
            ).predicate;
          });
          for (const arch of ["amd64", "arm64"]) {
            const tree = await exportImage(
              `${registry}/phantun-runtime@${digests[arch]}`,
            );
            const sbom = JSON.parse(Deno.readTextFileSync(
              `${tree}/usr/local/share/phantun-runtime/sbom.cdx.json`,
            ));
            assert.ok(
              attested.some((bom: Json) => isDeepStrictEqual(bom, sbom)),
              `${arch}: its SBOM is attested`,
            );
          }
          const plain = (
            await release(`${registry}/plain`, `--provenance=false ${upstream}`)
          ).split("\n").at(-1)!;
          await withBuildkit(registry, async (elsewhere, run) => {
            // README's check of `image`, lines `from` to `to` of it (all by
            // default) after its two variables, here with the release's key.
            const check = (image: string, from = 2, to?: number) =>
              exec([
                ...run,
                "sh",
                "-ec",
                rewrite(
                  DOCKER,
                  `${lines(VERIFY, 0, 2)}\n${lines(VERIFY, from, to)}`,
                  [
                    [/^IMAGE=.*$/gm, `IMAGE=${image}`],
                    [/^SIGNER=.*$/gm, `SIGNER="--key ${cwd}/cosign.pub"`],
                  ],
                ),
              ], { env: { ...elsewhere, PATH: variables.PATH }, cwd: ROOT });
            const checked = await check(ref);
            assert.equal(checked.code, 0, checked.stdout + checked.stderr);
            console.log(checked.stdout.trim()); // the run's record
            for (const arch of ["amd64", "arm64"]) {
              assert.match(
                checked.stdout,
                new RegExp(`^MATCH linux/${arch} ${digests[arch]}$`, "m"),
              );
            }
            const whole = await check(`${registry}/plain:${VERSION}`);
            assert.equal(whole.code, 0, whole.stdout + whole.stderr);
            assert.match(
              whole.stdout,
              new RegExp(`^MATCH list ${plain}$`, "m"),
            );
            // One byte of /app/main.js, under the same tag and labels.
            const pinned = `${registry}/phantun-runtime@${digests.amd64}`;
            await docker(cmd`pull -q ${pinned}`);
            const id = await docker(cmd`create ${pinned}`);
            const main = `${tempDir()}/main.js`;
            await docker(cmd`cp ${id}:/app/main.js ${main}`);
            const bytes = Deno.readFileSync(main);
            bytes[bytes.length - 1] ^= 1;
            Deno.writeFileSync(main, bytes);
            await docker(cmd`cp ${main} ${id}:/app/main.js`);
            await docker(cmd`commit ${id} ${ref}`);
            await docker(cmd`rm ${id}`);
            await docker(cmd`push -q ${ref}`);
            await untag(ref);
            await untag(pinned);
            const tampered = await check(ref, 4, 5);
            assert.equal(tampered.code, 1, tampered.stdout + tampered.stderr);
            assert.match(tampered.stdout, /^MISMATCH linux\/amd64: /m);
            assert.match(tampered.stdout, /^ {2}\/app\/main\.js$/m);
            const unsigned = await check(ref, 2, 3);
            assert.notEqual(unsigned.code, 0, "cosign verify passed");
            assert.match(unsigned.stderr, /no (matching )?signatures/i);
          }, {
            hostname: "elsewhere",
            tz: "Pacific/Kiritimati",
            umask: "0002",
          });
          // Only Docker 20.10's own BuildKit: refused, saying what is needed.
          const old = await exec(
            cmd`${Deno.execPath()} task --quiet verify ${ref}`,
            { env: { BUILDX_CONFIG: tempDir() }, cwd: ROOT },
          );
          assert.equal(old.code, 2, old.stderr);
          assert.match(old.stderr, /needs 0\.11 or later/);
        })
      )
    );
  },
  DOCKER,
  MISSING_RELEASE_TOOLS,
);
