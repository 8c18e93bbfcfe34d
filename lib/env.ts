/** The runtime's three variables, read as strings. */
import { RuntimeError } from "./error.ts";

/**
 * The value of the granted variable `name`, or undefined when unset. Deno
 * cannot read a value that is not UTF-8: that is a RuntimeError (exit 2)
 * naming the variable, not Deno's message, which names only the value.
 */
export function readVariable(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch (error) {
    if (error instanceof Deno.errors.InvalidData) {
      throw new RuntimeError(`${name} is not valid UTF-8`);
    }
    throw error;
  }
}
