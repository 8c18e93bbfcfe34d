/**
 * The README's test command provisions real phantun itself: `deno task test`
 * from an empty PHANTUN_CACHE builds phantun 0.8.1 from crates.io (one
 * progress line) and runs the real-phantun tests; without cargo it skips them
 * and says so. Each case runs `deno task test` filtered to two real-phantun
 * tests: the namespaces' teardown and the demo, which provisions phantun a
 * second time in the same run and must find it built.
 */
import assert from "node:assert/strict";
import { phantunDir } from "../e2e/topology.ts";
import {
  DENO,
  IS_ROOT,
  missingCommand,
  ROOT,
  tempDir,
  testWhen,
} from "./helpers.ts";

/** The start of the names of the e2e tests the inner runs select. */
const SELECTED = "namespaces are torn down|deno task demo --duration";

/** The progress line scripts/provision-phantun.sh prints while it builds. */
const BUILDING = /^provision-phantun: building phantun 0\.8\.1 from crates\.io/;

const MISSING = !IS_ROOT
  ? "needs root for network namespaces"
  : missingCommand("ip", "nft", "iptables", "ip6tables");

/** `deno task test`, filtered to the SELECTED tests, from the checkout with `env`; its output's lines. */
async function taskTest(
  env: Record<string, string>,
): Promise<{ code: number; lines: string[] }> {
  const inherited = Deno.env.toObject();
  delete inherited.PHANTUN_DIR; // the cache decides
  delete inherited.PHANTUN_RUNTIME_NO_SKIP; // a SKIP is what one case looks for
  const { code, stdout, stderr } = await new Deno.Command(DENO, {
    args: ["task", "--quiet", "test", "--filter", `/^(${SELECTED})/`],
    cwd: ROOT,
    clearEnv: true,
    env: { ...inherited, NO_COLOR: "1", ...env },
  }).output();
  const text = new TextDecoder();
  const lines = (text.decode(stdout) + text.decode(stderr)).split("\n");
  return { code, lines };
}

testWhen(
  MISSING ?? missingCommand("cargo"),
  "deno task test from an empty PHANTUN_CACHE builds phantun from crates.io with one progress line and runs the real-phantun tests, none skipped",
  async () => {
    const cache = tempDir();
    // Cargo's build directory of this run's own provisioning: cargo installs
    // from it instead of compiling phantun a second time in one run.
    const target = `${phantunDir().slice(0, -"/bin".length)}/target`;
    const { code, lines } = await taskTest({
      PHANTUN_CACHE: cache,
      CARGO_TARGET_DIR: target,
    });
    const output = lines.join("\n");
    assert.equal(code, 0, output);
    assert.equal(lines.filter((line) => BUILDING.test(line)).length, 1, output);
    assert.ok(!lines.some((line) => line.includes("Compiling ")), output);
    assert.match(output, /^ok \| 2 passed \| 0 failed \| \d+ filtered out/m);
    for (const name of ["phantun_client", "phantun_server"]) {
      const binary = `${cache}/phantun-0.8.1/bin/${name}`;
      const version = await new Deno.Command(binary, { args: ["--version"] })
        .output();
      assert.match(new TextDecoder().decode(version.stdout), /\b0\.8\.1\b/);
    }
  },
);

testWhen(
  MISSING,
  "deno task test without cargo on PATH and with an empty PHANTUN_CACHE skips the real-phantun tests, each naming the missing cargo",
  async () => {
    const cache = tempDir();
    const path = (Deno.env.get("PATH") ?? "").split(":").filter((dir) => {
      try {
        return !Deno.statSync(`${dir}/cargo`).isFile;
      } catch {
        return true;
      }
    });
    const { code, lines } = await taskTest({
      PHANTUN_CACHE: cache,
      PATH: path.join(":"),
    });
    const output = lines.join("\n");
    assert.equal(code, 0, output);
    assert.ok(!lines.some((line) => BUILDING.test(line)), output);
    const skips = lines.filter((line) =>
      new RegExp(`^SKIP (${SELECTED})`).test(line)
    );
    assert.equal(skips.length, 2, output);
    for (const skip of skips) {
      assert.ok(
        skip.endsWith(
          `: no phantun binaries in ${cache}/phantun-0.8.1/bin and cargo not found on PATH to build them (scripts/provision-phantun.sh)`,
        ),
        skip,
      );
    }
    assert.match(output, /^ok \| 0 passed \| 0 failed \| 2 ignored/m);
    assert.deepEqual([...Deno.readDirSync(cache)], []);
  },
);
