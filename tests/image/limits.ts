/**
 * What the tests that run the shipped manifests and compose.yaml read of the
 * limits: quantities as the files write them, and the cgroups the engines put
 * a container in (cgroup v1, as on these machines).
 */
import { cmd, ok } from "./harness.ts";

const UNITS: Record<string, number> = { "": 1, Ki: 1024, Mi: 1024 ** 2 };

/** A quantity of bytes as the manifests write it (Ki, Mi). */
export function bytes(quantity: string): number {
  const [, number, unit] = quantity.match(/^(\d+)(|Ki|Mi)$/)!;
  return Number(number) * UNITS[unit];
}

/** Bytes as MiB, for the figures the tests print. */
export const mib = (n: number) => `${(n / 1024 ** 2).toFixed(1)} MiB`;

/**
 * A file of the `controller` cgroup (memory by default) of the process whose
 * /proc/PID/status is `status`, e.g. memory.limit_in_bytes.
 */
export async function cgroupFile(
  status: string,
  file: string,
  controller = "memory",
): Promise<string> {
  const pid = status.match(/^Pid:\s+(\d+)$/m)![1];
  const cgroups = await ok(cmd`cat /proc/${pid}/cgroup`);
  const path = cgroups.match(
    new RegExp(`^\\d+:[^:]*\\b${controller}\\b[^:]*:(.*)$`, "m"),
  )![1];
  return await ok(cmd`cat /sys/fs/cgroup/${controller}${path}/${file}`);
}
