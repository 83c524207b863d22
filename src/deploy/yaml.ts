// Writing rendered Kubernetes objects as YAML files (the `yaml` library), with a
// kustomization.yaml that lists them (`kubectl apply -k DIR`).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { K8sObject } from './k8s.js';

/** Objects as one multi-document YAML text. */
export function toYaml(objects: readonly object[]): string {
  return objects.map((o) => stringify(o, { lineWidth: 0, aliasDuplicateObjects: false })).join('---\n');
}

/** Write each file's objects (file name -> objects) into dir, then kustomization.yaml; returns the names written. */
export function writeManifests(dir: string, files: ReadonlyMap<string, K8sObject[]>): string[] {
  const names = [...files.keys()].sort((a, b) =>
    a === 'frontend-config.yaml' ? -1 : b === 'frontend-config.yaml' ? 1 : a.localeCompare(b),
  );
  for (const n of names) writeFileSync(join(dir, n), `# rendered by coded deploy k8s\n${toYaml(files.get(n)!)}`);
  writeFileSync(
    join(dir, 'kustomization.yaml'),
    `# rendered by coded deploy k8s\n${stringify({ apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization', resources: names })}`,
  );
  return [...names, 'kustomization.yaml'];
}
