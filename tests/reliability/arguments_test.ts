/**
 * Reliability: the argument vector. Seeded random vectors after `--` reach
 * phantun byte for byte; seeded random option lists before `--` behave as the
 * documented rules say; and what Deno itself does to arguments (not UTF-8,
 * trailing carriage returns).
 */
import assert from "node:assert/strict";
import { isAbsolute, join } from "node:path";
import { argument, argumentVector, deliveredByDeno, utf8 } from "../fuzz.ts";
import {
  assertRefused,
  installFakePhantun,
  nothingLaunched,
  readRecord,
  recordedArgv,
  ROOT,
  runSupervisor,
} from "../helpers.ts";
import {
  figure,
  nulTerminated,
  octal,
  readBytes,
  removeInstall,
  runCases,
  sameBytes,
  SEED,
  since,
  SIZES,
} from "./harness.ts";

/** Where the two arrays first differ, for a readable fuzz failure. */
function describeArgvMismatch(
  expected: readonly string[],
  got: Uint8Array | null,
): string {
  if (got === null) return "phantun recorded no arguments";
  const seen = new TextDecoder().decode(got).split("\0").slice(0, -1);
  const i = expected.findIndex((arg, n) => arg !== seen[n]);
  const show = (value: string | undefined) =>
    JSON.stringify(value)?.slice(0, 200);
  return `argument ${i} of ${expected.length} differs: sent ${
    show(expected[i])
  }, phantun got ${show(seen[i])} (${seen.length} arguments)`;
}

// ---------------------------------------------------------------------------
// Argument fuzzing

Deno.test(`each of ${SIZES.argumentCases} seeded random argument vectors reaches phantun byte-for-byte`, async () => {
  const start = performance.now();
  let args = 0;
  await runCases(SIZES.argumentCases, async (rng, fake) => {
    const tail = argumentVector(rng);
    args += tail.length;
    const mode = rng.pick(["client", "server"]);
    const result = await runSupervisor(fake, {
      args: [`--phantun-dir=${fake.dir}`, "--", ...tail],
      env: { MODE: mode, FAKE_EXIT: "0" },
    });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, "");
    const expected = tail.map(deliveredByDeno);
    const got = readBytes(`${fake.record}/argv`);
    assert.ok(
      sameBytes(got, nulTerminated(expected)),
      describeArgvMismatch(expected, got),
    );
    assert.equal(readRecord(fake, "program"), `${fake.dir}/phantun_${mode}`);
  });
  figure(
    `argument fuzz: ${SIZES.argumentCases} vectors, ${args} arguments, seed ${SEED}, ${
      since(start)
    }`,
  );
});

/** What the runtime must do with a command line, by its documented rules. */
type Outcome = "help" | "version" | "refused" | "launched";

/**
 * The oracle for the runtime's own options, from the documented rules:
 * only --help, --version and --phantun-dir (=VALUE or a separate VALUE not
 * starting with a dash) before the first `--`; --help wins, then --version;
 * otherwise `--` is required and the directory must name the granted fakes.
 */
function expectedOutcome(args: readonly string[], dir: string): Outcome {
  const split = args.indexOf("--");
  const own = split === -1 ? args : args.slice(0, split);
  let help = false;
  let version = false;
  let phantunDir = "/usr/local/bin";
  for (let i = 0; i < own.length; i++) {
    const token = own[i];
    if (token === "--help") help = true;
    else if (token === "--version") version = true;
    else if (token.startsWith("--phantun-dir=")) {
      phantunDir = token.slice("--phantun-dir=".length);
    } else if (token === "--phantun-dir") {
      const value = own[++i];
      if (value === undefined || (value.length > 1 && value[0] === "-")) {
        return "refused";
      }
      phantunDir = value;
    } else return "refused";
  }
  if (help) return "help";
  if (version) return "version";
  if (split === -1 || !isAbsolute(phantunDir)) return "refused";
  const grants = join(phantunDir, "phantun_client") ===
    join(dir, "phantun_client");
  return grants ? "launched" : "refused";
}

