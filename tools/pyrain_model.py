"""PyRain's ConvLSTMForecaster in PyTorch (state_dict names as PyRain's), shared by the tools here."""
import math

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


def latitude_weights(H):
    """cos(lat) / mean(cos(lat)) at latitudes -90 + (180/H)(y + 1/2), as [1, 1, H, 1]."""
    c = torch.tensor([math.cos(math.radians(-90 + 180 / H * (y + 0.5))) for y in range(H)])
    return (c / c.mean()).view(1, 1, H, 1)
