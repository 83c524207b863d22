// Triton's model configuration (config.pbtxt, protobuf text format of inference.ModelConfig,
// triton-inference-server/common protobuf/model_config.proto): the subset `coded export triton`
// writes, rendered from a plain object, parsed back, and checked against the field names, types
// and enum values of that message (described here from the proto's documentation; only the
// fields this project writes).

export type TritonDataType = 'TYPE_FP32';
export type TritonInstanceKind = 'KIND_AUTO' | 'KIND_GPU' | 'KIND_CPU' | 'KIND_MODEL';

export interface TritonTensor {
  name: string;
  data_type: TritonDataType;
  /** per-example dimensions (without the batch dimension when max_batch_size > 0) */
  dims: number[];
}

export interface TritonModelConfig {
  name: string;
  /** 'pytorch_libtorch' (TorchScript) or 'onnxruntime_onnx' */
  platform: 'pytorch_libtorch' | 'onnxruntime_onnx';
  max_batch_size: number;
  input: TritonTensor[];
  output: TritonTensor[];
  instance_group: { kind: TritonInstanceKind; count: number }[];
  /** an empty message turns dynamic batching on with Triton's defaults */
  dynamic_batching?: { max_queue_delay_microseconds?: number };
  /** ModelConfig.parameters: map<string, ModelParameter{string_value}> */
  parameters?: Record<string, string>;
}

const quote = (s: string) => JSON.stringify(s); // text-format strings: double quotes, C escapes (a subset of JSON's)

/** config.pbtxt for a model. */
export function renderTritonConfig(c: TritonModelConfig): string {
  const tensor = (t: TritonTensor) =>
    `  {\n    name: ${quote(t.name)}\n    data_type: ${t.data_type}\n    dims: [ ${t.dims.join(', ')} ]\n  }`;
  const lines = [
    `name: ${quote(c.name)}`,
    `platform: ${quote(c.platform)}`,
    `max_batch_size: ${c.max_batch_size}`,
    `input [\n${c.input.map(tensor).join(',\n')}\n]`,
    `output [\n${c.output.map(tensor).join(',\n')}\n]`,
    `instance_group [\n${c.instance_group.map((g) => `  {\n    kind: ${g.kind}\n    count: ${g.count}\n  }`).join(',\n')}\n]`,
  ];
  if (c.dynamic_batching !== undefined) {
    const d = c.dynamic_batching.max_queue_delay_microseconds;
    lines.push(d === undefined ? 'dynamic_batching { }' : `dynamic_batching {\n  max_queue_delay_microseconds: ${d}\n}`);
  }
  for (const [k, v] of Object.entries(c.parameters ?? {}))
    lines.push(`parameters {\n  key: ${quote(k)}\n  value {\n    string_value: ${quote(v)}\n  }\n}`);
  return lines.join('\n') + '\n';
}

/** A parsed text-format message: field name -> values in order (repeated fields and lists flattened). */
export type TextMessage = Map<string, (string | number | boolean | TextMessage)[]>;

/**
 * Parse protobuf text format (the subset Triton configs use: scalars, enums, strings, nested
 * messages in { } or < >, lists in [ ], comments). Throws with the line of the first error.
 */
export function parseTextFormat(text: string): TextMessage {
  let i = 0;
  const line = () => text.slice(0, i).split('\n').length;
  const fail = (why: string): never => {
    throw new Error(`config.pbtxt line ${line()}: ${why}`);
  };
  const skip = () => {
    for (;;) {
      while (i < text.length && /\s/.test(text[i])) i++;
      if (text[i] === '#') while (i < text.length && text[i] !== '\n') i++;
      else return;
    }
  };
  const ident = (): string => {
    skip();
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i));
    if (m === null) return fail(`expected a field name, found '${text.slice(i, i + 10)}'`);
    i += m[0].length;
    return m[0];
  };
  const scalar = (): string | number | boolean => {
    skip();
    if (text[i] === '"' || text[i] === "'") {
      const q = text[i++];
      let s = '';
      while (i < text.length && text[i] !== q) {
        if (text[i] === '\\') {
          const e = text[++i];
          s += e === 'n' ? '\n' : e === 't' ? '\t' : e;
        } else s += text[i];
        i++;
      }
      if (text[i] !== q) fail('unterminated string');
      i++;
      return s;
    }
    const m = /^[-+]?[A-Za-z0-9_.]+/.exec(text.slice(i));
    if (m === null) return fail(`expected a value, found '${text.slice(i, i + 10)}'`);
    i += m[0].length;
    if (m[0] === 'true' || m[0] === 'false') return m[0] === 'true';
    const n = Number(m[0]);
    return Number.isFinite(n) && /^[-+]?[0-9]/.test(m[0]) ? n : m[0];
  };
  const message = (close: string | null): TextMessage => {
    const out: TextMessage = new Map();
    for (;;) {
      skip();
      if (i >= text.length) {
        if (close !== null) fail(`missing '${close}'`);
        return out;
      }
      if (close !== null && text[i] === close) {
        i++;
        return out;
      }
      const name = ident();
      skip();
      if (text[i] === ':') {
        i++;
        skip();
      }
      const values = out.get(name) ?? [];
      const one = (): string | number | boolean | TextMessage => {
        skip();
        if (text[i] === '{' || text[i] === '<') {
          const c = text[i] === '{' ? '}' : '>';
          i++;
          return message(c);
        }
        return scalar();
      };
      if (text[i] === '[') {
        i++;
        skip();
        if (text[i] !== ']') {
          for (;;) {
            values.push(one());
            skip();
            if (text[i] === ',') i++;
            else if (text[i] === ']') break;
            else fail(`expected ',' or ']' in the list of '${name}'`);
          }
        }
        i++;
      } else values.push(one());
      out.set(name, values);
      skip();
      if (text[i] === ',' || text[i] === ';') i++;
    }
  };
  return message(null);
}

