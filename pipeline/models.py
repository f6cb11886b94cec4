"""Architectures a zoo manifest can name, built in plain torch (no torchvision).

Each family is a function of keyword hyper-parameters returning an ``nn.Module`` whose
``state_dict`` keys are stable, so checkpoints written by ``nncap zoo train`` or by other tools
using the same layout load with ``strict=True``.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

from torch import nn

from pipeline.errors import NncapError

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "silu": nn.SiLU, "sigmoid": nn.Sigmoid,
    "leaky_relu": nn.LeakyReLU, "elu": nn.ELU,
}


def _activation(name: str) -> nn.Module:
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise NncapError(f"unknown activation {name!r}; choose from {', '.join(ACTIVATIONS)}") from None


def mlp(widths: list[int], activation: str = "relu", dropout: float = 0.0) -> nn.Module:
    """Flatten, then Linear layers ``widths[0] → … → widths[-1]`` with ``activation`` between."""
    if len(widths) < 2 or any(int(w) < 1 for w in widths):
        raise NncapError(f"mlp widths must list at least two positive sizes, got {widths}")
    layers: list[nn.Module] = [nn.Flatten()]
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(int(a), int(b)))
        if i < len(widths) - 2:
            layers.append(_activation(activation))
            if dropout:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def cnn(channels: list[int], classes: int = 10, in_channels: int = 1, kernel: int = 3,
        activation: str = "relu", hidden: int = 0) -> nn.Module:
    """Conv(kernel)–activation–MaxPool(2) blocks, global average pooling, an optional hidden Linear
    layer and a Linear classifier."""
    if not channels or any(int(c) < 1 for c in channels):
        raise NncapError(f"cnn channels must list positive sizes, got {channels}")
    layers: list[nn.Module] = []
    c_in = int(in_channels)
    for c in channels:
        layers += [nn.Conv2d(c_in, int(c), kernel, padding=kernel // 2), _activation(activation), nn.MaxPool2d(2)]
        c_in = int(c)
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    if hidden:
        layers += [nn.Linear(c_in, int(hidden)), _activation(activation)]
        c_in = int(hidden)
    layers.append(nn.Linear(c_in, int(classes)))
    return nn.Sequential(*layers)


class _ResidualBlock(nn.Module):
    def __init__(self, channels: int, activation: str):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.act = _activation(activation)

    def forward(self, x):
        return self.act(x + self.bn2(self.conv2(self.act(self.bn1(self.conv1(x))))))


class ResNet(nn.Module):
    """A small ResNet: stem conv, ``blocks`` residual blocks per stage with 2× down-sampling between
    stages, global average pooling and a Linear classifier."""

    def __init__(self, widths: list[int], blocks: int = 1, classes: int = 10, in_channels: int = 1,
                 activation: str = "relu"):
        super().__init__()
        if not widths or blocks < 1:
            raise NncapError(f"resnet needs stage widths and blocks >= 1, got {widths}, {blocks}")
        self.stem = nn.Sequential(nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False),
                                  nn.BatchNorm2d(widths[0]), _activation(activation))
        stages: list[nn.Module] = []
        c = widths[0]
        for i, w in enumerate(widths):
            if i:
                stages += [nn.Conv2d(c, w, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(w), _activation(activation)]
            stages += [_ResidualBlock(w, activation) for _ in range(blocks)]
            c = w
        self.stages = nn.Sequential(*stages)
        self.head = nn.Linear(c, classes)

    def forward(self, x):
        return self.head(self.stages(self.stem(x)).mean((2, 3)))


ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {"mlp": mlp, "cnn": cnn, "resnet": ResNet}


def build(architecture: str, params: dict[str, Any]) -> nn.Module:
    """Instantiate ``architecture`` with hyper-parameters ``params``; unknown names fail clearly."""
    try:
        family = ARCHITECTURES[architecture]
    except KeyError:
        raise NncapError(f"unknown architecture {architecture!r}; choose from {', '.join(ARCHITECTURES)}") from None
    accepted = set(inspect.signature(family).parameters)
    unknown = sorted(set(params) - accepted)
    if unknown:
        raise NncapError(f"architecture {architecture!r} has no parameter(s) {', '.join(unknown)}; "
                         f"it takes {', '.join(sorted(accepted))}")
    try:
        return family(**params)
    except TypeError as e:
        raise NncapError(f"architecture {architecture!r}: {e}") from None
