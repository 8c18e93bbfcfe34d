/** Signal forwarding from the supervisor to phantun. */

/**
 * Every signal the supervisor catches and passes on to phantun. SIGUSR1 is
 * not one: Deno opens its V8 inspector when SIGUSR1 arrives, so every launch
 * blocks it before Deno starts (`env --block-signal=USR1`) and it stays
 * pending, never delivered.
 */
export const FORWARDED_SIGNALS: readonly Deno.Signal[] = [
  "SIGTERM",
  "SIGINT",
  "SIGHUP",
  "SIGQUIT",
  "SIGUSR2",
];

/** The signals whose first arrival begins shutdown. */
const SHUTDOWN_SIGNALS: ReadonlySet<Deno.Signal> = new Set([
  "SIGTERM",
  "SIGINT",
]);

/**
 * Installs a listener for each of {@link FORWARDED_SIGNALS} that passes the
 * signal to `child()`, every time it arrives. The first SIGTERM or SIGINT
 * calls `onShutdown` before it is forwarded.
 *
 * Listeners run on the event loop, so `child` is only called once the caller
 * yields to it: install them, then spawn synchronously, then await. A signal
 * that arrives in between waits in Deno's queue and is forwarded then.
 */
export function forwardSignals(
  child: () => Deno.ChildProcess,
  onShutdown: () => void,
): void {
  let shuttingDown = false;
  for (const signal of FORWARDED_SIGNALS) {
    Deno.addSignalListener(signal, () => {
      if (SHUTDOWN_SIGNALS.has(signal) && !shuttingDown) {
        shuttingDown = true;
        onShutdown();
      }
      try {
        child().kill(signal);
      } catch {
        // phantun has already exited; its status is on its way.
      }
    });
  }
}
