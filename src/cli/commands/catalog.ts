// `coded datasets` and `coded models`: what exists, and whether it is here.
import { parse } from '../args.js';
import { describeDatasets, formatDatasets } from '../../data/registry.js';
import { MODELS } from '../../models/registry.js';

export const datasetsUsage = `coded datasets [--data-dir DIR] [--json]

Lists the datasets, whether each is present locally (and where), and how to get it.`;

export async function datasets(argv: string[]): Promise<void> {
  const { values } = parse(argv, { 'data-dir': { type: 'string' }, json: { type: 'boolean' } }, datasetsUsage);
  if (values.help) return void console.log(datasetsUsage);
  const rows = describeDatasets(values['data-dir']);
  console.log(values.json ? JSON.stringify(rows) : formatDatasets(rows));
}

export const modelsUsage = `coded models [--json]

Lists the base models of the zoo (all return raw logits).`;

export async function models(argv: string[]): Promise<void> {
  const { values } = parse(argv, { json: { type: 'boolean' } }, modelsUsage);
  if (values.help) return void console.log(modelsUsage);
  if (values.json) console.log(JSON.stringify(MODELS.map(({ name, description, init }) => ({ name, description, init }))));
  else for (const m of MODELS) console.log(`${m.name.padEnd(20)} ${m.description} [init: ${m.init}]`);
}
