/**
 * Reliability: MODE and IFACE_NAME as raw bytes. Seeded random byte strings
 * and every single byte are accepted exactly when valid; invalid ones launch
 * nothing and leave IFACE_FILE untouched. A variable that is not UTF-8 is
 * refused naming it.
 */
import assert from "node:assert/strict";
import {
  acceptableInterfaceName,
  acceptableMode,
  isUtf8,
  modeBytes,
  nameBytes,
  Random,
  utf8,
} from "../fuzz.ts";
import {
  assertRefused,
  type FakeInstall,
  installFakePhantun,
  manifestFlags,
  runSupervisor,
} from "../helpers.ts";
import {
  figure,
  octal,
  prepareUntouched,
  readBytes,
  removeInstall,
  runCases,
  sameBytes,
  SEED,
  since,
  SIZES,
  SOAK,
} from "./harness.ts";

// ---------------------------------------------------------------------------
// Environment fuzzing: MODE and IFACE_NAME as raw bytes

/**
 * Wrapper words that set MODE and IFACE_NAME to raw bytes (which Deno's
 * string-only Command API cannot pass) from RAW_MODE / RAW_IFACE_NAME, then
 * exec the supervisor. The `x` keeps trailing newlines from $(...).
 */
const RAW_ENV = [
  "sh",
  "-c",
  [
    'if [ -n "${RAW_MODE+x}" ]; then',
    '  v="$(printf "$RAW_MODE"; printf x)"; export MODE="${v%x}"',
    "fi",
    'if [ -n "${RAW_IFACE_NAME+x}" ]; then',
    '  v="$(printf "$RAW_IFACE_NAME"; printf x)"; export IFACE_NAME="${v%x}"',
    "fi",
    "unset RAW_MODE RAW_IFACE_NAME v",
    'exec "$@"',
  ].join("\n"),
  "sh",
];

/** The environment that sets each variable given to raw `bytes` through RAW_ENV. */
function rawEnv(
  values: Record<string, Uint8Array | undefined>,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, bytes] of Object.entries(values)) {
    if (bytes !== undefined) env[`RAW_${name}`] = octal(bytes);
  }
  return env;
}

/**
 * Runs the supervisor with MODE and IFACE_NAME as raw bytes (undefined:
 * unset) and IFACE_FILE granted, then checks the outcome against the
 * oracles of fuzz.ts.
 */
async function checkEnvironment(
  fake: FakeInstall,
  mode: Uint8Array | undefined,
  name: Uint8Array | undefined,
): Promise<"accepted" | "refused"> {
  const file = `${fake.scratch}/iface`;
  const assertUntouched = prepareUntouched(file);
  const result = await runSupervisor(fake, {
    args: [`--phantun-dir=${fake.dir}`, "--"],
    env: {
      ...rawEnv({ MODE: mode, IFACE_NAME: name }),
      IFACE_FILE: file,
      FAKE_EXIT: "0",
    },
    flags: manifestFlags(fake.dir, file),
    wrapper: RAW_ENV,
  });
  const modeOk = mode !== undefined && acceptableMode(mode);
  const nameOk = name !== undefined && acceptableInterfaceName(name);
  const context = `MODE ${mode && octal(mode)}, IFACE_NAME ${
    name && octal(name)
  }: `;
  if (modeOk && nameOk) {
    assert.equal(result.code, 0, context + result.stderr);
    assert.equal(result.stderr, "");
    assert.ok(
      sameBytes(readBytes(`${fake.record}/iface`), name),
      context + "phantun did not find exactly IFACE_NAME in IFACE_FILE",
    );
    assert.equal(Deno.readTextFileSync(file), "", context + "not emptied");
    return "accepted";
  }
  const culprit = modeOk ? "IFACE_NAME" : "MODE";
  const value = modeOk ? name : mode;
  // A value that is not UTF-8 is refused too; naming it is finding 2 below.
  const needle = value === undefined || isUtf8(value) ? culprit : "";
  assert.equal(result.code, 2, context + result.stderr);
  assertRefused(result, fake, needle);
  assertUntouched();
  return "refused";
}

