/**
 * The production permission manifest, read from its one home: the
 * `permissions.production` set in deno.json. A static import needs no read
 * permission, so the supervisor can name its granted paths in messages.
 */
import config from "../deno.json" with { type: "json" };

/** The runtime's own version, from deno.json. */
export const VERSION: string = config.version;

/** What `deno run -P=production` grants: env names, programs, the IFACE file. */
export const PRODUCTION: {
  readonly env: readonly string[];
  readonly run: readonly string[];
  readonly write: readonly string[];
  readonly read: readonly string[];
} = config.permissions.production;
