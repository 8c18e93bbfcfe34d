/**
 * The dependency list `cargo auditable build` embeds in a binary: the ELF
 * section `.dep-v0`, zlib-compressed JSON (rust-secure-code/cargo-auditable).
 * Reads 64-bit little-endian ELF files (x86_64 and aarch64 alike).
 */

/** One package of the embedded list; `dependencies` index into the list. */
export type Crate = {
  readonly name: string;
  readonly version: string;
  readonly source: string;
  readonly kind: "runtime" | "build";
  readonly dependencies: readonly number[];
  readonly root: boolean;
};

/** The bytes of section `name` of an ELF64 little-endian file, or null. */
export function elfSection(
  file: Uint8Array<ArrayBuffer>,
  name: string,
): Uint8Array<ArrayBuffer> | null {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  if (view.getUint32(0) !== 0x7f454c46 || file[4] !== 2 || file[5] !== 1) {
    throw new Error("not a 64-bit little-endian ELF file");
  }
  const sections = Number(view.getBigUint64(0x28, true));
  const size = view.getUint16(0x3a, true);
  const count = view.getUint16(0x3c, true);
  const header = (i: number) => sections + i * size;
  const body = (i: number) => {
    const offset = Number(view.getBigUint64(header(i) + 0x18, true));
    return file.subarray(
      offset,
      offset + Number(view.getBigUint64(header(i) + 0x20, true)),
    );
  };
  const names = body(view.getUint16(0x3e, true));
  const decoder = new TextDecoder();
  for (let i = 0; i < count; i++) {
    const start = view.getUint32(header(i), true);
    const end = names.indexOf(0, start);
    if (decoder.decode(names.subarray(start, end)) === name) return body(i);
  }
  return null;
}

/** The crates embedded in the binary at `path`, in the list's order. */
export async function crates(path: string): Promise<Crate[]> {
  const section = elfSection(Deno.readFileSync(path), ".dep-v0");
  if (section === null) throw new Error(`${path} has no .dep-v0 section`);
  const json = await new Response(
    new Blob([section]).stream().pipeThrough(
      new DecompressionStream("deflate"),
    ),
  ).text();
  // deno-lint-ignore no-explicit-any
  return JSON.parse(json).packages.map((p: any) => ({
    name: p.name,
    version: p.version,
    source: p.source,
    kind: p.kind ?? "runtime",
    dependencies: p.dependencies ?? [],
    root: p.root ?? false,
  }));
}
