// The table of code families. Family modules register themselves here at import;
// registry.ts imports every family (families.ts), so codeFromConfig / loadCode know them all
// whatever the caller imported.
import type { Code, CodeConfig } from './code.js';

export type CodeFactory = (config: CodeConfig) => Code;

const families = new Map<string, CodeFactory>();

/** Register a code family (each family's module calls this once at import). */
export function registerCodeFamily(family: string, factory: CodeFactory): void {
  if (families.has(family)) throw new Error(`code family '${family}' is already registered`);
  families.set(family, factory);
}

export function codeFamilies(): string[] {
  return [...families.keys()].sort();
}

export function familyFactory(family: string): CodeFactory | undefined {
  return families.get(family);
}
