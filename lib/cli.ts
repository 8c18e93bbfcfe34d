/**
 * The command line: the runtime's own options before the first `--`, phantun's
 * arguments after it, passed on untouched.
 */
import { parseArgs } from "node:util";
import { isAbsolute, normalize } from "node:path";
import { RuntimeError } from "./error.ts";

/** Where the upstream binaries live unless `--phantun-dir` says otherwise. */
export const DEFAULT_PHANTUN_DIR = "/usr/local/bin";

/** What the command line asks for. */
export type Invocation =
  | { readonly action: "help" }
  | { readonly action: "version" }
  | {
    readonly action: "run";
    readonly phantunDir: string;
    readonly phantunArgs: readonly string[];
  };

/** The `--help` text (stdout). */
export const USAGE =
  `Usage: MODE=client|server main.ts [--phantun-dir=DIR] -- [phantun arguments...]
       main.ts --help | --version

Runs DIR/phantun_client (MODE=client) or DIR/phantun_server (MODE=server) with
every argument after the first \`--\`, unchanged. DIR defaults to ${DEFAULT_PHANTUN_DIR}.

Environment:
  MODE        client or server (required, exact).
  IFACE_FILE  optional: file that holds IFACE_NAME while phantun runs; emptied
              when shutdown begins and after phantun exits.
  IFACE_NAME  TUN interface name written to IFACE_FILE (required with it).
              Pass the same name to phantun itself: -- --tun NAME ...

Exit status: phantun's; 128+N if phantun died of signal N; 127 binary not
found; 126 binary not executable; 2 usage or configuration error.`;

const HINT = "(see --help)";

/**
 * Splits `args` at the first `--` and parses the runtime's options before it.
 * Throws {@link RuntimeError} (exit 2) for anything else before `--`, or no `--`.
 */
export function parseCommandLine(args: readonly string[]): Invocation {
  const split = args.indexOf("--");
  const own = split === -1 ? args : args.slice(0, split);
  let values;
  try {
    ({ values } = parseArgs({
      args: [...own],
      options: {
        "phantun-dir": { type: "string" },
        help: { type: "boolean" },
        version: { type: "boolean" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new RuntimeError(`${(error as Error).message} ${HINT}`);
  }
  if (values.help) return { action: "help" };
  if (values.version) return { action: "version" };
  if (split === -1) {
    throw new RuntimeError(`missing \`--\` before phantun's arguments ${HINT}`);
  }
  const dir = values["phantun-dir"] ?? DEFAULT_PHANTUN_DIR;
  if (!isAbsolute(dir)) {
    throw new RuntimeError(
      `--phantun-dir must be an absolute path, got ${JSON.stringify(dir)}`,
    );
  }
  return {
    action: "run",
    phantunDir: normalize(dir),
    phantunArgs: args.slice(split + 1),
  };
}
