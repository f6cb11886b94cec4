"""Candidate backbones for model selection: any zoo model with its output layer removed, fed a
target dataset adapted to the input it was built for (resolution, channels, normalisation)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from pipeline.errors import NncapError
from pipeline.export import ZooModel, load_model

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Input conventions of the architectures that were not trained by nncap (channels, side, mean, std).
PRETRAINED_INPUTS = {
    "mnist_cnn": (1, 28, (0.1307,), (0.3081,)),
    "mobilenet_v2": (3, None, IMAGENET_MEAN, IMAGENET_STD),
    "efficientnet_lite0": (3, None, IMAGENET_MEAN, IMAGENET_STD),
    "vgg16_bn_craft": (3, None, IMAGENET_MEAN, IMAGENET_STD),
}
FEATURE_EXTRACTORS = {"vgg16_bn_craft"}  # published without a classifier: nothing to remove


@dataclass
class Backbone:
    """A frozen feature extractor and how target images must be shaped for it. ``side`` None means
    "any resolution" (global pooling); ``flat`` means the input is a flattened side×side image."""

    id: str
    module: nn.Module
    channels: int
    side: int | None
    flat: bool
    mean: tuple[float, ...]
    std: tuple[float, ...]
    n_params: int

    def adapt(self, images: torch.Tensor, resolution: int) -> torch.Tensor:
        """Target images (N, C, H, W) or flat (N, H*W) in [0, 1] -> this backbone's input."""
        x = images if images.dim() == 4 else images.reshape(len(images), 1, *([int(images.shape[1] ** 0.5)] * 2))
        side = self.side or resolution
        if x.shape[-1] != side:
            x = nn.functional.interpolate(x, size=(side, side), mode="bilinear", align_corners=False)
        if x.shape[1] != self.channels:
            if x.shape[1] != 1:
                raise NncapError(f"backbone {self.id} takes {self.channels} channels, the target has {x.shape[1]}")
            x = x.expand(-1, self.channels, -1, -1)
        mean = torch.tensor(self.mean, dtype=x.dtype).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype).view(1, -1, 1, 1)
        x = (x - mean) / std
        return x.reshape(len(x), -1) if self.flat else x

    @torch.no_grad()
    def features(self, images: torch.Tensor, resolution: int, batch: int = 256) -> torch.Tensor:
        """Penultimate features of a batch of target images (eval mode, no gradients)."""
        return self.embed(self.adapt(images, resolution), batch)

    @torch.no_grad()
    def embed(self, inputs: torch.Tensor, batch: int = 256) -> torch.Tensor:
        """Penultimate features of already adapted inputs (eval mode, no gradients)."""
        was_training = self.module.training
        self.module.eval()
        try:
            parts = [self.module(inputs[a:a + batch]) for a in range(0, len(inputs), batch)]
        finally:
            self.module.train(was_training)
        return torch.cat(parts).reshape(len(inputs), -1)


def drop_output_layer(model: nn.Module) -> nn.Module:
    """The model with its last Linear layer replaced by the identity (Jiang et al.'s step 1)."""
    last = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not last:
        raise NncapError(f"{type(model).__name__} has no Linear output layer to remove")
    parent_name, _, attr = last[-1].rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, attr, nn.Identity())
    return model


def load_backbone(entry: ZooModel, candidate_id: str) -> Backbone:
    """The entry's model without its output layer, with its input conventions."""
    model = load_model(entry)
    n_params = sum(p.numel() for p in model.parameters())
    if entry.architecture in PRETRAINED_INPUTS:
        channels, side, mean, std = PRETRAINED_INPUTS[entry.architecture]
        flat = False
    elif entry.architecture == "mlp":
        width = int(entry.params["widths"][0])
        side = int(round(width ** 0.5))
        if side * side != width:
            raise NncapError(f"candidate {candidate_id}: an MLP with {width} inputs is not a square image model")
        channels, mean, std, flat = 1, (0.0,), (1.0,), True
    else:  # cnn / resnet from nncap zoo train: inputs in [0, 1], any resolution
        channels, side, mean, std, flat = int(entry.params.get("in_channels", 1)), None, (0.0,), (1.0,), False
    for p in model.parameters():
        p.requires_grad_(False)
    features = model if entry.architecture in FEATURE_EXTRACTORS else drop_output_layer(model)
    return Backbone(candidate_id, features.eval(), channels, side, flat, tuple(mean), tuple(std), n_params)
