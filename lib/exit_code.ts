/** Exit statuses for the ways phantun can fail to start. */

/**
 * The status for an error thrown by spawning phantun: 127 when the binary does
 * not exist, 2 when Deno's permission layer refuses (a runtime configuration
 * problem, e.g. LD_PRELOAD set under a scoped --allow-run), 126 for any other
 * reason it cannot be executed (not executable, a directory, bad format).
 */
export function exitCodeForSpawnError(error: unknown): number {
  if (error instanceof Deno.errors.NotFound) return 127;
  if (error instanceof Deno.errors.NotCapable) return 2;
  return 126;
}
