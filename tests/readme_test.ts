/**
 * The README cannot rot: every runnable (sh) block carries a
 * `<!-- readme-test: ID -->` marker, and every ID is run by a test or by .ci/run.
 */
import assert from "node:assert/strict";
import { ROOT } from "./helpers.ts";

const README = Deno.readTextFileSync(`${ROOT}README.md`);

/** Where each README block is executed, by ID. */
const RUNNERS: Record<string, string> = {
  "quickstart-docker": "tests/image/harness.ts",
  tests: ".ci/run",
  variables: "e2e/topology.ts",
  forwarding: "e2e/topology.ts",
  "client-nft": "e2e/topology.ts",
  "server-nft": "e2e/topology.ts",
  "client-iptables": "e2e/topology.ts",
  "server-iptables": "e2e/topology.ts",
  demo: "tests/e2e_test.ts",
  "docker-host-server": "tests/image/harness.ts",
  "docker-host-client": "tests/image/harness.ts",
  "docker-stop": "tests/image/harness.ts",
  "docker-root": "tests/image/harness.ts",
  "docker-bridge-server": "tests/image/network_test.ts",
  "docker-bridge-client": "tests/image/network_test.ts",
  "docker-pin-commit": "tests/image/harness.ts",
  "docker-pin-tarball": "tests/image/harness.ts",
  "docker-audit": "tests/image/harness.ts",
  "docker-compose": "tests/image/compose_test.ts",
  "tmpfiles-install": "tests/image/harness.ts",
  logs: "tests/image/troubleshooting_test.ts",
  "tunnels-tmpfiles": "tests/image/tunnels_test.ts",
  "tunnels-server-nft": "tests/image/tunnels_test.ts",
  "tunnels-client-nft": "tests/image/tunnels_test.ts",
  "tunnels-servers": "tests/image/tunnels_test.ts",
  "tunnels-clients": "tests/image/tunnels_test.ts",
  "docker-handoff": "tests/image/harness.ts",
  "docker-build-labels": "tests/image/harness.ts",
  "docker-buildx-arm64": "tests/image/arch_test.ts",
  "podman-load": "tests/image/profiles_test.ts",
};

Deno.test("every sh block in README.md is preceded by a readme-test marker", () => {
  const blocks = [
    ...README.matchAll(/(<!-- readme-test: ([\w-]+) -->\n\n)?```sh\n/g),
  ];
  assert.ok(blocks.length > 0);
  for (const block of blocks) {
    assert.ok(block[2], `unmarked sh block at offset ${block.index}`);
  }
});

Deno.test("every README marker is executed where RUNNERS says", () => {
  const ids = [...README.matchAll(/<!-- readme-test: ([\w-]+) -->/g)].map((m) =>
    m[1]
  );
  assert.deepEqual(ids.toSorted(), Object.keys(RUNNERS).toSorted());
  for (const [id, runner] of Object.entries(RUNNERS)) {
    const source = Deno.readTextFileSync(`${ROOT}${runner}`);
    const block =
      README.slice(README.indexOf(`<!-- readme-test: ${id} -->`)).match(
        /```sh\n([\s\S]*?)```/,
      )![1];
    // A runner either extracts the block by ID or holds the whole block
    // verbatim, as one piece.
    const runsIt = source.includes(`"${id}"`) || source.includes(block.trim());
    assert.ok(runsIt, `${runner} does not run README block ${id}`);
  }
});
