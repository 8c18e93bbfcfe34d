/**
 * The shipped Kubernetes manifests of deploy/kubernetes/, read and parsed for
 * the tests that validate them, run them (`podman kube play`, a real kubelet)
 * and scan them.
 */
import assert from "node:assert/strict";
import { CACHE, isFile, ROOT } from "./harness.ts";

/** The two roles, each a DaemonSet of its own. */
export const MODES = ["server", "client"] as const;
/** One of {@link MODES}. */
export type Mode = typeof MODES[number];

/** The shipped manifests. */
export const MANIFEST_DIR = `${ROOT}deploy/kubernetes`;

/** The venv of kubernetes-validate (scripts/provision-tools.sh), with PyYAML. */
export const VENV = `${CACHE}/venv/bin`;
/** Why the manifests cannot be parsed here, or null. */
export const MISSING_VENV = isFile(`${VENV}/kubernetes-validate`)
  ? null
  : `${VENV}/kubernetes-validate not found (scripts/provision-tools.sh)`;

/** The documents of a YAML text, parsed (PyYAML from the venv). */
// deno-lint-ignore no-explicit-any
export async function parseAll(text: string): Promise<any[]> {
  const script =
    "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(sys.stdin))))";
  const child = new Deno.Command(`${VENV}/python`, {
    args: ["-c", script],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const { code, stdout } = await child.output();
  assert.equal(code, 0);
  return JSON.parse(new TextDecoder().decode(stdout));
}

/** A YAML text of one document, parsed. */
// deno-lint-ignore no-explicit-any
export async function parse(text: string): Promise<any> {
  const [document] = await parseAll(text);
  return document;
}

/** The text of the DaemonSet of `mode`, as shipped. */
export const manifest = (mode: Mode) =>
  Deno.readTextFileSync(`${MANIFEST_DIR}/phantun-${mode}.yaml`);

/**
 * A DaemonSet's pod template as a Pod of the DaemonSet's name and namespace:
 * what a node runs for it.
 */
// deno-lint-ignore no-explicit-any
export function asPod(daemonSet: any): any {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      ...daemonSet.spec.template.metadata,
      name: daemonSet.metadata.name,
      namespace: daemonSet.metadata.namespace,
    },
    spec: daemonSet.spec.template.spec,
  };
}

/** deploy/README.md's root variant: the yaml block of its Kubernetes section. */
export function rootVariant(): string {
  const recipes = Deno.readTextFileSync(`${ROOT}deploy/README.md`);
  const section = recipes.slice(recipes.indexOf("## Kubernetes"));
  return section.match(/```yaml\n([\s\S]*?)```/)![1];
}
