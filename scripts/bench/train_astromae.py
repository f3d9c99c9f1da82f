"""Trains the AstroMAE-shaped model (src/model/zoo/astromae.ts, the same layers and sizes) briefly with
PyTorch on the demo's synthetic galaxies, and exports it to ONNX, for measuring int8 on trained rather
than random weights (bench/optimize.ts --trained, bench/int8-astromae.ts --trained).

    /usr/bin/python3 scripts/bench/train_astromae.py <dir> [--seconds 240]

<dir> holds images.f32 [n,5,32,32], magnitudes.f32 [n,5], redshifts.f32 [n] (little-endian float32,
written by bench/trained-astromae.ts from makeGalaxies); writes <dir>/astromae-trained.onnx and
<dir>/train.json (steps, loss before/after). Deterministic seed; CPU; stops after --seconds of training.
"""
import argparse
import json
import math
import os
import time

import numpy as np
import torch
from torch import nn

p = argparse.ArgumentParser()
p.add_argument("dir")
p.add_argument("--seconds", type=float, default=240)
p.add_argument("--batch", type=int, default=24)
args = p.parse_args()
torch.manual_seed(2501)
np.random.seed(2501)
torch.set_num_threads(2)

images = np.fromfile(os.path.join(args.dir, "images.f32"), dtype="<f4").reshape(-1, 5, 32, 32)
mags = np.fromfile(os.path.join(args.dir, "magnitudes.f32"), dtype="<f4").reshape(-1, 5)
z = np.fromfile(os.path.join(args.dir, "redshifts.f32"), dtype="<f4")
n = len(z)
images, mags, z = torch.from_numpy(images), torch.from_numpy(mags), torch.from_numpy(z)

DIM, DEPTH, HEADS, MLP, PATCH, MAX_Z = 192, 6, 3, 4, 4, 0.8


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm1 = nn.LayerNorm(DIM, eps=1e-6)
        self.qkv = nn.Linear(DIM, 3 * DIM)
        self.proj = nn.Linear(DIM, DIM)
        self.norm2 = nn.LayerNorm(DIM, eps=1e-6)
        self.fc1 = nn.Linear(DIM, DIM * MLP)
        self.fc2 = nn.Linear(DIM * MLP, DIM)

    def forward(self, x):
        b, t, d = x.shape
        h = HEADS
        qkv = self.qkv(self.norm1(x)).reshape(b, t, 3, h, d // h).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        a = torch.softmax(q @ k.transpose(-2, -1) * (d // h) ** -0.5, dim=-1)
        x = x + self.proj((a @ v).transpose(1, 2).reshape(b, t, d))
        return x + self.fc2(nn.functional.gelu(self.fc1(self.norm2(x))))


def conv_relu(cin, cout, k):
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2), nn.ReLU())


class Inception(nn.Module):
    def __init__(self, cin, b1, b3r, b3, b5r, b5, pool):
        super().__init__()
        self.b1 = conv_relu(cin, b1, 1)
        self.b3 = nn.Sequential(conv_relu(cin, b3r, 1), conv_relu(b3r, b3, 3))
        self.b5 = nn.Sequential(conv_relu(cin, b5r, 1), conv_relu(b5r, b5, 5))
        self.pool = nn.Sequential(nn.AvgPool2d(3, 1, 1, count_include_pad=False), conv_relu(cin, pool, 1))

    def forward(self, x):
        return torch.cat([self.b1(x), self.b3(x), self.b5(x), self.pool(x)], 1)


class AstroMAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.patch_embed = nn.Conv2d(5, DIM, PATCH, stride=PATCH)
        self.pos_embed = nn.Parameter(torch.randn(1, 64, DIM) * 0.02)
        self.blocks = nn.ModuleList([Block() for _ in range(DEPTH)])
        self.norm = nn.LayerNorm(DIM, eps=1e-6)
        self.pool_norm = nn.LayerNorm(DIM)
        # momentum None: the running statistics are the plain average over every training batch.
        self.stem = nn.Sequential(
            nn.Conv2d(5, 96, 5, padding=2, bias=False), nn.BatchNorm2d(96, momentum=None), nn.ReLU()
        )
        self.inc1 = Inception(96, 64, 96, 128, 48, 64, 48)
        self.inc2 = Inception(304, 128, 128, 224, 64, 96, 96)
        self.inc3 = Inception(544, 192, 192, 256, 64, 96, 96)
        self.mag = nn.Sequential(nn.Linear(5, 64), nn.GELU(), nn.Linear(64, 64), nn.GELU())
        self.fc1 = nn.Linear(192 + 640 + 64, 128)
        self.fc2 = nn.Linear(128, 1, bias=False)
        self.register_buffer("trend", torch.full((5, 1), 0.2))

    def forward(self, image, magnitude):
        x = self.patch_embed(image).flatten(2).transpose(1, 2) + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        x = self.norm(x)
        vit = self.pool_norm(x.mean(1) - x[:, 0])  # the sky-subtracted token mean of astromae.ts
        # The CNN branch keeps its initial weights (trained briefly on 2 shared cores, its backward pass
        # would be most of the time): the ViT, the magnitude MLP and the head learn around it.
        with torch.no_grad():
            c = self.stem(image)
            c = self.inc1(c)
            c = self.inc2(nn.functional.avg_pool2d(c, 2))
            c = self.inc3(nn.functional.avg_pool2d(c, 2))
            cnn = c.mean((2, 3))
        m = (magnitude - 18) * 0.5
        h = nn.functional.gelu(self.fc1(torch.cat([vit, cnn, self.mag(m)], 1)))
        logit = torch.tanh(self.fc2(h) / 3) * 1.5 + m @ self.trend - 0.5
        return torch.sigmoid(logit) * MAX_Z


model = AstroMAE()
# Kaiming-normal convolutions, as the zoo's builder initializes them: PyTorch's default (std
# 1/sqrt(3 fan_in)) shrinks the signal at every ReLU, and the CNN branch's features would be ~0.
for mod in model.modules():
    if isinstance(mod, nn.Conv2d) and mod is not model.patch_embed:
        nn.init.kaiming_normal_(mod.weight, nonlinearity="relu")
opt = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=1e-3, weight_decay=0.01)
hold = slice(n - 256, n)
train_n = n - 256


def val_loss():
    model.eval()
    with torch.no_grad():
        return float(((model(images[hold], mags[hold]).squeeze(1) - z[hold]) ** 2).mean())


before = val_loss()
start = time.time()
steps = 0
g = torch.Generator().manual_seed(1)
while time.time() - start < args.seconds:
    model.train()
    idx = torch.randint(0, train_n, (args.batch,), generator=g)
    loss = ((model(images[idx], mags[idx]).squeeze(1) - z[idx]) ** 2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    steps += 1
    if steps % 10 == 0:
        print(f"step {steps} {time.time() - start:.0f} s loss {float(loss):.5f}", flush=True)
after = val_loss()
model.eval()
out = os.path.join(args.dir, "astromae-trained.onnx")
torch.onnx.export(
    model,
    (images[:2], mags[:2]),
    out,
    input_names=["image", "magnitude"],
    output_names=["redshift"],
    dynamic_axes={"image": {0: "N"}, "magnitude": {0: "N"}, "redshift": {0: "N"}},
    opset_version=17,
    dynamo=False,
) if "dynamo" in torch.onnx.export.__code__.co_varnames else torch.onnx.export(
    model,
    (images[:2], mags[:2]),
    out,
    input_names=["image", "magnitude"],
    output_names=["redshift"],
    dynamic_axes={"image": {0: "N"}, "magnitude": {0: "N"}, "redshift": {0: "N"}},
    opset_version=17,
)
z_std = float(z[hold].std())
info = {
    "steps": steps,
    "batch": args.batch,
    "seconds": round(time.time() - start, 1),
    "items": train_n,
    "val_rmse_before": math.sqrt(before),
    "val_rmse_after": math.sqrt(after),
    "val_z_std": z_std,
    "torch": torch.__version__,
}
json.dump(info, open(os.path.join(args.dir, "train.json"), "w"), indent=2)
print(json.dumps(info))
