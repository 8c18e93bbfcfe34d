/**
 * Reliability: signals. A phantun that ignores SIGTERM/SIGINT gets every one;
 * a flood while phantun exits changes nothing; thousands of mixed forwarded
 * signals in one run are each delivered and counted (see the comment in the
 * last test for how).
 */
import assert from "node:assert/strict";
import { Random } from "../fuzz.ts";
import {
  CC_MISSING,
  installFakePhantun,
  manifestFlags,
  readRecord,
  resetRecord,
  testWhen,
} from "../helpers.ts";
import {
  figure,
  installBase,
  installCountingPhantun,
  processesMentioning,
  removeInstall,
  SEED,
  seeded,
  since,
  SIZES,
  statusKb,
  StreamingSupervisor,
} from "./harness.ts";

testWhen(
  CC_MISSING,
  `a phantun that ignores SIGTERM and SIGINT gets every one of them, keeps the supervisor waiting, and its SIGKILL gives 137 and an empty IFACE_FILE (${SIZES.ignoredTermRounds} rounds)`,
  () =>
    seeded(async () => {
      const fake = installFakePhantun();
      installCountingPhantun(fake);
      const file = `${fake.scratch}/iface`;
      const rng = new Random(SEED);
      for (let round = 0; round < SIZES.ignoredTermRounds; round++) {
        resetRecord(fake);
        const run = new StreamingSupervisor(fake, {
          args: [`--phantun-dir=${fake.dir}`, "--"],
          env: { MODE: "server", IFACE_FILE: file, IFACE_NAME: "ptun0" },
          flags: manifestFlags(fake.dir, file),
        });
        try {
          assert.equal(await run.next(), "R");
          assert.equal(Deno.readTextFileSync(file), "ptun0");
          for (let n = rng.int(1, 5); n > 0; n--) {
            const signal = rng.pick(["SIGTERM", "SIGINT"] as const);
            run.process.kill(signal);
            assert.equal(await run.next(), signal === "SIGTERM" ? "T" : "I");
            // Emptied before the first one was passed on.
            assert.equal(Deno.readTextFileSync(file), "");
            assert.equal(run.exited, false, "supervisor left phantun behind");
          }
          Deno.kill(Number(readRecord(fake, "pid")), "SIGKILL");
          const { code, stderr } = await run.finish();
          assert.equal(code, 137, `round ${round}: ${stderr}`);
          assert.equal(stderr, "");
          assert.equal(Deno.readTextFileSync(file), "");
        } catch (error) {
          run.kill();
          await run.finish().catch(() => {});
          throw error;
        }
      }
      assert.deepEqual(processesMentioning(installBase(fake)), []);
      removeInstall(fake);
    }),
);

testWhen(
  CC_MISSING,
  "a flood of signals while phantun exits by itself neither crashes the supervisor nor changes phantun's status",
  async () => {
    const fake = installFakePhantun();
    installCountingPhantun(fake);
    const file = `${fake.scratch}/iface`;
    const run = new StreamingSupervisor(fake, {
      args: [`--phantun-dir=${fake.dir}`, "--"],
      env: {
        MODE: "client",
        IFACE_FILE: file,
        IFACE_NAME: "ptun0",
        FAKE_STOP_AFTER: "50",
      },
      flags: manifestFlags(fake.dir, file),
    });
    assert.equal(await run.next(), "R");
    const flood = ["SIGUSR1", "SIGUSR2", "SIGHUP", "SIGQUIT"] as const;
    let sent = 0;
    // Until the supervisor is gone: it keeps getting signals after phantun exits.
    while (!run.exited && sent < 100_000) {
      try {
        run.process.kill(flood[sent % flood.length]);
      } catch {
        break; // exited between the check and the kill
      }
      if (++sent % 100 === 0) await new Promise((r) => setTimeout(r, 0));
    }
    const { code, stderr } = await run.finish();
    assert.equal(code, 0, stderr);
    // SIGUSR1 among them is blocked: no inspector banner, nothing at all,
    // and never forwarded.
    assert.equal(stderr, "");
    assert.match(readRecord(fake, "counts")!, /^USR1 0$/m);
    assert.equal(Deno.readTextFileSync(file), "");
    assert.ok(sent > 50, `only ${sent} signals sent`);
    removeInstall(fake);
  },
);

