"""Comparison peer for issue 19 (never part of the product): trains a learned code with the
reference implementation's own modules (Thesys-lab/learned-coded-computation: coders.ConvEncoder,
coders.MLPDecoder, loss.MaskedLoss, util.init_weights, two torch.optim.Adam), imported from a
checkout given by --ref, on Fashion-MNIST read from Debian's dataset-fashion-mnist, with either
the reference's base model (model.t7, raw [0, 1] pixels, as its datasets/code_dataset.py) or ours
(models/fashion-mnist-base-mlp.safetensors, pixels normalised as our loader does). The step follows
code_trainer.py's __forward (r = 1: each of the k data outputs erased in turn, zeros in its place).
After each epoch it prints the current model's test A_d (reconstruction vs true label over the
erased slots, test images grouped in order, as the reference's test loader) and recovery.

python3 scripts/experiments/reference-peer.py --ref /tmp/i19-ref --base reference|ours
    [--k 2] [--epochs 1] [--seed 1] [--reduction sum|mean] [--conv-gain relu|1] [--threads 1]
    [--draws DIR]
--draws DIR (with --base ours): start from our initial weights (DIR/init.safetensors) and train epoch 1
on our batches (DIR/batches.json, indices into the 60000 training images), both written by
scripts/experiments/learned-draws.mjs: LCC's computation on our random draws.
"""
import argparse, gzip, json, struct, sys, time
import numpy as np

p = argparse.ArgumentParser()
p.add_argument('--ref', required=True)
p.add_argument('--base', choices=['reference', 'ours'], default='reference')
p.add_argument('--ours', default='models/fashion-mnist-base-mlp.safetensors')
p.add_argument('--k', type=int, default=2)
p.add_argument('--epochs', type=int, default=1)
p.add_argument('--steps', type=int, default=0, help='stop each epoch after this many steps (0: whole epoch)')
p.add_argument('--seed', type=int, default=1)
p.add_argument('--reduction', choices=['sum', 'mean'], default='sum')
p.add_argument('--conv-gain', choices=['relu', '1'], default='relu')
p.add_argument('--threads', type=int, default=1)
p.add_argument('--data', default='/usr/share/datasets/fashion-mnist')
p.add_argument('--device', default='cpu')
p.add_argument('--decoder', choices=['reference', 'narrow'], default='reference', help='narrow: hidden widths km, km (ours before issue 19)')
p.add_argument('--draws', help='our draws: DIR/init.safetensors and DIR/batches.json from scripts/experiments/learned-draws.mjs; needs --base ours')
p.add_argument('--dump', help='side-by-side mode: write the initial weights (DIR/init.safetensors, our names), the first --steps batches (DIR/batches.json, indices into the 60000 training images) and per-step losses and gradient norms (DIR/reference.json); needs --base ours')
a = p.parse_args()
sys.path.insert(0, a.ref)
import torch
from torch import nn
torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)
np.random.seed(a.seed)
from coders.conv_encoder import ConvEncoder
from coders.mlp_coder import MLPDecoder
from loss.masked_loss import MaskedLoss
from base_models.base_mlp import BaseMLP
import util.util as uu

