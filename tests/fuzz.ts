/**
 * Seeded generators for the reliability fuzz tests: argument vectors for
 * phantun, raw bytes for MODE and IFACE_NAME, and an oracle for interface
 * names written from the kernel's rule rather than from lib/.
 */

/** A small seeded PRNG (mulberry32): the same seed gives the same sequence. */
export class Random {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** One of `items`. */
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }
}

/** The seed of case `index` in a run seeded `seed`: each case can be replayed alone. */
export function caseSeed(seed: number, index: number): number {
  return (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^
    Math.imul(index + 1, 0xc2b2ae35)) >>> 0;
}

const WHITESPACE = [
  " ",
  "  ",
  "\t",
  "\n",
  "\r\n",
  "\v",
  "\f",
  "\u00a0",
  "\u2028",
  "\u3000",
  "\u200b",
];
const SHELLISH = [
  "'",
  '"',
  "`",
  "\\",
  "$",
  "$HOME",
  "$(id)",
  "${x}",
  "*",
  "?",
  "[a]",
  "~",
  "!",
  "#",
  ";",
  "&",
  "|",
  "<",
  ">",
  "%s",
  "%n",
  "{}",
  "\\0",
  "\\n",
  "=",
];
const DASHES = [
  "-",
  "--",
  "---",
  "-h",
  "-V",
  "--help",
  "--version",
  "--phantun-dir",
  "--phantun-dir=/",
  "--tun",
  "--local",
  "--remote",
  "-4",
  "--=",
  "--x=y",
  "-- ",
  " --",
];
const ADDRESSES = ["127.0.0.1:4567", "[::1]:4567", "4567", "ptun0", "0", "-1"];

/**
 * Code point ranges: controls, ASCII, DEL and C1, the rest of the BMP (no
 * surrogates, no U+FFFD: see below), noncharacters and the astral planes.
 * NUL is left out because no argument or variable can hold it, and U+FFFD
 * because it is what Deno substitutes for bytes that are not UTF-8, so a
 * genuine one cannot be told from a lossy one (see the findings).
 */
const RANGES: readonly (readonly [number, number])[] = [
  [0x01, 0x1f],
  [0x20, 0x7e],
  [0x7f, 0x9f],
  [0xa0, 0x7ff],
  [0x800, 0xd7ff],
  [0xe000, 0xfffc],
  [0xfffe, 0xffff],
  [0x10000, 0x10ffff],
];
const SPECIAL_CODE_POINTS = [0x200d, 0x202e, 0xfeff, 0x0301, 0x1f600, 0x10ffff];

function codePoint(rng: Random): string {
  if (rng.chance(0.1)) {
    return String.fromCodePoint(rng.pick(SPECIAL_CODE_POINTS));
  }
  const [low, high] = rng.pick(RANGES);
  return String.fromCodePoint(rng.int(low, high));
}

function unicode(rng: Random, length: number): string {
  let text = "";
  for (let i = 0; i < length; i++) text += codePoint(rng);
  return text;
}

function ascii(rng: Random, length: number): string {
  let text = "";
  for (let i = 0; i < length; i++) {
    text += String.fromCharCode(rng.int(0x20, 0x7e));
  }
  return text;
}

/** One piece of an argument, from one of the categories the issue names. */
function fragment(rng: Random): string {
  switch (rng.int(0, 5)) {
    case 0:
      return rng.pick(WHITESPACE);
    case 1:
      return rng.pick(SHELLISH);
    case 2:
      return rng.pick(DASHES);
    case 3:
      return unicode(rng, rng.int(1, 8));
    case 4:
      return rng.pick(ADDRESSES);
    default:
      return ascii(rng, rng.int(1, 12));
  }
}

/**
 * What phantun receives for `arg` through `deno run FLAGS main.ts`: the same,
 * except that Deno 2.9.6 strips trailing carriage returns from every
 * command-line argument before the script sees it (denoland/deno#34968, for
 * CRLF shebang lines): two of them when any flag precedes the script, as the
 * manifest's always do (checked: one without flags). The supervisor never has
 * them to pass on.
 */
export function deliveredByDeno(arg: string): string {
  return arg.replace(/\r{1,2}$/, "");
}

/** Bytes of `text` in UTF-8. */
export function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/** A long argument: 1 000 to 100 000 bytes (below Linux's 128 KiB per argument). */
function longArgument(rng: Random): string {
  const target = rng.int(1_000, 100_000);
  const unit = rng.chance(0.5) ? fragment(rng) : unicode(rng, rng.int(1, 64));
  let text = unit.repeat(Math.ceil(target / Math.max(1, utf8(unit).length)));
  while (utf8(text).length > 100_000) text = [...text].slice(0, -64).join("");
  return text;
}

/** One argument: empty, long, or one to four fragments run together. */
export function argument(rng: Random): string {
  if (rng.chance(0.08)) return "";
  let text = "";
  for (let n = rng.int(1, 4); n > 0; n--) text += fragment(rng);
  return text;
}

/**
 * An argument vector for phantun: 0 to 300 arguments (mostly fewer than 9),
 * sometimes one long argument, sometimes `--` repeated in it.
 */
