/** MODE picks which upstream binary runs. */
import { quote, RuntimeError } from "./error.ts";

/** The two modes and the upstream release name of each binary. */
export const BINARIES = {
  client: "phantun_client",
  server: "phantun_server",
} as const;

/**
 * The binary for `mode` inside `dir`. MODE must be exactly `client` or
 * `server`: no trimming, no case folding. Throws {@link RuntimeError} (exit 2).
 */
export function binaryFor(mode: string | undefined, dir: string): string {
  if (mode !== "client" && mode !== "server") {
    const got = mode === undefined ? "unset" : `got ${quote(mode)}`;
    throw new RuntimeError(`MODE must be "client" or "server" (${got})`);
  }
  return `${dir.endsWith("/") ? dir : `${dir}/`}${BINARIES[mode]}`;
}
