import assert from "node:assert/strict";
import { exitCodeForSpawnError } from "../lib/exit_code.ts";

Deno.test("a missing binary exits 127", () => {
  assert.equal(exitCodeForSpawnError(new Deno.errors.NotFound("x")), 127);
});

Deno.test("a binary that cannot be executed exits 126", () => {
  assert.equal(
    exitCodeForSpawnError(new Deno.errors.PermissionDenied("x")),
    126,
  );
  assert.equal(exitCodeForSpawnError(new Deno.errors.IsADirectory("x")), 126);
  assert.equal(exitCodeForSpawnError(new Error("Exec format error")), 126);
});

Deno.test("a spawn refused by Deno's permissions is a configuration error: 2", () => {
  assert.equal(
    exitCodeForSpawnError(new Deno.errors.NotCapable("LD_PRELOAD")),
    2,
  );
});
