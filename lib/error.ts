/**
 * A failure of the runtime itself, reported as one `phantun-runtime:` line.
 *
 * `exitCode` is 2 for usage and configuration errors, 126/127 when phantun
 * cannot be started.
 */
export class RuntimeError extends Error {
  /** Exit status of the supervisor when this error ends it. */
  readonly exitCode: number;

  constructor(message: string, exitCode = 2) {
    super(message);
    this.name = "RuntimeError";
    this.exitCode = exitCode;
  }
}

/** Renders any value for a one-line message: quoted, control characters escaped. */
export function quote(value: string): string {
  return JSON.stringify(value);
}

/**
 * The operating system's reason in a Deno I/O error, without Deno's own
 * wording around it: "Permission denied (os error 13): writefile '/x'" and
 * "Failed to spawn '/x': Permission denied (os error 13)" both become
 * "Permission denied".
 */
export function reason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/^Failed to spawn '.*?': /s, "")
    .replace(/ \(os error \d+\)(: [a-z]+ '.*')?$/s, "");
}
