// `coded datasets` and `coded models`: what exists, and whether it is here.
import { parse } from '../args.js';
import { describeDatasets, formatDatasets } from '../../data/registry.js';
import { MLP_FAMILY, MODELS } from '../../models/registry.js';

export const datasetsUsage = `coded datasets [--data-dir DIR] [--json]

Lists the datasets, whether each is present locally (and where), and how to get it.`;

export async function datasets(argv: string[]): Promise<void> {
  const { values } = parse(argv, { 'data-dir': { type: 'string' }, json: { type: 'boolean' } }, datasetsUsage);
  if (values.help) return void console.log(datasetsUsage);
  const rows = describeDatasets(values['data-dir']);
  console.log(values.json ? JSON.stringify(rows) : formatDatasets(rows));
}

export const modelsUsage = `coded models [--json]

Lists the models of the zoo (all return raw logits), then the parametric MLP family
${MLP_FAMILY}: any hidden widths, e.g. mlp:1024,512:dropout=0.2 (usable wherever a model
name is: --model, --parity-model, sweep configs).`;

export async function models(argv: string[]): Promise<void> {
  const { values } = parse(argv, { json: { type: 'boolean' } }, modelsUsage);
  if (values.help) return void console.log(modelsUsage);
  const family = {
    name: MLP_FAMILY,
    description:
      "fully connected classifier with the given hidden widths (ReLU), optional dropout after each hidden layer; mlp:200,100 is Base-MLP's shape",
    init: 'paper',
  };
  const rows = [...MODELS.map(({ name, description, init }) => ({ name, description, init })), family];
  if (values.json) console.log(JSON.stringify(rows));
  else for (const m of rows) console.log(`${m.name.padEnd(28)} ${m.description} [init: ${m.init}]`);
}
