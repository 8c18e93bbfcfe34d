/** The permission manifest: its one home in deno.json, and what it denies. */
import assert from "node:assert/strict";
import {
  DENO,
  installFakePhantun,
  MAIN,
  manifestFlags,
  ROOT,
} from "./helpers.ts";

const PRODUCTION_IFACE = "/run/phantun/iface";
const PROBE = `${ROOT}tests/fixtures/probe.ts`;

Deno.test("deno.json's production permission set is exactly the contract's manifest", () => {
  const config = JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`));
  assert.deepEqual(config.permissions, {
    production: {
      env: ["MODE", "IFACE_NAME", "IFACE_FILE"],
      run: ["/usr/local/bin/phantun_client", "/usr/local/bin/phantun_server"],
      write: [PRODUCTION_IFACE],
      read: [PRODUCTION_IFACE],
    },
  });
});

/** Runs the probe with `flags`; returns what each access gave. */
function probe(flags: string[], granted: string, other: string, dir: string) {
  const { code, stdout, stderr } = new Deno.Command(DENO, {
    args: ["run", "--no-prompt", ...flags, PROBE, granted, other, dir],
    cwd: ROOT,
    clearEnv: true,
    env: { MODE: "client", HOME: "/root" },
  }).outputSync();
  const decoder = new TextDecoder();
  assert.equal(code, 0, decoder.decode(stderr));
  return JSON.parse(decoder.decode(stdout));
}

const EXPECTED = {
  "env MODE": "allowed",
  "write IFACE file": "allowed",
  "run phantun_client": "allowed",
  "read /etc/passwd": "denied",
  "read the granted IFACE file": "allowed",
  "write another file": "denied",
  "env HOME": "denied",
  "env (all)": "denied",
  "run /bin/sh": "denied",
  "net 127.0.0.1:9": "denied",
  "net listen": "denied",
  "sys hostname": "denied",
  "ffi dlopen": "denied",
  "import http://127.0.0.1:9/": "denied",
};

Deno.test("under the contract's flags only the manifest's env, program and file are allowed", () => {
  const fake = installFakePhantun();
  const granted = `${fake.scratch}/iface`;
  const results = probe(
    manifestFlags(fake.dir, granted),
    granted,
    `${fake.scratch}/other`,
    fake.dir,
  );
  assert.deepEqual(results, EXPECTED);
});

Deno.test("under -P=production only the manifest's env, program and file are allowed", () => {
  // The production write grant is a path this test cannot create, so the
  // granted write is checked by the query, not performed.
  const fake = installFakePhantun();
  const results = probe(
    ["--quiet", "-P=production"],
    PRODUCTION_IFACE,
    `${fake.scratch}/other`,
    "/usr/local/bin",
  );
  const {
    "write IFACE file": write,
    "read the granted IFACE file": read,
    ...rest
  } = results;
  const {
    "write IFACE file": _w,
    "read the granted IFACE file": _r,
    ...expected
  } = EXPECTED;
  assert.deepEqual(rest, expected);
  assert.notEqual(write, "denied");
  assert.notEqual(read, "denied");
});

Deno.test("the supervisor starts under -P=production with no warning on stderr", () => {
  const { code, stdout, stderr } = new Deno.Command(DENO, {
    args: ["run", "--no-prompt", "--quiet", "-P=production", MAIN, "--version"],
    cwd: ROOT,
  }).outputSync();
  assert.equal(code, 0);
  assert.match(
    new TextDecoder().decode(stdout),
    /^phantun-runtime \d+\.\d+\.\d+\n$/,
  );
  assert.equal(new TextDecoder().decode(stderr), "");
});
