/**
 * Reliability under load: many start-run-stop cycles leave no process,
 * zombie, open file or temporary file behind.
 */
import assert from "node:assert/strict";
import {
  installFakePhantun,
  manifestFlags,
  readRecord,
  resetRecord,
  startSupervisor,
  waitFor,
} from "../helpers.ts";
import {
  childrenOf,
  figure,
  installBase,
  openFdCount,
  processesMentioning,
  removeInstall,
  since,
  SIZES,
  statusKb,
} from "./harness.ts";

Deno.test(`${SIZES.cycles} start-run-stop cycles leave no process, zombie, open file or temporary file behind`, async () => {
  const start = performance.now();
  const fake = installFakePhantun();
  const base = installBase(fake);
  const file = `${fake.scratch}/iface`;
  const rss: number[] = [];
  const harnessRss = statusKb(Deno.pid, "VmRSS")!;
  const fds: number[] = [];
  const children = childrenOf(Deno.pid);
  for (let cycle = 1; cycle <= SIZES.cycles; cycle++) {
    resetRecord(fake);
    const signal = cycle % 3 === 0 ? "SIGINT" : "SIGTERM";
    const run = startSupervisor(fake, {
      args: [`--phantun-dir=${fake.dir}`, "--", "--tun", "ptun0"],
      env: {
        MODE: cycle % 2 ? "client" : "server",
        IFACE_FILE: file,
        IFACE_NAME: "ptun0",
      },
      flags: manifestFlags(fake.dir, file),
    });
    await waitFor("fake ready", () => readRecord(fake, "ready") !== null);
    assert.equal(Deno.readTextFileSync(file), "ptun0");
    rss.push(statusKb(run.process.pid, "VmRSS") ?? 0);
    run.process.kill(signal);
    const result = await run.finished;
    assert.equal(result.code, signal === "SIGINT" ? 130 : 143, result.stderr);
    assert.equal(Deno.readTextFileSync(file), "");
    assert.deepEqual(childrenOf(Deno.pid), children, `cycle ${cycle}`);
    // The fake's own `sleep` may take a moment to die after its shell.
    await waitFor(
      `cycle ${cycle}: no process left`,
      () => processesMentioning(base).length === 0,
    );
    fds.push(openFdCount());
  }
  // The harness's count has a floor (plus a one-time socketpair early on)
  // and brief spikes of up to 3: the previous run's pipes, closed
  // asynchronously. A leak raises the floor, so the lowest count of the last
  // ten cycles must not exceed the highest of the first ten.
  const early = Math.max(...fds.slice(0, 10));
  const late = Math.min(...fds.slice(-10));
  assert.ok(late <= early, `open files grew: ${early} -> ${late}: ${fds}`);
  assert.deepEqual(
    [...Deno.readDirSync(fake.scratch)].map((e) => e.name),
    ["iface"],
  );
  const sorted = rss.toSorted((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  // Each supervisor is a fresh process: this only catches a gross outlier.
  assert.ok(sorted.at(-1)! < 2 * median, `RSS ${sorted.at(-1)} vs ${median}`);
  figure(
    `cycles: ${SIZES.cycles}, ${since(start)}; supervisor VmRSS kB first ${
      rss[0]
    }, cycle 10 ${rss[9]}, last ${rss.at(-1)}, min ${
      sorted[0]
    }, median ${median}, max ${
      sorted.at(-1)
    }; harness fds (max of first 10 cycles, min of last 10) ${early} -> ${late}, harness VmRSS kB ${harnessRss} -> ${
      statusKb(Deno.pid, "VmRSS")
    }`,
  );
  removeInstall(fake);
});
