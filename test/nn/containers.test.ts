// ModuleDict and ModuleList: PyTorch's containers, with dotted state-dict names; a tree of
// modules is switched, moved and freed through each child's own methods.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { manualSeed, nn } from '../../src/index.js';
import { saveTrainingModes, type Module as ModuleT } from '../../src/nn/module.js';

const { Linear, ModuleDict, ModuleList, Sequential, ReLU } = nn;

test('ModuleDict and ModuleList name their children in the state dict as PyTorch does ("key.0.weight")', () => {
  manualSeed(1);
  const d = new ModuleDict({
    encoder: new Linear(3, 2),
    parity: new ModuleList([new Linear(2, 2), new Sequential(new Linear(2, 1), new ReLU())]),
  });
  try {
    assert.deepEqual(
      [...d.stateDict().keys()],
      ['encoder.weight', 'encoder.bias', 'parity.0.weight', 'parity.0.bias', 'parity.1.0.weight', 'parity.1.0.bias'],
    );
    assert.deepEqual(d.keys(), ['encoder', 'parity']);
    const list = d.get('parity') as InstanceType<typeof ModuleList>;
    assert.equal(list.length, 2);
    assert.equal([...list].length, 2);
    assert.equal(d.stateDict().get('parity.0.weight'), (list.at(0) as InstanceType<typeof Linear>).weight);
    assert.throws(() => list.at(2), /ModuleList has 2 modules, no index 2/);
    assert.throws(() => d.set('encoder', new Linear(1, 1)), /'encoder' is already registered/);
    assert.throws(() => d.set('a.b', new Linear(1, 1)), /invalid member name 'a\.b'/);
    assert.throws(() => d.forward(null as never), /ModuleDict has no forward/);
  } finally {
    d.dispose();
  }
});

test('a ModuleDict state dict round-trips through loadStateDict into a fresh one', () => {
  manualSeed(1);
  const build = () =>
    new ModuleDict<ModuleT>([
      ['a', new Linear(2, 2)],
      ['b', new ModuleList([new Linear(2, 3)])],
    ]);
  const x = build();
  manualSeed(2);
  const y = build();
  try {
    y.loadStateDict(x.stateDict());
    for (const [k, t] of x.stateDict()) assert.deepEqual([...y.stateDict().get(k)!.toList()], [...t.toList()], k);
    assert.equal(x.numParameters(), 2 * 2 + 2 + 2 * 3 + 3);
  } finally {
    x.dispose();
    y.dispose();
  }
});

test('a container switches, moves and frees each child through its own train(), to() and dispose() (overrides such as TorchScript run); saveTrainingModes puts every module back', () => {
  manualSeed(1);
  const calls: string[] = [];
  // a child that overrides the three methods (as TorchScriptModule does for its JIT module)
  class Overriding extends Linear {
    override train(mode = true): this {
      calls.push(`train ${mode}`);
      return super.train(mode);
    }
    override to(target: Parameters<ModuleT['to']>[0]): this {
      calls.push(`to ${target}`);
      return super.to(target);
    }
    override dispose(): void {
      calls.push('dispose');
      super.dispose();
    }
  }
  const inner = new Overriding(2, 2);
  const plain = new Linear(2, 1);
  const d = new ModuleDict({ plain, list: new ModuleList([inner]) });
  d.eval();
  assert.deepEqual(calls, ['train false']);
  assert.ok(d.namedModules().every(([, m]) => !m.training));
  d.train();
  plain.eval();
  const restore = saveTrainingModes(d);
  d.eval();
  assert.ok(!inner.training);
  restore();
  assert.deepEqual(
    d.namedModules().map(([n, m]) => [n, m.training]),
    [
      ['', true],
      ['plain', false],
      ['list', true],
      ['list.0', true],
    ],
  );
  calls.length = 0;
  d.to('float64');
  assert.deepEqual(calls, ['to float64']);
  assert.ok(d.parameters().every((p) => p.dtype === 'float64'));
  d.dispose();
  assert.deepEqual(calls, ['to float64', 'dispose']);
  assert.ok(d.parameters().every((p) => p.isDisposed));
});
