/**
 * Image size: the uncompressed size Docker reports for the image, against the
 * sum of its parts, read from the image's own file list (`docker create` +
 * `docker export`, so nothing in the image runs): deno, phantun_client,
 * phantun_server, tini and the shared libraries under /lib, /lib64 and
 * /usr/lib (the Dockerfile copies exactly what the binaries link, see
 * scripts/rootfs-libs.sh); env and the rest count as `other`.
 */

/** The Docker client of Debian's docker.io, which builds with the engine's BuildKit. */
const DOCKER = "/usr/bin/docker";
/** The binaries that make up the image, by path inside it. */
const BINARIES: Record<string, string> = {
  deno: "usr/local/bin/deno",
  phantun_client: "usr/local/bin/phantun_client",
  phantun_server: "usr/local/bin/phantun_server",
  tini: "usr/bin/tini",
};
const LIBRARIES = /^(lib|lib64|usr\/lib)\//;

/** Sizes in MB (10^6 bytes, as Docker reports them), or why there are none. */
export type ImageResult =
  | {
    readonly sizeMb: number;
    readonly partsMb: number;
    /** Each binary, `libraries` (summed) and `other` (every other file). */
    readonly breakdownMb: Record<string, number>;
    readonly libraries: readonly string[];
  }
  | { readonly sizeMb: null; readonly reason: string };

function docker(...args: string[]): { ok: boolean; out: string } {
  try {
    const { success, stdout, stderr } = new Deno.Command(DOCKER, { args })
      .outputSync();
    const text = new TextDecoder().decode(success ? stdout : stderr).trim();
    return { ok: success, out: text };
  } catch (error) {
    return { ok: false, out: (error as Error).message };
  }
}

/** Regular files of container `id` and their sizes in bytes (`tar -tv`). */
async function files(id: string): Promise<Map<string, number>> {
  const exporter = new Deno.Command(DOCKER, {
    args: ["export", id],
    stdout: "piped",
  }).spawn();
  const tar = new Deno.Command("tar", {
    args: ["-tv"],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const [, listing] = await Promise.all([
    exporter.stdout.pipeTo(tar.stdin),
    tar.output(),
  ]);
  if (!(await exporter.status).success || !listing.success) {
    throw new Error(`docker export ${id} | tar -tv failed`);
  }
  const sizes = new Map<string, number>();
  for (const line of new TextDecoder().decode(listing.stdout).split("\n")) {
    const fields = line.split(/\s+/);
    if (line.startsWith("-")) sizes.set(fields.slice(5).join(" "), +fields[2]);
  }
  return sizes;
}

/** Measures `tag`, or says why it cannot. */
export async function measureImage(tag: string): Promise<ImageResult> {
  const inspect = docker("image", "inspect", tag, "--format", "{{.Size}}");
  if (!inspect.ok) return { sizeMb: null, reason: inspect.out };
  const created = docker("create", tag, "unused");
  if (!created.ok) return { sizeMb: null, reason: created.out };
  try {
    const sizes = await files(created.out);
    const mb = (bytes: number) => bytes / 1e6;
    const breakdownMb: Record<string, number> = {};
    for (const [name, path] of Object.entries(BINARIES)) {
      breakdownMb[name] = mb(sizes.get(path) ?? 0);
    }
    const libraries = [...sizes.keys()].filter((path) => LIBRARIES.test(path));
    breakdownMb.libraries = mb(
      libraries.reduce((sum, path) => sum + sizes.get(path)!, 0),
    );
    const partsMb = Object.values(breakdownMb).reduce((a, b) => a + b, 0);
    const allMb = mb([...sizes.values()].reduce((a, b) => a + b, 0));
    breakdownMb.other = allMb - partsMb;
    return {
      sizeMb: mb(Number(inspect.out)),
      partsMb,
      breakdownMb,
      libraries: libraries.sort(),
    };
  } finally {
    docker("rm", created.out);
  }
}
