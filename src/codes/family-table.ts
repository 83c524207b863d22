// The table of code families. Family modules register themselves here at import;
// registry.ts imports every family (families.ts), so codeFromConfig / loadCodeCheckpoint know them all
// whatever the caller imported.
import type { Code, CodeConfig } from './code.js';

export type CodeFactory = (config: CodeConfig) => Code;
/**
 * Rewrites a stored config so that today's code rebuilds the modules the checkpoint holds
 * (shapes: the checkpoint's tensor names and shapes), e.g. for a layout whose default changed.
 */
export type ConfigUpgrade = (config: CodeConfig, shapes: ReadonlyMap<string, readonly number[]>) => CodeConfig;

const families = new Map<string, CodeFactory>();
const upgrades = new Map<string, ConfigUpgrade>();

/** Register a code family (each family's module calls this once at import). */
export function registerCodeFamily(family: string, factory: CodeFactory, upgrade?: ConfigUpgrade): void {
  if (families.has(family)) throw new Error(`code family '${family}' is already registered`);
  families.set(family, factory);
  if (upgrade !== undefined) upgrades.set(family, upgrade);
}

/** A stored config as the family reads it today (unchanged for families without an upgrade). */
export function upgradeStoredConfig(config: CodeConfig, shapes: ReadonlyMap<string, readonly number[]>): CodeConfig {
  const u = upgrades.get(config.family);
  return u === undefined ? config : u(config, shapes);
}

export function codeFamilies(): string[] {
  return [...families.keys()].sort();
}

export function familyFactory(family: string): CodeFactory | undefined {
  return families.get(family);
}
