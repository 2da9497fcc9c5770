"""Files shipped inside the package: the trained ancestries."""

import os

ASSETS = os.path.join(os.path.dirname(__file__), "assets")

# name -> (file under assets/, what it is). `keras_learngene/assets/README.md`
# gives the command that made each and its measured accuracy.
SHIPPED_ANCESTRIES = {
    "fashion_mnist_vit_tiny": (
        "ancestry_vit_tiny.keras",
        "vit_tiny trained on the 6 Fashion-MNIST base classes (94.3% base-class test "
        "accuracy); the default"),
    "glyphs_vit_tiny": (
        "ancestry_glyphs_vit_tiny.keras",
        "vit_tiny trained 20 epochs on the 333 glyph base classes of the benchmark's 10 "
        "scripts, split 0 (55.6% base-class test accuracy on held-out fonts)"),
    "glyphs_vgg_iso": (
        "ancestry_glyphs_vgg_iso.keras",
        "vgg_iso trained 20 epochs on the same 333 glyph base classes (81.4%)"),
}
DEFAULT_ANCESTRY_NAME = "fashion_mnist_vit_tiny"
DEFAULT_ANCESTRY = os.path.join(ASSETS, SHIPPED_ANCESTRIES[DEFAULT_ANCESTRY_NAME][0])


def shipped_ancestries():
    """The names of the ancestries shipped in the package, with what each is.

    Returns:
        A dict `{name: description}`; `load_shipped_ancestry(name)` loads one.
    """
    return {name: about for name, (_, about) in SHIPPED_ANCESTRIES.items()}


def load_shipped_ancestry(name=DEFAULT_ANCESTRY_NAME):
    """Loads an ancestry shipped in the package.

    Args:
        name: one of `shipped_ancestries()`: `"fashion_mnist_vit_tiny"` (the
            default of `klg condense`), `"glyphs_vit_tiny"` or `"glyphs_vgg_iso"`
            (the full benchmark's glyph ancestries, 333 outputs, 28x28 grey input;
            their base data, output i being class i: `datasets.load_task("glyphs",
            classes="base", scripts=datasets.ANCESTRY_SCRIPTS)`).

    Returns:
        The trained Keras model (a `keras_learngene.models` preset).

    Raises:
        ValueError: for an unknown name (the message lists the names).
        FileNotFoundError: if the package's file is missing (a broken install).
    """
    if name not in SHIPPED_ANCESTRIES:
        raise ValueError(f"No shipped ancestry is named {name!r}; the shipped ancestries: "
                         f"{', '.join(SHIPPED_ANCESTRIES)}.")
    from keras_learngene._io import load_keras

    path = os.path.join(ASSETS, SHIPPED_ANCESTRIES[name][0])
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"The shipped ancestry {name!r} is missing at {path!r}; reinstall keras-learngene.")
    return load_keras(path, what="ancestry")


def load_default_ancestry():
    """The default shipped ancestry (`"fashion_mnist_vit_tiny"`): the `vit_tiny`
    preset trained on the six base classes of Fashion-MNIST (see
    `keras_learngene/assets/README.md` for the command that made it and its
    accuracy, and `load_shipped_ancestry` for the others).

    Returns:
        A `keras_learngene.models.VisionTransformer` with 6 outputs.
    """
    return load_shipped_ancestry(DEFAULT_ANCESTRY_NAME)
