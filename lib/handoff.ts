/**
 * The handoff file's two effects. Both work in place (open, truncate, write),
 * never by rename, because IFACE_FILE is usually a bind-mounted file.
 */
import { quote, RuntimeError } from "./error.ts";
import type { Handoff } from "./iface_name.ts";

/**
 * Makes the whole content of the file exactly the interface name, no newline.
 * Creates the file if its directory exists. Throws {@link RuntimeError} (exit 2).
 */
export function writeInterfaceName({ file, name }: Handoff): void {
  try {
    Deno.writeFileSync(file, new TextEncoder().encode(name));
  } catch (error) {
    throw new RuntimeError(
      `cannot write IFACE_FILE ${quote(file)}: ${(error as Error).message}`,
    );
  }
}

/**
 * Empties the file. Never throws: a file that is gone needs no emptying, and
 * any other failure is reported on stderr so that shutdown goes on.
 */
export function clearInterfaceName({ file }: Handoff): void {
  try {
    Deno.truncateSync(file, 0);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    console.error(
      `phantun-runtime: cannot empty IFACE_FILE ${quote(file)}: ${
        (error as Error).message
      }`,
    );
  }
}
