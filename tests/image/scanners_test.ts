/**
 * The scanners a platform team runs before it admits a deployment
 * (scripts/provision-tools.sh builds or installs them; no network): checkov,
 * kube-score and trivy over deploy/kubernetes/ and the Dockerfile, hadolint
 * over the Dockerfile, KICS over compose.yaml (none of the others reads it).
 * Every finding is fixed or waived in the file it is about, with the tool's
 * own annotation and a reason beside it: each scan finds nothing, and every
 * waiver names why.
 */
import assert from "node:assert/strict";
import { testWhen } from "../helpers.ts";
import { CACHE, exec, isFile, ROOT, tempDir } from "./harness.ts";

const VENV = `${CACHE}/scanners-venv/bin`;
const CHECKOV = `${VENV}/checkov`;
const HADOLINT = `${VENV}/hadolint`;
const KUBE_SCORE = `${CACHE}/kube-score-v1.20.0`;
const TRIVY = `${CACHE}/trivy-v0.74.0`;
const KICS = `${CACHE}/kics-v2.2.0`;
const KICS_QUERIES = `${CACHE}/kics-v2.2.0-queries`;

const MANIFESTS = `${ROOT}deploy/kubernetes`;
const DOCKERFILE = `${ROOT}Dockerfile`;
const COMPOSE = `${ROOT}compose.yaml`;

/** Why `tool` cannot run, or null. */
const missing = (tool: string) =>
  isFile(tool) ? null : `${tool} not found (scripts/provision-tools.sh)`;

/** The manifests (the directory's YAML files), with their texts. */
function manifestTexts(): [string, string][] {
  return [...Deno.readDirSync(MANIFESTS)].filter((entry) =>
    entry.name.endsWith(".yaml")
  ).map((entry) => [
    entry.name,
    Deno.readTextFileSync(`${MANIFESTS}/${entry.name}`),
  ]);
}

/**
 * `checkov` on `target` (-d DIR or -f FILE) for `framework`, offline: fails
 * nothing, and every check it skips was skipped with a reason (checkov's
 * "No comment provided" otherwise).
 */
async function assertCheckov(target: string[], framework: string) {
  const result = await exec(
    [
      CHECKOV,
      ...target,
      "--framework",
      framework,
      "--compact",
      "--skip-download",
      "-o",
      "json",
    ],
    { env: { BC_SKIP_MAPPING: "TRUE" } },
  );
  const report = JSON.parse(result.stdout);
  const failed = report.results.failed_checks.map((check: {
    check_id: string;
    file_path: string;
    file_line_range: number[];
  }) => `${check.check_id} ${check.file_path}:${check.file_line_range[0]}`);
  assert.deepEqual(failed, [], result.stderr);
  assert.equal(result.code, 0, result.stderr);
  for (const check of report.results.skipped_checks) {
    const reason = check.check_result.suppress_comment;
    assert.ok(
      reason && reason !== "No comment provided",
      `${check.check_id} in ${check.file_path} is skipped with no reason`,
    );
  }
  return report.summary;
}

testWhen(
  missing(CHECKOV),
  "checkov fails no check of deploy/kubernetes/, and every check a manifest skips (checkov.io/skip annotation) carries its reason",
  async () => {
    const summary = await assertCheckov(["-d", MANIFESTS], "kubernetes");
    assert.ok(summary.passed > 0);
  },
);

testWhen(
  missing(CHECKOV),
  "checkov fails no check of the Dockerfile, and every check it skips (checkov:skip comment) carries its reason",
  async () => {
    await assertCheckov(["-f", DOCKERFILE], "dockerfile");
  },
);

testWhen(
  missing(KUBE_SCORE),
  "kube-score finds every object of deploy/kubernetes/ OK, and each check a manifest ignores (kube-score/ignore) has its reason in a comment beside it",
  async () => {
    const files = manifestTexts();
    const result = await exec([
      KUBE_SCORE,
      "score",
      "--output-format",
      "ci",
      ...files.map(([name]) => `${MANIFESTS}/${name}`),
    ]);
    const notOk = result.stdout.split("\n")
      .filter((line) => /^\[(CRITICAL|WARNING)\]/.test(line));
    assert.deepEqual(notOk, [], result.stdout + result.stderr);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    for (const [name, text] of files) {
      for (const [, ids] of text.matchAll(/kube-score\/ignore: (\S+)/g)) {
        for (const id of ids.split(",")) {
          assert.match(
            text,
            new RegExp(`^\\s*#\\s+${id}: \\S`, "m"),
            `${name}: no reason for kube-score's ${id}`,
          );
        }
      }
    }
  },
);

