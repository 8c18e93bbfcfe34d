/**
 * DESIGN.md and DESIGN-CN.md: one home for every benchmark figure
 * (bench/results.json), the translation in step with the original, and
 * Chinese without the ASCII spaces that re-wrapping leaves between characters.
 */
import assert from "node:assert/strict";
import { ROOT } from "./helpers.ts";

const DESIGNS = ["DESIGN.md", "DESIGN-CN.md"];
const text = (file: string) => Deno.readTextFileSync(`${ROOT}${file}`);

/** Every number in bench/results.json: its values, and those written in its strings. */
function resultNumbers(): number[] {
  const found: number[] = [];
  const walk = (value: unknown) => {
    if (typeof value === "number") found.push(value);
    else if (typeof value === "string") {
      for (const m of value.matchAll(/\d+(?:\.\d+)?/g)) {
        found.push(Number(m[0]));
      }
    } else if (value && typeof value === "object") {
      Object.values(value).forEach(walk);
    }
  };
  walk(JSON.parse(text("bench/results.json")));
  return found;
}

/** The benchmark section (§11) of a design document, below its heading. */
function benchmarks(file: string): string {
  const doc = text(file);
  const start = doc.indexOf("## 11.");
  assert.ok(start !== -1, `${file} has no §11`);
  return doc.slice(doc.indexOf("\n", start)).split("\n## ")[0];
}

Deno.test("every figure DESIGN.md and DESIGN-CN.md quote in their benchmark section is one of bench/results.json's, at the precision written", () => {
  const numbers = resultNumbers();
  for (const file of DESIGNS) {
    // Section references (§8), links and code spans are not figures.
    const prose = benchmarks(file).replace(/§\d+/g, "")
      .replace(/\]\([^)]*\)/g, "]").replace(/`[^`]*`/g, "");
    const figures = [...prose.matchAll(/(?<![\w.])\d+(?:\.\d+)?(?![\w.]*\d)/g)]
      .map((m) => m[0]);
    assert.ok(figures.length > 10, `${file}: no figures`);
    for (const figure of figures) {
      const decimals = figure.split(".")[1]?.length ?? 0;
      const matches = numbers.some((n) =>
        n.toFixed(decimals) === Number(figure).toFixed(decimals)
      );
      assert.ok(matches, `${file}: ${figure} is not in bench/results.json`);
    }
  }
});

Deno.test("DESIGN-CN.md has DESIGN.md's sections, and no ASCII space between two Chinese characters", () => {
  const headings = (file: string) =>
    text(file).split("\n").filter((line) => line.startsWith("#"))
      .map((line) => line.match(/^#+ (\d+\.)?/)![0]);
  assert.deepEqual(headings("DESIGN-CN.md"), headings("DESIGN.md"));
  // A line break inside a paragraph renders as a space too.
  const chinese = text("DESIGN-CN.md").replace(/`[^`]*`/g, "")
    .replace(/\n(?!\n)/g, " ");
  const spaced = [...chinese.matchAll(/[\u4e00-\u9fff] +[\u4e00-\u9fff]/g)]
    .map((m) => m[0]);
  assert.deepEqual(spaced, []);
});
