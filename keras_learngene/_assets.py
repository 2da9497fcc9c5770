"""Files shipped inside the package."""

import os

ASSETS = os.path.join(os.path.dirname(__file__), "assets")
DEFAULT_ANCESTRY = os.path.join(ASSETS, "ancestry_vit_tiny.keras")


def load_default_ancestry():
    """The shipped ancestry: the `vit_tiny` preset trained on the six base
    classes of Fashion-MNIST (see `keras_learngene/assets/README.md` for the
    command that made it and its accuracy).

    Returns:
        A `keras_learngene.models.VisionTransformer` with 6 outputs.
    """
    import keras

    if not os.path.isfile(DEFAULT_ANCESTRY):
        raise FileNotFoundError(
            f"The shipped ancestry is missing at {DEFAULT_ANCESTRY!r}; reinstall keras-learngene."
        )
    return keras.saving.load_model(DEFAULT_ANCESTRY)