Deno.test(`each of ${SIZES.environmentCases} seeded random MODE/IFACE_NAME byte strings is accepted exactly when valid; invalid ones launch nothing and leave IFACE_FILE untouched`, async () => {
  const start = performance.now();
  const counts = { accepted: 0, refused: 0 };
  await runCases(SIZES.environmentCases, async (rng, fake) => {
    const mode = rng.chance(0.03)
      ? undefined
      : rng.chance(0.5)
      ? utf8(rng.pick(["client", "server"]))
      : modeBytes(rng);
    const name = rng.chance(0.03) ? undefined : nameBytes(rng);
    counts[await checkEnvironment(fake, mode, name)]++;
  });
  figure(
    `environment fuzz: ${SIZES.environmentCases} cases ${
      JSON.stringify(counts)
    }, seed ${SEED}, ${since(start)}`,
  );
  assert.ok(counts.accepted > 0 && counts.refused > 0, JSON.stringify(counts));
});

/** Every byte 0x01-0xFF in the soak; the edges plus a seeded sample of 24 otherwise. */
function singleBytes(): number[] {
  if (SOAK) return Array.from({ length: 255 }, (_, i) => i + 1);
  const edges = [0x01, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x1f, 0x20, 0x2e, 0x2f];
  edges.push(0x3a, 0x7e, 0x7f, 0x80, 0xa0, 0xc3, 0xff);
  const rng = new Random(SEED);
  const sample = Array.from({ length: 24 }, () => rng.int(1, 255));
  return [...new Set([...edges, ...sample])];
}

/**
 * The kernel's rule for a one-byte name, written out: printable ASCII but
 * `.`, `/` and `:`, plus the controls isspace() does not call space. A lone
 * byte from 0x80 up is not UTF-8.
 */
function singleByteAccepted(byte: number): boolean {
  const printable = byte >= 0x21 && byte <= 0x7e &&
    ![0x2e, 0x2f, 0x3a].includes(byte);
  const control = (byte >= 0x01 && byte <= 0x08) ||
    (byte >= 0x0e && byte <= 0x1f) || byte === 0x7f;
  return printable || control;
}

Deno.test(`${singleBytes().length} single bytes 0x01-0xFF as IFACE_NAME are each accepted exactly when the kernel's rule and UTF-8 allow it`, async () => {
  const bytes = singleBytes();
  let accepted = 0;
  await runCases(bytes.length, async (_rng, fake, index) => {
    const byte = bytes[index];
    const outcome = await checkEnvironment(
      fake,
      utf8("client"),
      new Uint8Array([byte]),
    );
    assert.equal(
      outcome === "accepted",
      singleByteAccepted(byte),
      `0x${byte.toString(16)}`,
    );
    if (outcome === "accepted") accepted++;
  });
  if (SOAK) assert.equal(accepted, 91 + 8 + 18 + 1);
});

// ---------------------------------------------------------------------------
// Findings of the first reliability pass, fixed in lib/ (env)

for (const variable of ["MODE", "IFACE_NAME", "IFACE_FILE"]) {
  Deno.test(`FINDING 2: ${variable} that is not valid UTF-8 is refused with one line naming ${variable}`, async () => {
    const fake = installFakePhantun();
    const file = `${fake.scratch}/iface`;
    const values: Record<string, Uint8Array> = {
      MODE: utf8("client"),
      IFACE_NAME: utf8("ptun0"),
      IFACE_FILE: utf8(file),
    };
    values[variable] = new Uint8Array([...values[variable], 0xff]);
    const result = await runSupervisor(fake, {
      args: [`--phantun-dir=${fake.dir}`, "--"],
      env: { FAKE_EXIT: "0", RAW: octal(values[variable]) },
      flags: manifestFlags(fake.dir, file),
      wrapper: [
        "sh",
        "-c",
        `export MODE=client IFACE_NAME=ptun0 IFACE_FILE='${file}'
${variable}="$(printf "$RAW")"; unset RAW; exec "$@"`,
        "sh",
      ],
    });
    assertRefused(result, fake, variable);
    removeInstall(fake);
  });
}
