#!/usr/bin/python3
"""References for `npm run bench:output-ops` (bench/output-ops.ts): for each operator that commonly ends a
model (Softmax, LogSoftmax, Tanh, Erf, GELU, Exp, Log, Softplus, log-sigmoid, HardSigmoid, Sigmoid), a
one-operator model exported by torch.onnx.export (opsets 11, 13, 17; Gelu-20 written with onnx.helper,
which torch 1.13 cannot export), inputs covering the bulk and the tails, and PyTorch's answers in float32
and float64 (the float32 inputs promoted). Not committed (~15 MB): the benchmark runs this when its folder
lacks them.

  /usr/bin/python3 scripts/bench/output_ops_reference.py <dir>

Writes <dir>/<case>.x.npy (float32), <case>.torch32.npy, <case>.ref64.npy, <case>.op<N>.onnx, cases.json.
"""

import json
import os
import sys

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper

F = torch.nn.functional


def logit_rows(rng):
    """Softmax logits: rows uniform in [-s, s] for spreads 1..100, and rows with one logit 0..90 above the rest."""
    rows = [rng.uniform(-s, s, size=10) for s in [1, 2, 5, 10, 20, 30, 50, 70, 100] for _ in range(400)]
    for gap in np.linspace(0, 90, 800):
        r = rng.normal(size=10)
        r[0] += gap
        rows.append(r)
    return np.array(rows, dtype=np.float32)


def small(rng):
    """Magnitudes 1e-10..1 of both signs: relative precision near 0."""
    m = 10.0 ** rng.uniform(-10, 0, 20000)
    return np.concatenate([m, -m])


def row(*parts):
    return np.concatenate(parts).astype(np.float32)[None, :]


class One(torch.nn.Module):
    def __init__(self, f):
        super().__init__()
        self.f = f

    def forward(self, x):
        return self.f(x)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(0)
    logits = logit_rows(rng)
    by_dim1 = logits[:3600].reshape(360, 10, 10).transpose(0, 2, 1).copy()
    lin = np.linspace
    cases = {
        "softmax": (logits, lambda x: F.softmax(x, dim=1)),
        "log_softmax": (logits, lambda x: F.log_softmax(x, dim=1)),
        "softmax_dim1_3d": (by_dim1, lambda x: F.softmax(x, dim=1)),
        "log_softmax_dim1_3d": (by_dim1, lambda x: F.log_softmax(x, dim=1)),
        "tanh": (row(lin(-10, 10, 40001), small(rng)), torch.tanh),
        "erf": (row(lin(-7, 7, 40001), small(rng)), torch.erf),
        "gelu": (row(lin(-12, 6, 40001), small(rng)), F.gelu),
        "gelu_tanh": (row(lin(-12, 6, 40001), small(rng)), lambda x: F.gelu(x, approximate="tanh")),
        "exp": (row(lin(-103, 88, 60001)), torch.exp),
        "log": (row(10.0 ** lin(-37.9, 38, 60001)), torch.log),
        "softplus": (row(lin(-100, 100, 60001)), F.softplus),
        "logsigmoid": (row(lin(-100, 40, 60001)), F.logsigmoid),
        "hardsigmoid": (row(lin(-4, 4, 60001)), F.hardsigmoid),
        "sigmoid": (row(lin(-40, 20, 60001)), torch.sigmoid),
    }
    meta = {}
    for name, (x, f) in cases.items():
        xt = torch.from_numpy(x)
        with torch.no_grad():
            np.save(os.path.join(out, f"{name}.x.npy"), x)
            np.save(os.path.join(out, f"{name}.torch32.npy"), f(xt).numpy())
            np.save(os.path.join(out, f"{name}.ref64.npy"), f(xt.double()).numpy())
        for opset in (11, 13, 17):
            torch.onnx.export(One(f), (xt,), os.path.join(out, f"{name}.op{opset}.onnx"), input_names=["x"],
                              output_names=["y"], opset_version=opset)
        meta[name] = {"shape": list(x.shape), "opsets": [11, 13, 17]}
    # Gelu-20 (approximate none and tanh): the op that replaces the exported patterns.
    for name, approx in (("gelu", "none"), ("gelu_tanh", "tanh")):
        shape = meta[name]["shape"]
        graph = helper.make_graph([helper.make_node("Gelu", ["x"], ["y"], approximate=approx)], "gelu",
                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
        model.ir_version = 9
        onnx.save(model, os.path.join(out, f"{name}.op20.onnx"))
        meta[name]["opsets"].append(20)
    # Opset-11 Softmax/LogSoftmax semantics: axis 1 of [N, 10, 10] normalizes the 100 values flattened.
    flat = logits[:3600].reshape(360, 10, 10)
    for name, op, f in (("softmax_flat11", "Softmax", F.softmax), ("log_softmax_flat11", "LogSoftmax", F.log_softmax)):
        xt = torch.from_numpy(flat)
        g = lambda t: f(t.reshape(360, 100), 1).reshape(360, 10, 10)  # noqa: E731
        with torch.no_grad():
            np.save(os.path.join(out, f"{name}.x.npy"), flat)
            np.save(os.path.join(out, f"{name}.torch32.npy"), g(xt).numpy())
            np.save(os.path.join(out, f"{name}.ref64.npy"), g(xt.double()).numpy())
        graph = helper.make_graph([helper.make_node(op, ["x"], ["y"], axis=1)], name,
                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, [360, 10, 10])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [360, 10, 10])])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
        model.ir_version = 6
        onnx.save(model, os.path.join(out, f"{name}.op11.onnx"))
        meta[name] = {"shape": [360, 10, 10], "opsets": [11]}
    with open(os.path.join(out, "cases.json"), "w") as fh:
        json.dump({"torch": torch.__version__, "cases": meta}, fh, indent=1)


if __name__ == "__main__":
    main()