export function argumentVector(rng: Random): string[] {
  const size = rng.chance(0.05)
    ? 0
    : rng.chance(0.75)
    ? rng.int(1, 8)
    : rng.chance(0.8)
    ? rng.int(9, 64)
    : rng.int(65, 300);
  const args = Array.from({ length: size }, () => argument(rng));
  if (size > 0 && rng.chance(0.03)) {
    args[rng.int(0, size - 1)] = longArgument(rng);
  }
  if (rng.chance(0.15)) {
    for (let n = rng.int(1, 3); n > 0; n--) {
      args.splice(rng.int(0, args.length), 0, "--");
    }
  }
  return args;
}

/** Bytes that the kernel's isspace() (lib/ctype.c) calls space, plus `/` and `:`. */
const KERNEL_FORBIDDEN = new Set([
  0x09,
  0x0a,
  0x0b,
  0x0c,
  0x0d,
  0x20,
  0xa0,
  0x2f,
  0x3a,
]);

/** True when `bytes` are valid UTF-8. */
export function isUtf8(bytes: Uint8Array): boolean {
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/**
 * The oracle for IFACE_NAME, restated from the kernel's dev_valid_name()
 * (net/core/dev.c): 1 to 15 bytes, not "." or "..", no `/`, `:` or isspace()
 * byte; and valid UTF-8, because Deno reads variables as strings (phantun's
 * own option parser wants UTF-8 too).
 */
export function acceptableInterfaceName(bytes: Uint8Array): boolean {
  const text = String.fromCharCode(...bytes);
  return isUtf8(bytes) && bytes.length >= 1 && bytes.length <= 15 &&
    text !== "." && text !== ".." &&
    !bytes.some((byte) => KERNEL_FORBIDDEN.has(byte));
}

/** True when `bytes` are exactly `client` or `server`. */
export function acceptableMode(bytes: Uint8Array): boolean {
  const text = String.fromCharCode(...bytes);
  return text === "client" || text === "server";
}

const NAME_EDGES = [
  ".",
  "..",
  "...",
  "./",
  ".a",
  "a.",
  "-",
  "--",
  "0",
  "lo",
  "eth0:1",
  "a/b",
  "ptun0",
  "ptun0 ",
  " ptun0",
  "ptun\u00a0",
  "tun\u00e0", // U+00E0 is C3 A0: its second byte is the kernel's 0xA0 space
  "tun\u00e1", // C3 A1: accepted
  "\u{1f600}\u{1f600}\u{1f600}", // 12 bytes
  "\u{1f600}\u{1f600}\u{1f600}\u{1f600}", // 16 bytes
];
const INVALID_UTF8 = [
  [0x80],
  [0xc0, 0xaf],
  [0xed, 0xa0, 0x80],
  [0xf5, 0x80, 0x80, 0x80],
  [0xe2, 0x82],
  [0xff],
];
const MODE_EDGES = [
  "client",
  "server",
  "Client",
  "SERVER",
  "client ",
  " server",
  "client\n",
  "clien",
  "serverr",
  "cli ent",
  "client\u00a0",
  "\u0441lient", // Cyrillic es
  "server\u200b",
  "",
];

const ALNUM = [
  ..."abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
];

function randomBytes(rng: Random, length: number): number[] {
  return Array.from({ length }, () => rng.int(1, 255));
}

/**
 * Raw bytes for IFACE_NAME: random bytes of length 0 to 64 (never NUL), or
 * names at the edges of the rule: lengths 14 to 17, a multi-byte character
 * straddling byte 15, one forbidden byte, `.` and `..`, broken UTF-8.
 */
export function nameBytes(rng: Random): Uint8Array {
  switch (rng.int(0, 5)) {
    case 0:
      return new Uint8Array(randomBytes(rng, rng.int(0, 64)));
    case 1: {
      // 14 to 17 bytes in all, sometimes ending in a multi-byte character.
      const tail = rng.chance(0.5)
        ? rng.pick(["\u00e9", "\u20ac", "\u{1f600}"])
        : "";
      const count = rng.int(14, 17) - utf8(tail).length;
      return utf8(
        Array.from({ length: count }, () => rng.pick(ALNUM)).join("") + tail,
      );
    }
    case 2: {
      const bytes = [...utf8(`ptun${rng.int(0, 99999)}`)];
      bytes[rng.int(0, bytes.length - 1)] = rng.pick([...KERNEL_FORBIDDEN]);
      return new Uint8Array(bytes);
    }
    case 3:
      return utf8(rng.pick(NAME_EDGES));
    case 4: {
      const valid = [...utf8(`tun${rng.int(0, 999)}`)];
      valid.splice(rng.int(0, valid.length), 0, ...rng.pick(INVALID_UTF8));
      return new Uint8Array(valid);
    }
    default:
      return utf8(unicode(rng, rng.int(1, 8)));
  }
}

/** Raw bytes for MODE: mostly client/server and near misses, else random bytes of length 0 to 64. */
export function modeBytes(rng: Random): Uint8Array {
  if (rng.chance(0.6)) return utf8(rng.pick(MODE_EDGES));
  if (rng.chance(0.5)) return new Uint8Array(randomBytes(rng, rng.int(0, 64)));
  const word = [...utf8(rng.pick(["client", "server"]))];
  word.splice(rng.int(0, word.length), 0, ...rng.pick(INVALID_UTF8));
  return new Uint8Array(word);
}