def read_safetensors(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        h = json.loads(f.read(n))
        blob = f.read()
    h.pop('__metadata__', None)
    out = {}
    for key, v in h.items():
        s, e = v['data_offsets']
        out[key] = torch.from_numpy(np.frombuffer(blob[s:e], np.float32).reshape(v['shape']).copy())
    return out

def idx(path):
    with gzip.open(path, 'rb') as f:
        b = f.read()
    magic, n = struct.unpack('>II', b[:8])
    if magic == 2051:
        r, c = struct.unpack('>II', b[8:16])
        return np.frombuffer(b, np.uint8, offset=16).reshape(n, r * c)
    return np.frombuffer(b, np.uint8, offset=8)

xtr = idx(f'{a.data}/train-images-idx3-ubyte.gz').astype(np.float32) / 255
ytr = idx(f'{a.data}/train-labels-idx1-ubyte.gz').astype(np.int64)
xte = idx(f'{a.data}/t10k-images-idx3-ubyte.gz').astype(np.float32) / 255
yte = idx(f'{a.data}/t10k-labels-idx1-ubyte.gz').astype(np.int64)

base = BaseMLP()
if a.base == 'reference':
    base.load_state_dict(torch.load(f'{a.ref}/base_model_trained_files/fashion-mnist/base-mlp/model.t7', map_location='cpu'))
else:
    with open(a.ours, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        h = json.loads(f.read(n))
        blob = f.read()
    md = json.loads(h.pop('__metadata__')['coded'])
    sd = {}
    for key, v in h.items():
        s, e = v['data_offsets']
        t = torch.from_numpy(np.frombuffer(blob[s:e], np.float32).reshape(v['shape']).copy())
        layer = {'fc1': 0, 'fc2': 2, 'fc3': 4}[key.split('.')[0]]
        sd[f'nn.{layer}.{key.split(".")[1]}'] = t
    base.load_state_dict(sd)
    mean, std = md['normalization']['mean'][0], md['normalization']['std'][0]
    xtr = (xtr - mean) / std
    xte = (xte - mean) / std
base.eval()
for q in base.parameters():
    q.requires_grad_(False)
xtr, ytr, xte, yte = map(torch.from_numpy, (xtr, ytr, xte, yte))
with torch.no_grad():
    otr, ote = base(xtr), base(xte)
print(f'base {a.base}: test accuracy {(ote.argmax(1) == yte).float().mean().item():.4f}; test logits rms {ote.pow(2).mean().sqrt().item():.2f}', flush=True)

k, m = a.k, 10
bs = 64 if k == 2 else 32
perm = torch.randperm(60000)
val_idx, tr_idx = perm[:5000], perm[5000:]
enc = ConvEncoder(k, 1, 784, 20)
if a.decoder == 'reference':
    dec = MLPDecoder(k, 1, m)
else:  # the layout our MLPDecoder had before issue 19: FC (k+r)m -> km -> km -> km
    class Narrow(nn.Module):
        def __init__(self):
            super().__init__()
            self.nn = nn.Sequential(nn.Linear((k + 1) * m, k * m), nn.ReLU(), nn.Linear(k * m, k * m), nn.ReLU(), nn.Linear(k * m, k * m))
        def forward(self, x):
            return self.nn(x.view(x.size(0), -1)).view(x.size(0), k, m)
    dec = Narrow()
if a.conv_gain == 'relu':
    uu.init_weights(enc)
else:  # Xavier gain 1 (our default before issue 19)
    for mod in enc.modules():
        if isinstance(mod, nn.Conv2d):
            nn.init.xavier_uniform_(mod.weight); mod.bias.data.zero_()
uu.init_weights(dec)
dev = torch.device(a.device)
enc.to(dev); dec.to(dev); base.to(dev)
xtr, ytr, xte, yte, otr, ote = (t.to(dev) for t in (xtr, ytr, xte, yte, otr, ote))
if a.draws:
    assert a.base == 'ours' and a.decoder == 'reference' and a.conv_gain == 'relu', '--draws: our base, reference settings only'
    ours = read_safetensors(f'{a.draws}/init.safetensors')
    for pre, mod in (('encoder', enc), ('decoder', dec)):
        mod.load_state_dict({'nn.' + key[len(pre) + 5:]: t.to(dev) for key, t in ours.items() if key.startswith(pre + '.net.')})
    draws_batches = [torch.tensor(b, dtype=torch.long, device=dev) for b in json.load(open(f'{a.draws}/batches.json'))]
    print(f'draws from {a.draws}: {len(ours)} tensors, {len(draws_batches)} batches', flush=True)
if a.dump:
    import os
    os.makedirs(a.dump, exist_ok=True)
    tensors = {}
    for pre, mod in (('encoder', enc), ('decoder', dec)):
        for key, t in mod.state_dict().items():
            tensors[f'{pre}.net.{key[3:]}'] = t.detach().cpu().contiguous().numpy().astype(np.float32)
    header, off, blobs = {}, 0, []
    for key, t in tensors.items():
        b = t.tobytes(); header[key] = {'dtype': 'F32', 'shape': list(t.shape), 'data_offsets': [off, off + len(b)]}; off += len(b); blobs.append(b)
    hb = json.dumps(header).encode()
    hb += b' ' * ((8 - len(hb) % 8) % 8)
    with open(f'{a.dump}/init.safetensors', 'wb') as f:
        f.write(struct.pack('<Q', len(hb))); f.write(hb); f.write(b''.join(blobs))
    tr_idx = torch.randperm(60000)  # side by side: any of the 60000 training images
    dump_batches, dump_log = [], []
eo = torch.optim.Adam(enc.parameters(), lr=1e-3, weight_decay=1e-5)
do = torch.optim.Adam(dec.parameters(), lr=1e-3, weight_decay=1e-5)
loss_fn = MaskedLoss(base_loss={'class': 'torch.nn.MSELoss'})
emask = torch.ones(k, k + 1, m)
amask = torch.zeros(k, k)
for i in range(k):
    emask[i, i, :] = 0
    amask[i, i] = 1
emask, amask = emask.to(dev), amask.to(dev)

def forward(x, out):
    """x [G*k, 784] in group order, out [G*k, m] base outputs -> decoded [G*k(scenarios), k, m], labels"""
    G = x.size(0) // k
    xd = x.view(G, k, 784)
    par = base(enc(xd)).view(G, 1, m)
    lab = out.view(G, k, m)
    ind = torch.cat((lab, par), 1).repeat(1, k, 1).view(G * k, k + 1, m) * emask.repeat(G, 1, 1)
    decd = dec(ind)
    return decd, lab.repeat(1, k, 1).view(G * k, k, m), amask.repeat(G, 1)

def test():
    enc.eval(); dec.eval()
    right = rec = n = 0
    with torch.no_grad():
        for s in range(0, 10000 - 10000 % k, bs * k):
            x, o, y = xte[s:s + bs * k], ote[s:s + bs * k], yte[s:s + bs * k]
            d, lab, am = forward(x, o)
            G = x.size(0) // k
            yy = y.view(G, k).repeat(1, k).view(G * k, k)
            pd = d.argmax(2)
            right += ((pd == yy).float() * am).sum().item()
            rec += ((pd == lab.argmax(2)).float() * am).sum().item()
            n += am.sum().item()
    enc.train(); dec.train()
    return right / n, rec / n

t0 = time.time()
for epoch in range(1, a.epochs + 1):
    order = tr_idx[torch.randperm(len(tr_idx))] if not a.dump else tr_idx
    tot = steps = 0
    losses = []
    starts = range(0, len(order) - len(order) % k, bs * k)
    if a.draws and epoch == 1:
        starts = range(len(draws_batches))
    for s in starts:
        ids = draws_batches[s] if a.draws and epoch == 1 else order[s:s + bs * k]
        eo.zero_grad(); do.zero_grad()
        d, lab, am = forward(xtr[ids], otr[ids])
        loss = loss_fn(d.view(-1, m), lab.reshape(-1, m), am.view(-1))
        if a.reduction == 'mean':
            loss = loss / m
        loss.backward()
        if a.dump:
            dump_batches.append(ids.tolist())
            gn = lambda mod: [q.grad.norm().item() for q in mod.parameters()]
            dump_log.append({'loss': loss.item(), 'encoderGradNorms': gn(enc), 'decoderGradNorms': gn(dec)})
            if steps < 5 or (steps + 1) % 50 == 0:
                print(f'step {steps + 1}: loss {loss.item():.6f}; encoder grad norms ' + ' '.join(f'{v:.4e}' for v in gn(enc)[0::2]), flush=True)
        eo.step(); do.step()
        tot += loss.item(); steps += 1; losses.append(loss.item())
        if steps == 1 and epoch == 1:
            print(f'step 1 loss {loss.item():.2f}', flush=True)
        if a.steps and steps >= a.steps:
            break
    ad, rc = test()
    if a.dump:
        json.dump(dump_batches, open(f'{a.dump}/batches.json', 'w'))
        json.dump(dump_log, open(f'{a.dump}/reference.json', 'w'))
        print(f'RESULT side-by-side reference: {steps} steps, last loss {dump_log[-1]["loss"]:.4f}, test A_d {100 * ad:.2f}% recovery {100 * rc:.2f}% (test images grouped in file order)', flush=True)
        break
    print(f'RESULT base={a.base} decoder={a.decoder} k={k} reduction={a.reduction} conv-gain={a.conv_gain} seed={a.seed} epoch {epoch}: train loss {tot / steps:.2f} ({steps} steps), test A_d {100 * ad:.2f}%, recovery {100 * rc:.2f}% ({time.time() - t0:.0f} s); mean loss of the last 50 steps {sum(losses[-50:]) / len(losses[-50:]):.2f}', flush=True)
