/**
 * phantun-runtime: runs one upstream phantun binary under Deno's permission
 * manifest. The whole lifecycle, top to bottom:
 *
 *   parse -> configure -> check grants -> signals -> handoff -> spawn
 *         -> forward until phantun exits -> empty handoff -> exit
 */
import { parseCommandLine, USAGE } from "./lib/cli.ts";
import { quote, reason, RuntimeError } from "./lib/error.ts";
import { exitCodeForSpawnError } from "./lib/exit_code.ts";
import { requireHandoffGrant, requireRunGrant } from "./lib/grants.ts";
import { clearInterfaceName, writeInterfaceName } from "./lib/handoff.ts";
import { readVariable } from "./lib/env.ts";
import { handoffFor } from "./lib/iface_name.ts";
import { VERSION } from "./lib/manifest.ts";
import { binaryFor } from "./lib/mode.ts";
import { forwardSignals } from "./lib/signals.ts";

async function main(): Promise<number> {
  // Parse: the runtime's options before `--`, phantun's arguments after it.
  const invocation = parseCommandLine(Deno.args);
  if (invocation.action === "help") {
    console.log(USAGE);
    return 0;
  }
  if (invocation.action === "version") {
    console.log(`phantun-runtime ${VERSION}`);
    return 0;
  }

  // Configure from the three granted variables; refuse before any effect.
  const binary = binaryFor(readVariable("MODE"), invocation.phantunDir);
  const handoff = handoffFor(
    readVariable("IFACE_FILE"),
    readVariable("IFACE_NAME"),
  );
  requireRunGrant(binary);
  if (handoff) requireHandoffGrant(handoff.file);

  // Signals: listeners first. Everything up to the spawn is synchronous, so
  // no listener runs before `child` exists.
  let child: Deno.ChildProcess;
  const clearHandoff = () => {
    if (handoff) clearInterfaceName(handoff);
  };
  forwardSignals(() => child, clearHandoff);

  // Handoff, then spawn with inherited stdio and environment.
  if (handoff) writeInterfaceName(handoff);
  try {
    child = new Deno.Command(binary, {
      args: [...invocation.phantunArgs],
      stdin: "inherit",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
  } catch (error) {
    clearHandoff();
    throw new RuntimeError(
      `cannot start ${quote(binary)}: ${reason(error)}`,
      exitCodeForSpawnError(error),
    );
  }

  // Wait: Deno reports death by signal N as code 128+N.
  const { code } = await child.status;
  clearHandoff();
  return code;
}

try {
  Deno.exit(await main());
} catch (error) {
  const message = error instanceof Error ? error.message : String(error);
  console.error(`phantun-runtime: ${message.replaceAll("\n", " ")}`);
  Deno.exit(error instanceof RuntimeError ? error.exitCode : 2);
}
