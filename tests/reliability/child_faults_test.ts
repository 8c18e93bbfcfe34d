/**
 * Reliability: child faults. phantun exits with any status, dies of a signal,
 * exits at once or is killed from outside: the supervisor reports the right
 * status and leaves IFACE_FILE empty.
 */
import assert from "node:assert/strict";
import {
  manifestFlags,
  readRecord,
  startSupervisor,
  waitFor,
} from "../helpers.ts";
import { figure, runCases, SEED, since, SIZES } from "./harness.ts";

/** No core files from the faults below, whatever the host's ulimit says. */
const NO_CORE = ["sh", "-c", 'ulimit -c 0; exec "$@"', "sh"];

const SELF_SIGNALS = [
  ["KILL", 9],
  ["SEGV", 11],
  ["ABRT", 6],
  ["TERM", 15],
  ["BUS", 7],
  ["FPE", 8],
  ["ILL", 4],
  ["HUP", 1],
  ["USR1", 10],
  ["PIPE", 13],
  ["ALRM", 14],
] as const;
const EXTERNAL_SIGNALS = [["SIGKILL", 9], ["SIGSEGV", 11], [
  "SIGABRT",
  6,
]] as const;

Deno.test(`${SIZES.childFaults} seeded random child faults (exit N, death by signal, instant exit, killed from outside) each give the right status and an empty IFACE_FILE`, async () => {
  const start = performance.now();
  const kinds: Record<string, number> = {};
  await runCases(SIZES.childFaults, async (rng, fake) => {
    const shFake = Deno.readTextFileSync(`${fake.dir}/phantun_client`);
    const file = `${fake.scratch}/iface`;
    const env: Record<string, string> = {
      MODE: "client",
      IFACE_FILE: file,
      IFACE_NAME: "ptun0",
    };
    let expected: number;
    let external: Deno.Signal | null = null;
    let kind: string;
    let instant = false;
    switch (rng.int(0, 3)) {
      case 0:
        expected = rng.int(0, 255);
        env.FAKE_EXIT = String(expected);
        kind = "exit N";
        break;
      case 1: {
        const [name, number] = rng.pick(SELF_SIGNALS);
        env.FAKE_SIGNAL = name;
        expected = 128 + number;
        kind = "dies of a signal";
        break;
      }
      case 2: {
        const binary = rng.pick(["/bin/true", "/bin/false"]);
        Deno.copyFileSync(binary, `${fake.dir}/phantun_client`);
        expected = binary === "/bin/true" ? 0 : 1;
        instant = true;
        kind = "exits instantly";
        break;
      }
      default: {
        const [name, number] = rng.pick(EXTERNAL_SIGNALS);
        external = name;
        expected = 128 + number;
        kind = "killed from outside";
      }
    }
    kinds[kind] = (kinds[kind] ?? 0) + 1;
    try {
      const run = startSupervisor(fake, {
        args: [`--phantun-dir=${fake.dir}`, "--"],
        env,
        flags: manifestFlags(fake.dir, file),
        wrapper: NO_CORE,
      });
      if (external) {
        await waitFor("fake ready", () => readRecord(fake, "ready") !== null);
        Deno.kill(Number(readRecord(fake, "pid")), external);
      }
      const result = await run.finished;
      assert.equal(result.code, expected, `${kind}: ${result.stderr}`);
      assert.equal(result.stderr, "");
      assert.equal(Deno.readTextFileSync(file), "", "IFACE_FILE not emptied");
      if (!instant) assert.equal(readRecord(fake, "iface"), "ptun0");
    } finally {
      Deno.writeTextFileSync(`${fake.dir}/phantun_client`, shFake);
    }
  });
  figure(
    `child faults: ${SIZES.childFaults} ${
      JSON.stringify(kinds)
    }, seed ${SEED}, ${since(start)}`,
  );
});
