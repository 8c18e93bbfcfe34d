/**
 * The documents cannot rot: every runnable (sh) block of README.md and
 * deploy/README.md carries a `<!-- readme-test: ID -->` marker, and every ID
 * is run by a test or by .ci/run.
 */
import assert from "node:assert/strict";
import { DOCS, docTexts, readmeBlock } from "../e2e/topology.ts";
import { ROOT } from "./helpers.ts";

const TEXTS = docTexts();

/** Where each block is executed, by ID. */
const RUNNERS: Record<string, string> = {
  "quickstart-docker": "tests/image/harness.ts",
  tests: ".ci/run",
  forwarding: "e2e/topology.ts",
  "forward-accept": "e2e/topology.ts",
  "client-nft": "e2e/topology.ts",
  "server-nft": "e2e/topology.ts",
  "client-iptables": "e2e/topology.ts",
  "server-iptables": "e2e/topology.ts",
  demo: "tests/e2e_test.ts",
  "traffic-seen": "tests/e2e_test.ts",
  "docker-host-server": "tests/image/harness.ts",
  "docker-host-client": "tests/image/harness.ts",
  "docker-stop": "tests/image/harness.ts",
  "docker-root": "tests/image/harness.ts",
  "docker-handoff": "tests/image/harness.ts",
  "docker-bridge-server": "tests/image/network_test.ts",
  "docker-bridge-client": "tests/image/network_test.ts",
  "docker-build-labels": "tests/image/harness.ts",
  "docker-pin-commit": "tests/image/harness.ts",
  "docker-pin-tarball": "tests/image/harness.ts",
  "docker-audit": "tests/image/harness.ts",
  "docker-compose": "tests/image/compose_test.ts",
  "docker-buildx-arm64": "tests/image/harness.ts",
  "podman-load": "tests/image/profiles_test.ts",
  logs: "tests/image/troubleshooting_test.ts",
  "seccomp-install": "tests/image/seccomp_test.ts",
  "tunnels-tmpfiles": "tests/image/tunnels_test.ts",
  "tunnels-server-nft": "tests/image/tunnels_test.ts",
  "tunnels-client-nft": "tests/image/tunnels_test.ts",
  "tunnels-servers": "tests/image/tunnels_test.ts",
  "tunnels-clients": "tests/image/tunnels_test.ts",
  "buildx-remote": "tests/image/registry.ts",
  "buildx-multiarch": "tests/image/release_test.ts",
  release: "tests/image/release_test.ts",
  "verify-release": "tests/image/release_test.ts",
};

Deno.test("every sh block in README.md and deploy/README.md is preceded by a readme-test marker", () => {
  for (const [i, text] of TEXTS.entries()) {
    const blocks = [
      ...text.matchAll(/(<!-- readme-test: ([\w-]+) -->\n\n)?```sh\n/g),
    ];
    assert.ok(blocks.length > 0, DOCS[i]);
    for (const block of blocks) {
      assert.ok(
        block[2],
        `${DOCS[i]}: unmarked sh block at offset ${block.index}`,
      );
    }
  }
});

Deno.test("every marker is executed where RUNNERS says", () => {
  const ids = TEXTS.flatMap((text) =>
    [...text.matchAll(/<!-- readme-test: ([\w-]+) -->/g)].map((m) => m[1])
  );
  assert.deepEqual(ids.toSorted(), Object.keys(RUNNERS).toSorted());
  // Each runner's source, read once however many blocks it runs.
  const sources = new Map(
    [...new Set(Object.values(RUNNERS))].map((runner) => [
      runner,
      Deno.readTextFileSync(`${ROOT}${runner}`),
    ]),
  );
  for (const [id, runner] of Object.entries(RUNNERS)) {
    const source = sources.get(runner)!;
    const block = readmeBlock(id);
    // A runner either extracts the block by ID or holds the whole block
    // verbatim, as one piece.
    const runsIt = source.includes(`"${id}"`) || source.includes(block.trim());
    assert.ok(runsIt, `${runner} does not run block ${id}`);
  }
});

Deno.test("README's MTU figures are the end-to-end tests' largest payloads, and WireGuard's upstream rule applied to them", () => {
  const readme = TEXTS[0];
  const e2e = Deno.readTextFileSync(`${ROOT}tests/e2e_test.ts`);
  for (const payload of [1460, 1440]) {
    assert.ok(e2e.includes(`${payload}]`), `the e2e tests send ${payload}`);
    assert.ok(readme.includes(`${payload} `), `README: ${payload}`);
    // Less WireGuard's 32 bytes of overhead.
    assert.ok(
      readme.includes(`**${payload - 32}**`),
      `README: ${payload - 32}`,
    );
  }
});
