/**
 * The handoff file's two effects. Both work in place (open, truncate, write),
 * never by rename, because IFACE_FILE is usually a bind-mounted file.
 *
 * Deno's write grant does not stop a write from following a symbolic link,
 * and opening a FIFO for writing blocks until a reader appears. So both
 * effects first lstat the path (the reason for the read grant on it) and act
 * only on a regular file, or, when writing, on a path that does not exist yet.
 */
import { quote, reason, RuntimeError } from "./error.ts";
import type { Handoff } from "./iface_name.ts";

/** Why `file` must not be touched, or null when it is a regular file or absent. */
function notRegular(file: string): string | null {
  let info: Deno.FileInfo;
  try {
    info = Deno.lstatSync(file);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    // Deno guards /dev, /proc and /sys beyond any path grant.
    if (error instanceof Deno.errors.NotCapable) {
      return "is a device or kernel file, not a regular file";
    }
    return `cannot be checked: ${reason(error)}`;
  }
  if (info.isSymlink) return "is a symbolic link (mount the file itself)";
  if (info.isDirectory) return IS_DIRECTORY;
  return info.isFile ? null : "is not a regular file";
}

const IS_DIRECTORY = "is a directory";

/**
 * Why a directory stands where a bind-mounted file was meant to be, and the
 * fix: engines make a missing bind source a directory.
 */
const DIRECTORY_HINT =
  'the host file did not exist when the container started, so the engine made a directory in its place: remove that directory on the host and create the file (README "After a reboot")';

/** What to do when the runtime's user may not write the file. */
const PERMISSION_HINT =
  "give the runtime's user (uid 65532 in the image) write access to the host file, e.g. chown 65532:65532 FILE, or use the root profile (--user 0)";

/**
 * Makes the whole content of the file exactly the interface name, no newline.
 * Creates the file if its directory exists. Throws {@link RuntimeError} (exit 2).
 */
export function writeInterfaceName({ file, name }: Handoff): void {
  const refusal = notRegular(file);
  if (refusal) {
    const hint = refusal === IS_DIRECTORY ? `: ${DIRECTORY_HINT}` : "";
    throw new RuntimeError(`IFACE_FILE ${quote(file)} ${refusal}${hint}`);
  }
  try {
    Deno.writeFileSync(file, new TextEncoder().encode(name));
  } catch (error) {
    const hint = error instanceof Deno.errors.PermissionDenied
      ? `: ${PERMISSION_HINT}`
      : "";
    throw new RuntimeError(
      `cannot write IFACE_FILE ${quote(file)}: ${reason(error)}${hint}`,
    );
  }
}

/**
 * Empties the file. Never throws: a file that is gone needs no emptying, and
 * any other failure (including a path that is no longer a regular file) is
 * reported on stderr so that shutdown goes on.
 */
export function clearInterfaceName({ file }: Handoff): void {
  const refusal = notRegular(file);
  if (refusal) {
    console.error(
      `phantun-runtime: not emptying IFACE_FILE ${quote(file)}: it ${refusal}`,
    );
    return;
  }
  try {
    Deno.truncateSync(file, 0);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    console.error(
      `phantun-runtime: cannot empty IFACE_FILE ${quote(file)}: ${
        reason(error)
      }`,
    );
  }
}