/** The signals the supervisor forwards and the byte the counting fake acknowledges each with. */
const ACKS: Record<string, Deno.Signal> = {
  H: "SIGHUP",
  I: "SIGINT",
  Q: "SIGQUIT",
  "2": "SIGUSR2",
  T: "SIGTERM",
};

testWhen(
  CC_MISSING,
  `${SIZES.signals} mixed forwarded signals during one run all reach phantun, counted per kind`,
  () =>
    seeded(async () => {
      // How we count: standard signals coalesce while pending (in the kernel,
      // at both hops, and in Deno's signal stream), so the test keeps at most
      // ONE signal of each kind in flight: it sends a SIGUSR2 only after the
      // fake (tests/fixtures/counting_phantun.c, sigwaitinfo) has written its
      // acknowledgement byte for the previous SIGUSR2. Up to five kinds are in
      // flight at once, none can coalesce, so every signal sent must arrive:
      // counted three ways (sent by the test, acknowledged on stdout, and the
      // fake's own tally in FAKE_RECORD/counts), all equal.
      const start = performance.now();
      const fake = installFakePhantun();
      installCountingPhantun(fake);
      const file = `${fake.scratch}/iface`;
      const total = SIZES.signals;
      const run = new StreamingSupervisor(fake, {
        args: [`--phantun-dir=${fake.dir}`, "--"],
        env: {
          MODE: "client",
          IFACE_FILE: file,
          IFACE_NAME: "ptun0",
          FAKE_STOP_AFTER: String(total),
        },
        flags: manifestFlags(fake.dir, file),
      });
      const kinds = Object.values(ACKS);
      const rng = new Random(SEED);
      const plan = Array.from({ length: total }, () => rng.pick(kinds));
      const sent: Record<string, number> = {};
      const acked: Record<string, number> = {};
      const inFlight = new Set<Deno.Signal>();
      const rss: number[] = [];
      try {
        assert.equal(await run.next(), "R");
        let next = 0;
        for (let done = 0; done < total; done++) {
          while (next < total && !inFlight.has(plan[next])) {
            inFlight.add(plan[next]);
            sent[plan[next]] = (sent[plan[next]] ?? 0) + 1;
            run.process.kill(plan[next++]);
          }
          const ack = await run.next();
          const signal = ACKS[ack];
          assert.ok(inFlight.delete(signal), `unexpected ${ack} (${signal})`);
          acked[signal] = (acked[signal] ?? 0) + 1;
          if (done % 1000 === 0) rss.push(statusKb(run.process.pid, "VmRSS")!);
        }
      } catch (error) {
        run.kill();
        await run.finish().catch(() => {});
        throw error;
      }
      const { code, rest, stderr } = await run.finish();
      assert.equal(code, 0, stderr);
      assert.equal(stderr, "");
      assert.equal(rest, "", "acknowledgements after the last");
      assert.deepEqual(acked, sent);
      const tally = Object.fromEntries(
        readRecord(fake, "counts")!.trim().split("\n").map((line) => {
          const [name, count] = line.split(" ");
          return [`SIG${name}`, Number(count)];
        }).filter(([, count]) => count !== 0),
      );
      assert.deepEqual(tally, sent);
      assert.equal(Deno.readTextFileSync(file), "");
      if (rss.length >= 10) {
        // One long-lived process: after warm-up its RSS must level off. A
        // leak of 800 bytes per signal would add 4 MB over the second half.
        const growth = rss.at(-1)! - rss[Math.floor(rss.length / 2)];
        assert.ok(growth < 4096, `RSS grew ${growth} kB: ${rss.join(" ")}`);
      }
      figure(
        `signals: ${total} ${JSON.stringify(sent)}, ${
          since(start)
        }; supervisor VmRSS kB every 1000: ${rss.join(" ")}`,
      );
      removeInstall(fake);
    }),
);
