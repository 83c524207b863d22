#!/usr/bin/env node
// Issue 6: Berrut codes next to parity-model, learned and Lagrange codes at the same K and
// redundancy N. For every code and every number s of stragglers among the N workers (each
// pattern of s equally likely) it reports the accuracy of *all K answers* against the true
// labels: a systematic code answers with the originals that arrived and reconstructions of
// the rest; a non-systematic code decodes every answer. Undecodable patterns count as wrong.
//
// usage: node scripts/experiments/side-by-side.mjs --berrut BERRUT.json [--dataset D]
//          LABEL=EVAL.json ...
//   BERRUT.json: the output of scripts/experiments/berrut-eval.mjs (a list of configurations)
//   EVAL.json:   a shared-evaluation JSON (`coded eval CKPT --json`, a run's test-eval.json,
//                or a training command's --json output, whose "test" field is one), or the
//                --json output of `coded train polynomial` (byStragglers)
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
let berrutPath = null;
let dataset = null;
const codes = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--berrut') berrutPath = args[++i];
  else if (args[i] === '--dataset') dataset = args[++i];
  else if (args[i].includes('=')) {
    const at = args[i].lastIndexOf('=');
    codes.push({ label: args[i].slice(0, at), path: args[i].slice(at + 1) });
  } else {
    console.error(
      `unknown argument '${args[i]}'\n${readFileSync(new URL(import.meta.url), 'utf8')
        .split('\n')
        .slice(1, 14)
        .join('\n')}`,
    );
    process.exit(2);
  }
}

const pct = (v) => (v === null || v === undefined ? '' : (100 * v).toFixed(2));
const choose = (n, s) => {
  const out = [];
  const rec = (start, cur) => {
    if (cur.length === s) return void out.push([...cur]);
    for (let i = start; i < n; i++) rec(i + 1, [...cur, i]);
  };
  rec(0, []);
  return out;
};

/** accuracy of all K answers by number of stragglers, from one evaluation */
function byStragglers(doc) {
  const e = doc.test?.patterns ? doc.test : doc;
  if (Array.isArray(e.byStragglers)) {
    // `coded train polynomial --json`: exact decoding from any R of N
    return {
      k: null,
      n: null,
      name: e.code,
      base: e.baseAccuracy,
      rows: e.byStragglers.map((b) => ({ s: b.missing, all: b.accuracy, reconstructed: b.accuracy })),
    };
  }
  if (!e.systematic) {
    return {
      k: e.k,
      n: e.n,
      name: e.code,
      base: e.baseAccuracy,
      rows: e.byMissing.map((b) => ({ s: b.missing, all: b.accuracy, reconstructed: b.accuracy })),
    };
  }
  const { k, n, baseAccuracy: base } = e;
  const byPattern = new Map(e.patterns.map((p) => [p.pattern, p]));
  const rows = [];
  for (let s = 0; s <= n - k; s++) {
    let correct = 0;
    let recCorrect = 0;
    let recCount = 0;
    const pats = choose(n, s);
    for (const missing of pats) {
      const avail = Array.from({ length: n }, (_, i) => (missing.includes(i) ? '0' : '1')).join('');
      const dataMissing = missing.filter((i) => i < k).length;
      if (dataMissing === 0) {
        correct += k * base;
        continue;
      }
      const p = byPattern.get(avail);
      const acc = p ? p.accuracy : 0; // undecodable: no answer for the missing outputs
      correct += (k - dataMissing) * base + dataMissing * acc;
      recCorrect += dataMissing * acc;
      recCount += dataMissing;
    }
    rows.push({ s, all: correct / (k * pats.length), reconstructed: recCount > 0 ? recCorrect / recCount : null });
  }
  return { k, n, name: e.code, base, rows };
}

const berrut = berrutPath ? JSON.parse(readFileSync(berrutPath, 'utf8')) : [];
const evals = codes.map((c) => ({ label: c.label, ...byStragglers(JSON.parse(readFileSync(c.path, 'utf8'))) }));
const configs = new Map();
for (const b of berrut) if (dataset === null || b.dataset === dataset) configs.set(`${b.k},${b.n}`, { k: b.k, n: b.n });
for (const e of evals) if (e.k !== null) configs.set(`${e.k},${e.n}`, { k: e.k, n: e.n });

const lines = [
  '| K | N | code | A_a | ' +
    [0, 1, 2, 3].map((s) => `${s} straggler${s === 1 ? '' : 's'}: all answers (reconstructed only)`).join(' | ') +
    ' |',
  '|---|---|---|---|---|---|---|---|',
];
for (const { k, n } of [...configs.values()].sort((a, b) => a.k - b.k || a.n - b.n)) {
  const cell = (rows, s) => {
    const r = rows.find((x) => x.s === s);
    if (!r) return '';
    return r.reconstructed === null || r.reconstructed === r.all ? pct(r.all) : `${pct(r.all)} (${pct(r.reconstructed)})`;
  };
  for (const b of berrut.filter((x) => x.k === k && x.n === n && (dataset === null || x.dataset === dataset))) {
    const rows = b.byMissing.map((m) => ({ s: m.missing, all: m.accuracy, reconstructed: m.accuracy }));
    lines.push(`| ${k} | ${n} | Berrut (no training) | ${pct(b.baseAccuracy)} | ${[0, 1, 2, 3].map((s) => cell(rows, s)).join(' | ')} |`);
  }
  for (const e of evals.filter((x) => x.k === k && x.n === n))
    lines.push(`| ${k} | ${n} | ${e.label} | ${pct(e.base)} | ${[0, 1, 2, 3].map((s) => cell(e.rows, s)).join(' | ')} |`);
}
for (const e of evals.filter((x) => x.k === null))
  lines.push(
    `| | | ${e.label} (${e.name}) | ${pct(e.base)} | ${[0, 1, 2, 3]
      .map((s) => {
        const r = e.rows.find((x) => x.s === s);
        return r ? pct(r.all) : '';
      })
      .join(' | ')} |`,
  );
console.log(lines.join('\n'));
