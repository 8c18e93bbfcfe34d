import assert from "node:assert/strict";
import { DEFAULT_PHANTUN_DIR, parseCommandLine, USAGE } from "../lib/cli.ts";
import { FORWARDED_SIGNALS } from "../lib/signals.ts";
import { RuntimeError } from "../lib/error.ts";

function refused(args: string[], pattern: RegExp): void {
  assert.throws(
    () => parseCommandLine(args),
    (error) =>
      error instanceof RuntimeError && error.exitCode === 2 &&
      pattern.test(error.message),
  );
}

Deno.test("everything after the first -- is phantun's, untouched and in order", () => {
  const tail = [
    "",
    " ",
    "a b",
    "line\nbreak",
    "ünï",
    "--",
    "-h",
    "--help",
    "--phantun-dir=/x",
  ];
  assert.deepEqual(parseCommandLine(["--", ...tail]), {
    action: "run",
    phantunDir: DEFAULT_PHANTUN_DIR,
    phantunArgs: tail,
  });
});

Deno.test("a bare -- gives phantun no arguments and the default directory", () => {
  assert.deepEqual(parseCommandLine(["--"]), {
    action: "run",
    phantunDir: "/usr/local/bin",
    phantunArgs: [],
  });
});

Deno.test("--phantun-dir=DIR before -- chooses the directory, normalized", () => {
  const parsed = parseCommandLine(["--phantun-dir=/opt//phantun/", "--", "x"]);
  assert.deepEqual(parsed, {
    action: "run",
    phantunDir: "/opt/phantun/",
    phantunArgs: ["x"],
  });
});

Deno.test("--help and --version need no --", () => {
  assert.deepEqual(parseCommandLine(["--help"]), { action: "help" });
  assert.deepEqual(parseCommandLine(["--version"]), { action: "version" });
  assert.deepEqual(parseCommandLine(["--help", "--", "x"]), { action: "help" });
});

Deno.test("a missing -- is refused with a usage hint", () => {
  refused([], /missing `--`.*--help/);
  refused(["--phantun-dir=/x"], /missing `--`/);
});

Deno.test("anything else before -- is refused with a usage hint", () => {
  refused(["--local", "1234", "--"], /--help/);
  refused(["-h", "--"], /--help/);
  refused(["positional", "--"], /--help/);
  refused(["--phantun-dir", "--"], /--help/);
});

Deno.test("phantun's options before -- (a forgotten --) are refused with where they go and the command's shape", () => {
  const message = (args: string[]) => {
    try {
      parseCommandLine(args);
    } catch (error) {
      assert.ok(error instanceof RuntimeError && error.exitCode === 2);
      return error.message;
    }
    assert.fail(`${args.join(" ")} was accepted`);
  };
  assert.equal(
    message(["--local", "4567", "--remote", "127.0.0.1:1234"]),
    'unknown argument "--local": phantun\'s arguments go after `--`, as in: phantun-runtime -- --local ... (see --help)',
  );
  assert.equal(
    message(["--phantun-dir=/x", "--tun", "ptun0", "--"]),
    'unknown argument "--tun": phantun\'s arguments go after `--`, as in: phantun-runtime -- --tun ... (see --help)',
  );
  // A word a shell would split or expand is shown quoted.
  assert.match(message(["a b"]), /as in: phantun-runtime -- "a b" \.\.\./);
});

Deno.test("a relative --phantun-dir is refused", () => {
  refused(["--phantun-dir=bin", "--"], /absolute/);
});

Deno.test("-- inside phantun's arguments is not the runtime's split", () => {
  const parsed = parseCommandLine(["--", "--", "--help"]);
  assert.deepEqual(parsed, {
    action: "run",
    phantunDir: DEFAULT_PHANTUN_DIR,
    phantunArgs: ["--", "--help"],
  });
});

Deno.test("--help and README's signal table name exactly the forwarded signals, and SIGUSR1 as blocked", () => {
  const readme = Deno.readTextFileSync(
    new URL("../README.md", import.meta.url),
  );
  const table = readme.slice(readme.indexOf("### Signals"));
  const rows = table.split("\n").filter((line) => /^\| SIG/.test(line));
  const forwarded = rows.filter((row) => row.includes("forwards"))
    .flatMap((row) => row.split("|")[1].split(",").map((s) => s.trim()));
  assert.deepEqual(forwarded.toSorted(), [...FORWARDED_SIGNALS].toSorted());
  assert.ok(
    rows.some((row) => row.startsWith("| SIGUSR1 ") && row.includes("blocked")),
  );
  assert.ok(
    USAGE.includes("SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR2 are forwarded"),
  );
  assert.ok(USAGE.includes("SIGUSR1 is not forwarded"));
  assert.ok(USAGE.includes("env --block-signal=USR1"));
  assert.ok(!FORWARDED_SIGNALS.includes("SIGUSR1"));
});
