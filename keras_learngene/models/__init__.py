"""Ancestry model builders, their layers and presets."""

from keras_learngene.models._ancestry import ResNet, VGGNet, VisionTransformer
from keras_learngene.models._layers import (
    ConvBlock,
    PatchEmbedding,
    ResidualBlock,
    TokenPooling,
    TransformerBlock,
)
from keras_learngene.models._presets import PRESETS, build_preset, list_presets

__all__ = [
    "ConvBlock",
    "PRESETS",
    "PatchEmbedding",
    "ResNet",
    "ResidualBlock",
    "TokenPooling",
    "TransformerBlock",
    "VGGNet",
    "VisionTransformer",
    "build_preset",
    "list_presets",
]
