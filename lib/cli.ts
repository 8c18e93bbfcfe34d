/**
 * The command line: the runtime's own options before the first `--`, phantun's
 * arguments after it, passed on untouched.
 */
import { quote, RuntimeError } from "./error.ts";
import { FORWARDED_SIGNALS } from "./signals.ts";

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
  `Usage: MODE=client|server phantun-runtime [--phantun-dir DIR] -- [phantun args]
       phantun-runtime --help | --version

phantun-runtime is the image's entrypoint (deno task start outside it);
--phantun-dir=DIR works too.

Runs DIR/phantun_client (MODE=client) or DIR/phantun_server (MODE=server) with
every argument after the first \`--\`, unchanged. DIR defaults to ${DEFAULT_PHANTUN_DIR}.

Environment:
  MODE        client or server (required, exact).
  IFACE_FILE  optional: file that holds IFACE_NAME while phantun runs; emptied
              when shutdown begins and after phantun exits.
  IFACE_NAME  TUN interface name written to IFACE_FILE (required with it).
              Pass the same name to phantun itself: -- --tun NAME ...

Signals: ${FORWARDED_SIGNALS.join(", ")} are forwarded to phantun every
time they arrive. SIGUSR1 is not forwarded: launch with it blocked
(env --block-signal=USR1 deno run ...), because Deno opens a debugger port on it.

Exit status: phantun's; 128+N if phantun died of signal N; 127 binary not
found; 126 binary not executable; 2 usage or configuration error. In the image,
138 is a SIGUSR1 that arrived before env blocked it.`;

const HINT = "(see --help)";

/** An argument that reads the same unquoted in a shell command line. */
const SHELL_WORD = /^[\w@%+=:,./-]+$/;

/**
 * Splits `args` at the first `--` and parses the runtime's options before it.
 * Throws {@link RuntimeError} (exit 2) for anything else before `--`, or no `--`.
 */
export function parseCommandLine(args: readonly string[]): Invocation {
  const split = args.indexOf("--");
  const own = split === -1 ? args : args.slice(0, split);
  const values = parseOptions(own);
  if (values.help) return { action: "help" };
  if (values.version) return { action: "version" };
  if (split === -1) {
    throw new RuntimeError(`missing \`--\` before phantun's arguments ${HINT}`);
  }
  const dir = values.phantunDir ?? DEFAULT_PHANTUN_DIR;
  if (!dir.startsWith("/")) {
    throw new RuntimeError(
      `--phantun-dir must be an absolute path, got ${JSON.stringify(dir)}`,
    );
  }
  const phantunArgs = args.slice(split + 1);
  const altered = phantunArgs.findIndex((arg) => arg.includes("\uFFFD"));
  if (altered !== -1) {
    throw new RuntimeError(
      `phantun argument ${
        altered + 1
      } is not valid UTF-8 (or holds U+FFFD); not passing it on altered`,
    );
  }
  return { action: "run", phantunDir: normalizeAbsolute(dir), phantunArgs };
}

/**
 * `--help`, `--version`, `--phantun-dir=DIR` and `--phantun-dir DIR`; anything
 * else is refused. (Hand-written: importing node:util loads Deno's Node layer
 * at every start; DESIGN.md §6 has the cost.)
 */
function parseOptions(
  own: readonly string[],
): { help: boolean; version: boolean; phantunDir?: string } {
  const values: { help: boolean; version: boolean; phantunDir?: string } = {
    help: false,
    version: false,
  };
  for (let i = 0; i < own.length; i++) {
    const arg = own[i];
    if (arg === "--help") values.help = true;
    else if (arg === "--version") values.version = true;
    else if (arg.startsWith("--phantun-dir=")) {
      values.phantunDir = arg.slice("--phantun-dir=".length);
    } else if (arg === "--phantun-dir") {
      const value = own[++i];
      if (value === undefined || (value.length > 1 && value[0] === "-")) {
        throw new RuntimeError(`--phantun-dir needs a value ${HINT}`);
      }
      values.phantunDir = value;
    } else {
      throw new RuntimeError(
        `unknown argument ${
          quote(arg)
        }: phantun's arguments go after \`--\`, as in: phantun-runtime -- ${
          SHELL_WORD.test(arg) ? arg : quote(arg)
        } ... ${HINT}`,
      );
    }
  }
  return values;
}

/** POSIX normalization of an absolute path: no `.`, `..` or repeated `/`. */
function normalizeAbsolute(path: string): string {
  const parts: string[] = [];
  for (const part of path.split("/")) {
    if (part === "..") parts.pop();
    else if (part !== "" && part !== ".") parts.push(part);
  }
  const trailing = path.endsWith("/") && parts.length > 0 ? "/" : "";
  return `/${parts.join("/")}${trailing}`;
}
