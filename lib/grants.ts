/**
 * Fail-fast checks against the static permission grant, so that a path
 * outside it is refused before anything is written or launched.
 */
import { quote, RuntimeError } from "./error.ts";
import { PRODUCTION } from "./manifest.ts";

function listed(paths: readonly string[]): string {
  return paths.map(quote).join(", ");
}

/** Throws {@link RuntimeError} (exit 2) unless `binary` is in the run grant. */
export function requireRunGrant(binary: string): void {
  const { state } = Deno.permissions.querySync({
    name: "run",
    command: binary,
  });
  if (state !== "granted") {
    throw new RuntimeError(
      `${
        quote(binary)
      } is outside the run grant (the production manifest grants ${
        listed(PRODUCTION.run)
      })`,
    );
  }
}

/**
 * Throws {@link RuntimeError} (exit 2) unless `file` is in both the write and
 * the read grant (read only to lstat it: see handoff.ts).
 */
export function requireHandoffGrant(file: string): void {
  for (const name of ["write", "read"] as const) {
    const { state } = Deno.permissions.querySync({ name, path: file });
    if (state !== "granted") {
      throw new RuntimeError(
        `IFACE_FILE ${
          quote(file)
        } is outside the ${name} grant (the production manifest grants ${
          listed(PRODUCTION[name])
        })`,
      );
    }
  }
}
