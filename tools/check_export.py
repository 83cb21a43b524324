#!/usr/bin/env python3
"""Load a `swiftrain export --format pytorch` directory into a PyTorch ConvLSTMForecaster (PyRain's
state_dict names) and check its forecast for the exported sample against SwiftRain's.

    pip install torch numpy      # not needed by SwiftRain itself
    python3 tools/check_export.py RUN/export

Exit status 0 when the forecasts agree (max |difference| <= 1e-4 relative to the largest value).
"""
import json
import struct
import sys

import numpy as np
import torch

from pyrain_model import ConvLSTMForecaster


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


def main(d):
    m = json.load(open(f"{d}/manifest.json"))
    model = ConvLSTMForecaster(m["cin"], m["hidden"], m["head"], m["height"], m["width"], m["relu"])
    model.load_state_dict(load_safetensors(f"{d}/model.safetensors"), strict=True)
    x = torch.from_numpy(np.fromfile(f"{d}/check_input.f32", dtype="<f4").reshape(m["input_shape"]))
    expected = np.fromfile(f"{d}/check_forecast.f32", dtype="<f4").reshape(m["forecast_shape"])
    with torch.no_grad():
        got = model(x).numpy()
    err = float(np.abs(got - expected).max() / max(1e-12, np.abs(expected).max()))
    print(f"{d}: {sum(p.numel() for p in model.parameters())} parameters loaded by name; sample t0 {m['t0']} +{m['lead_hours']} h; "
          f"max |PyTorch - SwiftRain| / max |SwiftRain| = {err:.2e}")
    return 0 if err <= 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "export"))
