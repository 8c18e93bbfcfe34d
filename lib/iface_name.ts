/** The interface-name handoff settings and the kernel's rule for names. */
import { quote, RuntimeError } from "./error.ts";

/** Where the interface name goes, and the name. */
export type Handoff = { readonly file: string; readonly name: string };

/** IFNAMSIZ (16) minus the terminating NUL. */
const MAX_NAME_BYTES = 15;

/**
 * Bytes the kernel refuses in a name (net/core/dev.c `dev_valid_name`): `/`,
 * `:` and what its `isspace()` calls space, which includes 0xA0.
 */
const FORBIDDEN_BYTES = new Set([
  0x2f,
  0x3a,
  0x20,
  0x09,
  0x0a,
  0x0b,
  0x0c,
  0x0d,
  0xa0,
]);

/**
 * True when the kernel accepts `name` as a network interface name: 1 to 15
 * bytes of UTF-8, not `.` or `..`, no `/`, `:` or whitespace byte.
 */
export function isValidInterfaceName(name: string): boolean {
  const bytes = new TextEncoder().encode(name);
  return bytes.length >= 1 && bytes.length <= MAX_NAME_BYTES &&
    name !== "." && name !== ".." &&
    !bytes.some((byte) => FORBIDDEN_BYTES.has(byte));
}

/**
 * The handoff asked for by IFACE_FILE and IFACE_NAME, or null when
 * IFACE_FILE is unset (IFACE_NAME alone is ignored). Throws
 * {@link RuntimeError} (exit 2) for an empty IFACE_FILE or an invalid name.
 */
export function handoffFor(
  file: string | undefined,
  name: string | undefined,
): Handoff | null {
  if (file === undefined) return null;
  if (file === "") {
    throw new RuntimeError(
      "IFACE_FILE is set but empty; unset it to disable the handoff",
    );
  }
  if (name === undefined) {
    throw new RuntimeError("IFACE_NAME must be set when IFACE_FILE is set");
  }
  if (!isValidInterfaceName(name)) {
    throw new RuntimeError(
      `IFACE_NAME ${
        quote(name)
      } is not a valid interface name (1-15 bytes, not "." or "..", no "/", ":" or whitespace)`,
    );
  }
  return { file, name };
}