function runtimeTokens(dir: string): string[] {
  return [
    `--phantun-dir=${dir}`,
    `--phantun-dir=${dir}/`,
    `--phantun-dir=${dir}/../bin`,
    `--phantun-dir=${dir}/..`,
    "--phantun-dir",
    dir,
    "--help",
    "--version",
    "-h",
    "-V",
    "-",
    "",
    "x",
    "--phantun-dir=",
    "--phantun-dir=bin",
    "--phantun-dir=/usr/local/bin",
    "--phantun-dir=-x",
    "--help=1",
    "--unknown",
    "--PHANTUN-DIR=/x",
    "-phantun-dir",
    "---",
    "-x",
  ];
}

Deno.test(`each of ${SIZES.prefixCases} seeded random runtime option lists launches with the exact tail, prints help or version, or is refused in one line`, async () => {
  const { version } = JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`));
  const counts: Record<Outcome, number> = {
    help: 0,
    version: 0,
    refused: 0,
    launched: 0,
  };
  await runCases(SIZES.prefixCases, async (rng, fake) => {
    const vocabulary = runtimeTokens(fake.dir);
    const own = Array.from(
      { length: rng.int(0, 4) },
      () => rng.chance(0.4) ? vocabulary[0] : rng.pick(vocabulary),
    );
    const tail = Array.from({ length: rng.int(0, 5) }, () => argument(rng));
    const args = rng.chance(0.85) ? [...own, "--", ...tail] : own;
    const expected = expectedOutcome(args, fake.dir);
    counts[expected]++;
    const result = await runSupervisor(fake, {
      args,
      env: { MODE: "client", FAKE_EXIT: "0" },
    });
    const context = `args ${JSON.stringify(args)}: `;
    if (expected === "launched") {
      assert.equal(result.code, 0, context + result.stderr);
      assert.equal(result.stderr, "");
      const phantunArgs = args.slice(args.indexOf("--") + 1)
        .map(deliveredByDeno);
      assert.ok(
        sameBytes(
          readBytes(`${fake.record}/argv`),
          nulTerminated(phantunArgs),
        ),
        context + "phantun's arguments differ",
      );
    } else if (expected === "refused") {
      assert.equal(result.code, 2, context + result.stderr);
      assertRefused(result, fake);
    } else {
      assert.equal(result.code, 0, context + result.stderr);
      assert.equal(result.stderr, "");
      assert.ok(nothingLaunched(fake));
      if (expected === "help") assert.match(result.stdout, /^Usage: /);
      else assert.equal(result.stdout, `phantun-runtime ${version}\n`);
    }
  });
  figure(`option fuzz: ${JSON.stringify(counts)}, seed ${SEED}`);
  assert.ok(counts.launched > 0 && counts.refused > 0, JSON.stringify(counts));
});

// ---------------------------------------------------------------------------
// Findings of the first reliability pass, fixed in lib/ (cli)

Deno.test("FINDING 1: an argument that is not valid UTF-8 is refused or passed byte-for-byte, never altered", async () => {
  const fake = installFakePhantun();
  const raw = new Uint8Array([0x70, 0xff, 0x71]); // "p", a lone 0xFF, "q"
  const result = await runSupervisor(fake, {
    args: [`--phantun-dir=${fake.dir}`, "--", "ok"],
    env: { MODE: "client", FAKE_EXIT: "0", RAW_ARG: octal(raw) },
    wrapper: ["sh", "-c", 'x="$(printf "$RAW_ARG")"; exec "$@" "$x"', "sh"],
  });
  if (result.code === 2) {
    assertRefused(result, fake, "UTF-8");
  } else {
    const expected = new Uint8Array([...utf8("ok\0"), ...raw, 0]);
    const got = readBytes(`${fake.record}/argv`);
    assert.ok(
      sameBytes(got, expected),
      `phantun got ${JSON.stringify(new TextDecoder().decode(got!))}`,
    );
  }
  removeInstall(fake);
});

Deno.test("KNOWN LIMITATION: Deno strips up to two trailing carriage returns from each argument before the supervisor sees it", async () => {
  const fake = installFakePhantun();
  const sent = ["x\r", "\r", "\r\r", "\r\r\r", "x\r\n", "\rx", "\n"];
  const result = await runSupervisor(fake, {
    args: [`--phantun-dir=${fake.dir}`, "--", ...sent],
    env: { MODE: "client", FAKE_EXIT: "0" },
  });
  assert.equal(result.code, 0);
  assert.deepEqual(recordedArgv(fake), [
    "x",
    "",
    "",
    "\r",
    "x\r\n",
    "\rx",
    "\n",
  ]);
  removeInstall(fake);
});
