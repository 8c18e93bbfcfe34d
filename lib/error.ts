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
