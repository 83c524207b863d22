"""Issue 19 (comparison tool, never part of the product): per-tensor statistics of the reference
implementation's freshly initialised ConvEncoder + MLPDecoder (Thesys-lab/learned-coded-computation:
coders/conv_encoder.py, coders/mlp_coder.py, util/util.py init_weights applied to both, as
code_trainer.py:298-309 does) after torch.manual_seed(seed), in the format of
scripts/experiments/learned-init-stats.mjs (module 'nn' named 'net' as ours), so the outputs diff.

python3 scripts/experiments/reference-init-stats.py --ref CHECKOUT [--k 2] [--seeds 1,2,3]
"""
import argparse, sys

p = argparse.ArgumentParser()
p.add_argument('--ref', required=True)
p.add_argument('--k', type=int, default=2)
p.add_argument('--seeds', default='1,2,3')
a = p.parse_args()
sys.path.insert(0, a.ref)
import torch
from coders.conv_encoder import ConvEncoder
from coders.mlp_coder import MLPDecoder
import util.util as uu

for seed in (int(s) for s in a.seeds.split(',')):
    torch.manual_seed(seed)
    enc = ConvEncoder(a.k, 1, 784, 20)
    uu.init_weights(enc)
    dec = MLPDecoder(a.k, 1, 10)
    uu.init_weights(dec)
    for part, mod in (('encoder', enc), ('decoder', dec)):
        for name, t in mod.named_parameters():
            x = t.detach().double()
            f = lambda v: f'{v:.4e}'.replace('e-0', 'e-').replace('e+0', 'e+')
            name = 'net' + name[2:]
            print(f'seed {seed} {part}.{name} [{", ".join(map(str, t.shape))}] mean {f(x.mean().item())} std {f(x.std(unbiased=False).item())} min {f(x.min().item())} max {f(x.max().item())}')
