#!/usr/bin/env python3
"""Load a `swiftrain export --format pytorch` directory into PyRain's ConvLSTMForecaster with
load_state_dict(strict=True) and check its forecast for the exported sample against SwiftRain's.

    pip install torch numpy      # not needed by SwiftRain itself
    python3 tools/check_export.py RUN/export                      # tools/pyrain_model.py's copy of the class
    python3 tools/check_export.py RUN/export --pyrain ~/PyRain    # the class from a PyRain checkout

An export made with --lightning (every name behind `net.`, as in a PyRain Lightning checkpoint) is loaded
into a module that holds the forecaster as `net`, as PyRain's Lightning module does.
With --pyrain, PyRain's ConvLSTM.init_hidden is replaced by one returning zeros: PyRain's starts h and c
from uninitialised memory (Tensor.new), which makes its own forecasts depend on what memory held.

Exit status 0 when the forecasts agree (max |difference| <= 1e-4 relative to the largest value).
"""
import argparse
import importlib.util
import json
import os
import struct
import sys

import numpy as np
import torch
from torch import nn


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    header.pop("__metadata__", None)
    out = {}
    for name, e in header.items():
        assert e["dtype"] == "F32", f"{name}: dtype {e['dtype']}"
        a, b = e["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[a:b], dtype="<f4").reshape(e["shape"]).copy())
    return out


def pyrain_class(checkout):
    """ConvLSTMForecaster from CHECKOUT/src/benchmark/models.py, its hidden state started at zero."""
    path = os.path.join(checkout, "src", "benchmark", "models.py")
    spec = importlib.util.spec_from_file_location("pyrain_models", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    def zero_hidden(self, inputs):
        shape = (inputs.size(1), self._num_filter, self._state_height, self._state_width)
        return inputs.new_zeros(shape), inputs.new_zeros(shape)

    module.ConvLSTM.init_hidden = zero_hidden
    return module.ConvLSTMForecaster


class Lightning(nn.Module):
    """The part of PyRain's Lightning module a checkpoint's state_dict holds: the forecaster as `net`."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", nargs="?", default="export")
    ap.add_argument("--pyrain", help="a PyRain checkout: use its own ConvLSTMForecaster class")
    a = ap.parse_args()
    d = a.dir
    m = json.load(open(f"{d}/manifest.json"))
    if a.pyrain:
        cls = pyrain_class(a.pyrain)
    else:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from pyrain_model import ConvLSTMForecaster as cls
    model = cls(m["cin"], (1, m["height"], m["width"]), (m["hidden"], m["head"]), last_relu=m["relu"])
    weights = load_safetensors(f"{d}/model.safetensors")
    if all(k.startswith("net.") for k in weights):
        model = Lightning(model)
    model.load_state_dict(weights, strict=True)
    x = torch.from_numpy(np.fromfile(f"{d}/check_input.f32", dtype="<f4").reshape(m["input_shape"]))
    expected = np.fromfile(f"{d}/check_forecast.f32", dtype="<f4").reshape(m["forecast_shape"])
    with torch.no_grad():
        got = model(x).numpy()
    err = float(np.abs(got - expected).max() / max(1e-12, np.abs(expected).max()))
    source = f"PyRain's class from {a.pyrain}" if a.pyrain else "tools/pyrain_model.py"
    print(f"{d}: {len(weights)} tensors, {sum(p.numel() for p in model.parameters())} parameters loaded by name "
          f"(strict) into {source}; sample t0 {m['t0']} +{m['lead_hours']} h; "
          f"max |PyTorch - SwiftRain| / max |SwiftRain| = {err:.2e}")
    return 0 if err <= 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