type FieldType = 'string' | 'int' | 'bool' | { enum: readonly string[] } | { message: Schema } | { map: Schema };
interface Field {
  type: FieldType;
  repeated?: boolean;
}
type Schema = Record<string, Field>;

const DATA_TYPES = [
  'TYPE_INVALID',
  'TYPE_BOOL',
  'TYPE_UINT8',
  'TYPE_UINT16',
  'TYPE_UINT32',
  'TYPE_UINT64',
  'TYPE_INT8',
  'TYPE_INT16',
  'TYPE_INT32',
  'TYPE_INT64',
  'TYPE_FP16',
  'TYPE_FP32',
  'TYPE_FP64',
  'TYPE_STRING',
  'TYPE_BF16',
] as const;
const TENSOR: Schema = { name: { type: 'string' }, data_type: { type: { enum: DATA_TYPES } }, dims: { type: 'int', repeated: true } };

/** inference.ModelConfig, the fields `coded export triton` writes (names, types and enum values as in model_config.proto). */
export const MODEL_CONFIG_SCHEMA: Schema = {
  name: { type: 'string' },
  platform: { type: 'string' },
  backend: { type: 'string' },
  max_batch_size: { type: 'int' },
  input: { type: { message: { ...TENSOR, format: { type: { enum: ['FORMAT_NONE', 'FORMAT_NHWC', 'FORMAT_NCHW'] } } } }, repeated: true },
  output: { type: { message: TENSOR }, repeated: true },
  instance_group: {
    type: {
      message: {
        name: { type: 'string' },
        kind: { type: { enum: ['KIND_AUTO', 'KIND_GPU', 'KIND_CPU', 'KIND_MODEL'] } },
        count: { type: 'int' },
        gpus: { type: 'int', repeated: true },
      },
    },
    repeated: true,
  },
  dynamic_batching: {
    type: { message: { max_queue_delay_microseconds: { type: 'int' }, preferred_batch_size: { type: 'int', repeated: true } } },
  },
  parameters: { type: { map: { string_value: { type: 'string' } } }, repeated: true },
};

/** Problems of a parsed config against MODEL_CONFIG_SCHEMA (unknown fields, wrong types, bad enum values); [] when valid. */
export function checkTritonConfig(msg: TextMessage, schema: Schema = MODEL_CONFIG_SCHEMA, at = ''): string[] {
  const problems: string[] = [];
  for (const [name, values] of msg) {
    const f = schema[name];
    const where = at + name;
    if (f === undefined) {
      problems.push(`${where}: not a field of inference.ModelConfig${at === '' ? '' : ' (here)'}`);
      continue;
    }
    if (!f.repeated && values.length > 1) problems.push(`${where}: set ${values.length} times but not repeated`);
    for (const v of values) {
      const t = f.type;
      if (t === 'string') {
        if (typeof v !== 'string') problems.push(`${where}: expected a string, got ${String(v)}`);
      } else if (t === 'int') {
        if (typeof v !== 'number' || !Number.isInteger(v)) problems.push(`${where}: expected an integer, got ${String(v)}`);
      } else if (t === 'bool') {
        if (typeof v !== 'boolean') problems.push(`${where}: expected true/false, got ${String(v)}`);
      } else if ('enum' in t) {
        if (typeof v !== 'string' || !t.enum.includes(v)) problems.push(`${where}: ${String(v)} is not one of ${t.enum.join(', ')}`);
      } else if ('message' in t) {
        if (!(v instanceof Map)) problems.push(`${where}: expected a message { ... }`);
        else problems.push(...checkTritonConfig(v, t.message, `${where}.`));
      } else {
        // a map entry: { key: "..." value { ... } }
        if (!(v instanceof Map)) {
          problems.push(`${where}: expected a map entry { key: ... value { ... } }`);
          continue;
        }
        for (const k of v.keys()) if (k !== 'key' && k !== 'value') problems.push(`${where}: a map entry has only key and value, not ${k}`);
        const key = v.get('key');
        if (key === undefined || key.length !== 1 || typeof key[0] !== 'string')
          problems.push(`${where}: a map entry needs one string key`);
        const value = v.get('value');
        if (value === undefined || value.length !== 1 || !(value[0] instanceof Map))
          problems.push(`${where}: a map entry needs one value { ... }`);
        else problems.push(...checkTritonConfig(value[0], t.map, `${where}.value.`));
      }
    }
  }
  return problems;
}
