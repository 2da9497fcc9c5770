"""Named ancestry configurations sized for a 2-core CPU and 28x28 grey images."""

from keras_learngene.models._ancestry import ResNet, VGGNet, VisionTransformer

PRESETS = {
    "vit_tiny": (
        VisionTransformer,
        dict(patch_size=4, num_layers=8, hidden_dim=32, num_heads=2, mlp_dim=64),
        "ViT, patch 4 (49 tokens + class token), 8 blocks of width 32; the shipped ancestry.",
    ),
    "vit_small": (
        VisionTransformer,
        dict(patch_size=4, num_layers=8, hidden_dim=64, num_heads=4, mlp_dim=128),
        "ViT, patch 4, 8 blocks of width 64.",
    ),
    "vgg_small": (
        VGGNet,
        dict(filters=(32, 32, 64, 64, 64, 128, 128, 128), pool_after=(1, 4)),
        "VGG-style CNN, 8 conv+BN+ReLU blocks, pooling after blocks 1 and 4.",
    ),
    "vgg_iso": (
        VGGNet,
        dict(filters=(48,) * 8, pool_after=(), stem_filters=48, stem_pool=True),
        "VGG-style CNN, 8 conv+BN+ReLU blocks of width 48 at 14x14 (the stem pools): every "
        "unit has the same shape, so any k units chain; the benchmark's CNN ancestry.",
    ),
    "resnet_small": (
        ResNet,
        dict(filters=(32, 32, 32, 64, 64, 64, 128, 128)),
        "ResNet, 8 basic residual blocks in 3 stages (32, 64, 128 channels).",
    ),
}


def list_presets():
    """Names and one-line descriptions of the ancestry presets.

    Returns:
        A dict `{name: description}`.
    """
    return {name: description for name, (_, _, description) in PRESETS.items()}


def build_preset(name, image_shape=(28, 28, 1), num_classes=10, **overrides):
    """Builds a freshly initialised ancestry from a named preset.

    Args:
        name: one of `list_presets()`.
        image_shape: `(height, width, channels)` of the inputs.
        num_classes: number of output logits.
        **overrides: builder arguments that replace the preset's.

    Returns:
        A `keras.Model` (`VisionTransformer`, `VGGNet` or `ResNet`).

    Raises:
        ValueError: for an unknown preset name.

    Example:
    ```python
    model = keras_learngene.models.build_preset("vit_tiny", num_classes=6)
    ```
    """
    if name not in PRESETS:
        raise ValueError(
            f"Unknown preset {name!r}; available presets: {', '.join(sorted(PRESETS))}."
        )
    builder, args, _ = PRESETS[name]
    return builder(image_shape=image_shape, num_classes=num_classes, **{**args, **overrides})
