/** `deno task bench` refuses a missing prerequisite in one line, naming it. */
import assert from "node:assert/strict";
import { DENO, IS_ROOT, ROOT, tempDir, testWhen } from "./helpers.ts";

testWhen(
  IS_ROOT ? null : "needs root (the benchmarks check for root first)",
  "deno task bench with a prerequisite missing from PATH (iperf3 at least) names it in one line and exits 1",
  () => {
    // Every command the benchmarks look for but iperf3.
    const bin = tempDir();
    for (
      const command of ["sh", "ip", "nft", "ss", "tini-static", "cc", "tar"]
    ) {
      const found = new Deno.Command("sh", {
        args: ["-c", 'command -v "$1"', "sh", command],
      }).outputSync();
      const path = new TextDecoder().decode(found.stdout).trim();
      if (found.success) Deno.symlinkSync(path, `${bin}/${command}`);
    }
    const { code, stdout, stderr } = new Deno.Command(DENO, {
      args: ["task", "--quiet", "bench"],
      cwd: ROOT,
      env: { PATH: bin },
    }).outputSync();
    const text = new TextDecoder().decode(stderr);
    assert.equal(code, 1, text);
    assert.equal(new TextDecoder().decode(stdout), "");
    const named = text.match(
      /^bench: ([\w-]+) not found \(apt-get install [^\n]*\)\n$/,
    );
    assert.ok(named, text);
    assert.throws(() => Deno.lstatSync(`${bin}/${named[1]}`));
  },
);
