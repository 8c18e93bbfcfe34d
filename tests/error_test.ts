import assert from "node:assert/strict";
import { quote, reason } from "../lib/error.ts";

Deno.test("reason keeps the operating system's words and drops Deno's operation and path", () => {
  assert.equal(
    reason(
      new Deno.errors.PermissionDenied(
        "Permission denied (os error 13): writefile '/run/phantun/iface'",
      ),
    ),
    "Permission denied",
  );
  assert.equal(
    reason(
      new Error(
        "Failed to spawn '/a\nb': No such file or directory (os error 2)",
      ),
    ),
    "No such file or directory",
  );
  assert.equal(
    reason(new Error("No such file or directory (os error 2): lstat '/x\ny'")),
    "No such file or directory",
  );
});

Deno.test("reason leaves a message that is not an OS error as it is", () => {
  assert.equal(reason(new Error("Requires run access")), "Requires run access");
  assert.equal(reason("text"), "text");
});

Deno.test("quote escapes control characters so that a value stays on one line", () => {
  assert.equal(quote("a\nb"), '"a\\nb"');
});
