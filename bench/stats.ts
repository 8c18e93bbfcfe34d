/** Summaries of repeated measurements, and running them interleaved. */

/** Median, minimum, maximum and count of one series. */
export type Summary = {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly n: number;
};

/** Summarizes `values` (at least one). */
export function summarize(values: readonly number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2
    ? sorted[mid]
    : (sorted[mid - 1] + sorted[mid]) / 2;
  return {
    median,
    min: sorted[0],
    max: sorted[sorted.length - 1],
    n: sorted.length,
  };
}

/**
 * Runs every variant once per round, in the order given (A B C A B C ...),
 * so that a change in the machine's load hits all of them alike; with
 * `rotate`, each round starts one variant later (A B C, B C A, C A B, ...),
 * so that none always runs first or after the same one. Returns each
 * variant's results in round order.
 */
export async function interleave<K extends string, T>(
  rounds: number,
  variants: Record<K, (round: number) => T | Promise<T>>,
  rotate = false,
): Promise<Record<K, T[]>> {
  const names = Object.keys(variants) as K[];
  const results = Object.fromEntries(
    names.map((name) => [name, []]),
  ) as unknown as Record<K, T[]>;
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < names.length; i++) {
      const name = names[(i + (rotate ? round : 0)) % names.length];
      results[name].push(await variants[name](round));
    }
  }
  return results;
}

/** Rounds to `digits` decimals, for reports. */
export function round(value: number, digits = 2): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}
