/**
 * Security: code under the manifest trying many ways out (/etc/passwd, a
 * socket, HOME, /bin/sh, another file) is denied; module loading, which is
 * outside the read grant, and the supervisor's module graph.
 */
import assert from "node:assert/strict";
import {
  DENO,
  installFakePhantun,
  MAIN,
  manifestFlags,
  ROOT,
} from "../helpers.ts";
import { figure, readBytes, removeInstall, SOAK } from "./harness.ts";

const ESCAPE_PROBE = `${ROOT}tests/fixtures/escape_probe.ts`;
const ATTEMPTS = SOAK ? 200 : 20;

/** Runs the escape probe with `flags`; returns each probe's outcomes. */
function escape(flags: string[], granted: string, other: string, dir: string) {
  const { code, stdout, stderr } = new Deno.Command(DENO, {
    args: [
      "run",
      "--no-prompt",
      ...flags,
      ESCAPE_PROBE,
      granted,
      other,
      dir,
      String(ATTEMPTS),
    ],
    cwd: ROOT,
    clearEnv: true,
    env: { MODE: "client", HOME: "/root-home-secret", PATH: "/usr/bin:/bin" },
  }).outputSync();
  const text = new TextDecoder().decode(stdout);
  assert.equal(code, 0, new TextDecoder().decode(stderr));
  assert.ok(!text.includes("root-home-secret"), "HOME leaked");
  assert.ok(!text.includes("root:x:0:0"), "/etc/passwd leaked");
  return JSON.parse(text) as Record<
    string,
    { denied: number; other: string[] }
  >;
}

function assertAllDenied(
  results: Record<string, { denied: number; other: string[] }>,
) {
  const escaped = Object.entries(results).filter(([, r]) =>
    r.denied !== ATTEMPTS
  );
  assert.deepEqual(escaped, []);
  assert.ok(Object.keys(results).length >= 35);
  figure(
    `escape probes: ${
      Object.keys(results).length
    } x ${ATTEMPTS} attempts, all denied`,
  );
}

Deno.test(`under the contract's flags ${ATTEMPTS} tries at each way to /etc/passwd, a socket, HOME, /bin/sh or another file are all denied`, () => {
  const fake = installFakePhantun();
  const granted = `${fake.scratch}/iface`;
  Deno.writeTextFileSync(granted, "ptun0");
  const other = `${fake.scratch}/other`;
  assertAllDenied(
    escape(manifestFlags(fake.dir, granted), granted, other, fake.dir),
  );
  assert.equal(readBytes(other), null);
  assert.equal(Deno.readTextFileSync(granted), "ptun0");
  removeInstall(fake);
});

Deno.test(`under -P=production ${ATTEMPTS} tries at each way to /etc/passwd, a socket, HOME, /bin/sh or another file are all denied`, () => {
  const fake = installFakePhantun();
  const other = `${fake.scratch}/other`;
  assertAllDenied(
    escape(
      ["--quiet", "-P=production"],
      "/run/phantun/iface",
      other,
      "/usr/local/bin",
    ),
  );
  assert.equal(readBytes(other), null);
  removeInstall(fake);
});

Deno.test("module loading is outside the read grant: a literal import of /etc/passwd as text works under the manifest", () => {
  // Why the next test exists. Deno loads statically analysable imports,
  // dynamic ones with a literal specifier included, with no read permission.
  const probe = Deno.makeTempFileSync({ suffix: ".ts" });
  Deno.writeTextFileSync(
    probe,
    'const m = await import("file:///etc/passwd", { with: { type: "text" } });\nconsole.log(String(m.default).split("\\n")[0].split(":")[0]);\n',
  );
  const { code, stdout } = new Deno.Command(DENO, {
    args: ["run", "--no-prompt", "--allow-env=MODE", probe],
  }).outputSync();
  assert.equal(code, 0);
  assert.equal(new TextDecoder().decode(stdout), "root\n");
  Deno.removeSync(probe);
});

Deno.test("the supervisor's module graph is only main.ts, lib/*.ts and deno.json: no node: built-in (each costs startup time)", () => {
  const { code, stdout } = new Deno.Command(DENO, {
    args: ["info", "--json", MAIN],
    cwd: ROOT,
  }).outputSync();
  assert.equal(code, 0);
  const { modules } = JSON.parse(new TextDecoder().decode(stdout)) as {
    modules: { specifier: string }[];
  };
  const root = new URL(`file://${ROOT}`).href;
  const ours = (specifier: string) =>
    specifier.startsWith(root) &&
    /^(main\.ts|deno\.json|lib\/[a-z_]+\.ts)$/.test(
      specifier.slice(root.length),
    );
  const outside = modules.map((m) => m.specifier).filter((specifier) =>
    !ours(specifier)
  );
  assert.deepEqual(outside, []);
  assert.ok(modules.some((m) => m.specifier === `${root}main.ts`));
});
