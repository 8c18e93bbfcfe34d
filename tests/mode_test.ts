import assert from "node:assert/strict";
import { RuntimeError } from "../lib/error.ts";
import { binaryFor } from "../lib/mode.ts";

Deno.test("MODE=client runs phantun_client and MODE=server runs phantun_server", () => {
  assert.equal(
    binaryFor("client", "/usr/local/bin"),
    "/usr/local/bin/phantun_client",
  );
  assert.equal(binaryFor("server", "/opt/p/"), "/opt/p/phantun_server");
});

Deno.test("MODE that is unset, empty, padded or in another case is refused naming MODE", () => {
  for (
    const mode of [
      undefined,
      "",
      "Client",
      "SERVER",
      " client",
      "server\n",
      "both",
    ]
  ) {
    assert.throws(
      () => binaryFor(mode, "/usr/local/bin"),
      (error) =>
        error instanceof RuntimeError && error.exitCode === 2 &&
        error.message.startsWith("MODE ") &&
        !error.message.includes("\n"),
      `MODE ${JSON.stringify(mode)}`,
    );
  }
});
