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
    /usr/bin/python3 scripts/bench/numerics_reference.py torch-export MODEL.onnx BATCH OUT.onnx
        the same model as a PyTorch user would write and export it: the builder's graph as a torch module
        (onnx_torch's op-by-op interpreter, weights as parameters) whose output sigmoid is
        `torch.sigmoid` (the builder spells it 1 / (1 + exp(-x))), exported by torch.onnx.export
        (TorchScript exporter, opset 17, batch fixed at BATCH) to OUT.onnx. onnxruntime's error on it is
        what a user's own export gets.

Use Debian's Python (python3-torch, python3-torchvision, python3-onnx). With libopenblas0-pthread
installed torch's matrix products are fast; without it, slow but the same numbers.
"""

import os
import sys
import warnings

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


def sigmoid_as_op(graph):
    """Replaces each Neg -> Exp -> Add(1) -> Reciprocal chain (1 / (1 + exp(-x))) by one Sigmoid node."""
    import onnx

    nodes = list(graph.node)
    by_input = {}
    for n in nodes:
        for i in n.input:
            by_input.setdefault(i, []).append(n)
    replaced = 0
    for neg in [n for n in nodes if n.op_type == 'Neg']:
        chain = [neg]
        for op in ('Exp', 'Add', 'Reciprocal'):
            nxt = by_input.get(chain[-1].output[0], [])
            if len(nxt) != 1 or nxt[0].op_type != op:
                break
            chain.append(nxt[0])
        if len(chain) != 4:
            continue
        at = list(graph.node).index(neg)
        for n in chain:
            graph.node.remove(n)
        graph.node.insert(at, onnx.helper.make_node('Sigmoid', [neg.input[0]], [chain[-1].output[0]],
                                                    name=neg.name + '_sigmoid'))
        replaced += 1
    if replaced == 0:
        raise ValueError('no 1 / (1 + exp(-x)) chain found to turn into torch.sigmoid')


def torch_export(model_path, batch, out):
    import tempfile

    import onnx
    from onnx_torch import OnnxTorchModel

    model = onnx.load(model_path)
    sigmoid_as_op(model.graph)
    with tempfile.TemporaryDirectory() as tmp:
        edited = os.path.join(tmp, 'model.onnx')
        onnx.save(model, edited)
        m = OnnxTorchModel(edited)
    names = {k: f'w{i}' for i, k in enumerate(m.weights)}

    class Module(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.ParameterDict({names[k]: torch.nn.Parameter(v, requires_grad=False)
                                             for k, v in m.weights.items() if v.is_floating_point()})

        def forward(self, image, magnitude):
            m.weights = {k: self.w[names[k]] if names[k] in self.w else v for k, v in m.weights.items()}
            return m.run({'image': image, 'magnitude': magnitude})[0]

    # The interpreter's Reshape targets become constants in the trace: the export's batch is fixed.
    warnings.filterwarnings('ignore', category=torch.jit.TracerWarning)
    names_in = [n for n, _ in m.inputs]
    example = tuple(torch.zeros(batch, 5, 32, 32) if n == 'image' else torch.zeros(batch, 5) for n in names_in)
    with torch.no_grad():
        torch.onnx.export(Module().eval(), example, out, opset_version=17, input_names=names_in,
                          output_names=m.outputs)


if __name__ == '__main__':
    torch.set_num_threads(1)
    if sys.argv[1] == 'efficientnet':
        efficientnet(sys.argv[2], int(sys.argv[4]) if len(sys.argv) > 4 else 8)
    elif sys.argv[1] == 'onnx':
        builder_model(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    elif sys.argv[1] == 'torch-export':
        torch_export(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        sys.exit(f'unknown mode {sys.argv[1]}: efficientnet, onnx or torch-export')
