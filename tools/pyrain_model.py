"""PyRain's ConvLSTMForecaster (src/benchmark/models.py) re-implemented in PyTorch with PyRain's module
structure, so its state_dict names are PyRain's own: rnn._conv.{weight,bias}, rnn.Wci, rnn.Wcf, rnn.Wco,
out_layer1.{weight,bias}, out_layer2.{weight,bias}. Shared by the tools here.

One deliberate difference: PyRain's ConvLSTM.init_hidden starts h and c from uninitialised memory
(Tensor.new); zeros are meant, and are what this module and SwiftRain use.
"""
import math

import torch
from torch import nn


class ConvLSTM(nn.Module):
    """One ConvLSTM cell with peepholes, run over a sequence [S, B, C, H, W]; returns (outputs, (h, c))."""

    def __init__(self, in_channels, num_filter, kernel_size, patch_h, patch_w):
        super().__init__()
        self._num_filter = num_filter
        self._conv = nn.Conv2d(in_channels + num_filter, 4 * num_filter, kernel_size, stride=1, padding=1)
        self.Wci = nn.Parameter(torch.zeros(1, num_filter, patch_h, patch_w))
        self.Wcf = nn.Parameter(torch.zeros(1, num_filter, patch_h, patch_w))
        self.Wco = nn.Parameter(torch.zeros(1, num_filter, patch_h, patch_w))

    def forward(self, inputs):
        S, B, _, H, W = inputs.shape
        h = inputs.new_zeros(B, self._num_filter, H, W)
        c = inputs.new_zeros(B, self._num_filter, H, W)
        outputs = []
        for t in range(S):
            zi, zf, zg, zo = torch.chunk(self._conv(torch.cat([inputs[t], h], dim=1)), 4, dim=1)
            i = torch.sigmoid(zi + self.Wci * c)
            f = torch.sigmoid(zf + self.Wcf * c)
            c = f * c + i * torch.tanh(zg)
            o = torch.sigmoid(zo + self.Wco * c)
            h = o * torch.tanh(c)
            outputs.append(h)
        return torch.stack(outputs), (h, c)


class ConvLSTMForecaster(nn.Module):
    """PyRain's constructor: (in_channels, output_shape=(1, H, W), channels=(F, F2), last_ts, kernel_size,
    last_relu); input [B, S, C, H, W], output [B, 1, H, W] from the last time step."""

    def __init__(self, in_channels, output_shape, channels, last_ts=True, kernel_size=3, last_relu=True):
        super().__init__()
        assert last_ts, "SwiftRain's model forecasts from the last time step (PyRain's default)"
        self.rnn = ConvLSTM(in_channels, channels[0], kernel_size, output_shape[1], output_shape[2])
        self.out_layer1 = nn.Conv2d(channels[0], channels[1], kernel_size=1)
        self.out_layer2 = nn.Conv2d(channels[1], output_shape[0], kernel_size=1)
        self.last_relu = last_relu

    def forward(self, inputs):
        out, _ = self.rnn(inputs.permute(1, 0, 2, 3, 4))
        out = self.out_layer2(self.out_layer1(out[-1]))
        return torch.relu(out) if self.last_relu else out


def forecaster(cin, F, F2, H, W, relu=True):
    """The forecaster from SwiftRain's shape names (C_in, hidden, head, grid)."""
    return ConvLSTMForecaster(cin, (1, H, W), (F, F2), last_relu=relu)


def latitude_weights(H):
    """cos(lat) / mean(cos(lat)) at latitudes -90 + (180/H)(y + 1/2), as [1, 1, H, 1]."""
    c = torch.tensor([math.cos(math.radians(-90 + 180 / H * (y + 0.5))) for y in range(H)])
    return (c / c.mean()).view(1, 1, H, 1)
