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
from torch import nn


class ConvLSTMForecaster(nn.Module):
    """PyRain's model: one ConvLSTM cell with peepholes, then two 1x1 convolutions."""

    def __init__(self, cin, F, F2, H, W, relu=True):
        super().__init__()
        self.F, self.relu = F, relu
        self.Wci = nn.Parameter(torch.zeros(1, F, H, W))
        self.Wcf = nn.Parameter(torch.zeros(1, F, H, W))
        self.Wco = nn.Parameter(torch.zeros(1, F, H, W))
        self.conv = nn.Conv2d(cin + F, 4 * F, kernel_size=3, padding=1, bias=True)
        self.head1 = nn.Conv2d(F, F2, kernel_size=1, bias=True)
        self.head2 = nn.Conv2d(F2, 1, kernel_size=1, bias=True)

    def forward(self, x):  # x: [B, S, Cin, H, W]
        B, S, _, H, W = x.shape
        h = x.new_zeros(B, self.F, H, W)
        c = x.new_zeros(B, self.F, H, W)
        for t in range(S):
            zi, zf, zg, zo = torch.split(self.conv(torch.cat([x[:, t], h], dim=1)), self.F, dim=1)
            i = torch.sigmoid(zi + self.Wci * c)
            f = torch.sigmoid(zf + self.Wcf * c)
            c = f * c + i * torch.tanh(zg)
            o = torch.sigmoid(zo + self.Wco * c)
            h = o * torch.tanh(c)
        y = self.head2(self.head1(h))
        return torch.relu(y) if self.relu else y


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
