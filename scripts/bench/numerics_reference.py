#!/usr/bin/python3
"""float64 references for bench/graph-optimization.ts (how far each onnxruntime graph optimization level
is from exact arithmetic).

    /usr/bin/python3 scripts/bench/numerics_reference.py efficientnet DIR [--batch 8]
        torchvision's efficientnet_b0 (random weights, seed 0, BatchNorm statistics set by four
        training-mode passes over random images: nothing downloaded), exported by
        torch.onnx.export (opset 13) to DIR/efficientnet_b0.onnx; DIR/efficientnet_b0.inputs.npy (float32),
        DIR/efficientnet_b0.ref64.npy (the model in float64) and .torch32.npy (PyTorch's own float32).
    /usr/bin/python3 scripts/bench/numerics_reference.py onnx MODEL.onnx BATCH OUT_PREFIX
        any model CAI's builder emits: random inputs (seed 0, standard normal, batch BATCH) written to
        OUT_PREFIX.in.<input>.npy, then the graph evaluated op by op with torch
        (scripts/fixtures/onnx_torch.py) in float64 (weights and float inputs promoted) and in float32:
        OUT_PREFIX.ref64.npy, OUT_PREFIX.torch32.npy.

Use Debian's Python (python3-torch, python3-torchvision, python3-onnx). With libopenblas0-pthread
installed torch's matrix products are fast; without it, slow but the same numbers.
"""

import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'fixtures'))


def efficientnet(out_dir, batch=8):
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.efficientnet_b0(weights=None)
    # Random weights with BatchNorm's initial statistics make activations vanish (outputs ~1e-14): a few
    # training-mode passes set the running statistics so every layer sees unit-scale activations, as in
    # a trained network.
    model.train()
    with torch.no_grad():
        for _ in range(4):
            model(torch.randn(16, 3, 224, 224))
    model.eval()
    x = torch.randn(batch, 3, 224, 224)
    path = os.path.join(out_dir, 'efficientnet_b0.onnx')
    torch.onnx.export(model, x[:1], path, opset_version=13, input_names=['image'], output_names=['logits'],
                      dynamic_axes={'image': {0: 'N'}, 'logits': {0: 'N'}})
    with torch.no_grad():
        torch32 = model(x).numpy()
        ref64 = model.double()(x.double()).numpy()
    np.save(os.path.join(out_dir, 'efficientnet_b0.inputs.npy'), x.numpy())
    np.save(os.path.join(out_dir, 'efficientnet_b0.torch32.npy'), torch32)
    np.save(os.path.join(out_dir, 'efficientnet_b0.ref64.npy'), ref64)


def builder_model(model_path, batch, prefix):
    import onnx
    from onnx_torch import OnnxTorchModel

    m = OnnxTorchModel(model_path)
    graph = onnx.load(model_path).graph
    rng = np.random.default_rng(0)
    feeds = {}
    for i in graph.input:
        if i.name in m.weights:
            continue
        dims = [d.dim_value if d.dim_value > 0 else batch for d in i.type.tensor_type.shape.dim]
        dtype = {1: np.float32, 11: np.float64}[i.type.tensor_type.elem_type]
        x = rng.standard_normal(dims).astype(dtype)
        np.save(f'{prefix}.in.{i.name}.npy', x)
        feeds[i.name] = torch.from_numpy(x)
    with torch.no_grad():
        torch32 = m.run(feeds)[0].numpy()
        m.weights = {k: (v.double() if v.is_floating_point() else v) for k, v in m.weights.items()}
        m.inputs = [(n, torch.float64 if d.is_floating_point else d) for n, d in m.inputs]
        ref64 = m.run(feeds)[0].numpy()
    np.save(prefix + '.torch32.npy', torch32)
    np.save(prefix + '.ref64.npy', ref64)


if __name__ == '__main__':
    torch.set_num_threads(1)
    if sys.argv[1] == 'efficientnet':
        efficientnet(sys.argv[2], int(sys.argv[4]) if len(sys.argv) > 4 else 8)
    elif sys.argv[1] == 'onnx':
        builder_model(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        sys.exit(f'unknown mode {sys.argv[1]}: efficientnet or onnx')
