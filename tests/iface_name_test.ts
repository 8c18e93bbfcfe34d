import assert from "node:assert/strict";
import { RuntimeError } from "../lib/error.ts";
import { handoffFor, isValidInterfaceName } from "../lib/iface_name.ts";

Deno.test("interface names of 1 to 15 bytes without /, : or whitespace are valid", () => {
  for (
    const name of [
      "a",
      "ptun0",
      "tun-phantun_01",
      "x".repeat(15),
      "..a",
      ".hidden",
      "ü",
      "名字",
    ]
  ) {
    assert.ok(isValidInterfaceName(name), name);
  }
});

Deno.test("interface names the kernel refuses are invalid", () => {
  const invalid = [
    "",
    ".",
    "..",
    "x".repeat(16),
    "ü".repeat(8), // 16 bytes of UTF-8
    "a/b",
    "a:b",
    "a b",
    "a\tb",
    "a\nb",
    "a\vb",
    "a\fb",
    "a\rb",
    "a\u00a0", // U+00A0 is encoded C2 A0: the kernel's isspace() takes 0xA0
  ];
  for (const name of invalid) {
    assert.ok(!isValidInterfaceName(name), JSON.stringify(name));
  }
});

Deno.test("no IFACE_FILE means no handoff, whatever IFACE_NAME says", () => {
  assert.equal(handoffFor(undefined, undefined), null);
  assert.equal(handoffFor(undefined, "not/valid"), null);
});

Deno.test("IFACE_FILE with a valid IFACE_NAME is a handoff", () => {
  assert.deepEqual(handoffFor("/run/x", "ptun0"), {
    file: "/run/x",
    name: "ptun0",
  });
});

Deno.test("IFACE_FILE with a missing or invalid IFACE_NAME is refused naming IFACE_NAME", () => {
  for (const name of [undefined, "", "a b", "x".repeat(16)]) {
    assert.throws(
      () => handoffFor("/run/x", name),
      (error) =>
        error instanceof RuntimeError && error.exitCode === 2 &&
        /^IFACE_NAME /.test(error.message),
    );
  }
});

Deno.test("an empty IFACE_FILE is refused naming IFACE_FILE", () => {
  assert.throws(() => handoffFor("", "ptun0"), /IFACE_FILE is set but empty/);
});