/**
 * `trivy config` on `target` with its built-in checks (no download) and the
 * `ignorefile` if any: no misconfiguration of any severity.
 */
async function assertTrivy(target: string, ignorefile?: string) {
  const result = await exec([
    TRIVY,
    "config",
    "--quiet",
    "--skip-check-update",
    "--cache-dir",
    tempDir(),
    ...(ignorefile ? ["--ignorefile", ignorefile] : []),
    "--format",
    "json",
    "--exit-code",
    "1",
    target,
  ]);
  const report = JSON.parse(result.stdout);
  const found = (report.Results ?? []).flatMap((
    file: { Target: string; Misconfigurations?: { ID: string }[] },
  ) => (file.Misconfigurations ?? []).map((m) => `${m.ID} ${file.Target}`));
  assert.deepEqual(found, [], result.stderr);
  assert.equal(result.code, 0, result.stderr);
}

testWhen(
  missing(TRIVY),
  "trivy config finds no misconfiguration in deploy/kubernetes/ beyond what its .trivyignore waives (trivy's Kubernetes scanner reads no inline ignore), each ID there under a comment with its reason",
  async () => {
    const ignorefile = `${MANIFESTS}/.trivyignore`;
    await assertTrivy(MANIFESTS, ignorefile);
    const lines = Deno.readTextFileSync(ignorefile).split("\n");
    lines.forEach((line, i) => {
      if (line === "" || line.startsWith("#")) return;
      assert.match(line, /^[A-Z]+-\d+$/);
      const reason = lines.slice(0, i).findLast((before) =>
        !/^[A-Z]+-\d+$/.test(before)
      );
      assert.match(reason ?? "", /^# \S/, `no reason for ${line}`);
    });
  },
);

testWhen(
  missing(TRIVY),
  "trivy config finds no misconfiguration in the Dockerfile, and each one it ignores (#trivy:ignore) has its reason on the same line",
  async () => {
    const dir = tempDir();
    Deno.copyFileSync(DOCKERFILE, `${dir}/Dockerfile`);
    await assertTrivy(dir);
    for (const line of Deno.readTextFileSync(DOCKERFILE).split("\n")) {
      const ignore = line.match(/#trivy:ignore:(\S+)(.*)$/);
      if (ignore) assert.match(ignore[2], /\S/, `no reason for ${ignore[1]}`);
    }
  },
);

testWhen(
  missing(HADOLINT),
  "hadolint finds nothing in the Dockerfile, and each rule it ignores (at an instruction or for the file) has its reason on the comment line before the pragma",
  async () => {
    const result = await exec([HADOLINT, "--no-color", DOCKERFILE]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    const lines = Deno.readTextFileSync(DOCKERFILE).split("\n");
    lines.forEach((line, i) => {
      if (/^# hadolint (global )?ignore=/.test(line)) {
        assert.match(lines[i - 1], /^# \S/, `no reason before line ${i + 1}`);
      }
    });
  },
);

testWhen(
  missing(KICS) ??
    missing(`${KICS_QUERIES}/dockerCompose/memory_not_limited/query.rego`),
  "KICS finds nothing in compose.yaml, and each query the file disables (kics-scan disable) has its reason in the file's header",
  async () => {
    const out = tempDir();
    const result = await exec([
      KICS,
      "scan",
      "--path",
      COMPOSE,
      "--queries-path",
      `${KICS_QUERIES}/dockerCompose`,
      "--type",
      "DockerCompose",
      "--output-path",
      out,
      "--report-formats",
      "json",
      "--no-progress",
      "--ci",
    ]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    const report = JSON.parse(Deno.readTextFileSync(`${out}/results.json`));
    assert.ok(report.queries_total > 0);
    assert.equal(report.files_parsed, 1, "KICS did not read compose.yaml");
    assert.deepEqual(
      report.queries.map((query: { query_name: string }) => query.query_name),
      [],
    );
    const text = Deno.readTextFileSync(COMPOSE);
    const disabled = text.match(/^# kics-scan disable=(\S+)/m)?.[1] ?? "";
    for (const id of disabled.split(",").filter((id) => id !== "")) {
      assert.match(
        text,
        new RegExp(`^#\\s+${id} \\S`, "m"),
        `compose.yaml: no reason for KICS's ${id}`,
      );
    }
  },
);
