"""Weight selection (Xu et al., ICLR 2024): first-N layers, uniform elements."""

import keras
import numpy as np
import pytest
from conftest import TINY_BUILDERS, TINY_SHAPE, randomize_weights

import keras_learngene as klg
from keras_learngene.models import VisionTransformer
from keras_learngene.weight_selection import select_weights


def _weights(layer):
    return [keras.ops.convert_to_numpy(w) for w in layer.weights]


def _vit(num_layers=4, hidden_dim=8, mlp_dim=16, num_classes=3):
    return VisionTransformer(TINY_SHAPE, num_classes, patch_size=4, num_layers=num_layers,
                             hidden_dim=hidden_dim, num_heads=2, mlp_dim=mlp_dim)


def _ancestry(family, seed=0):
    """A tiny ancestry with random weights everywhere, so equal means selected."""
    keras.utils.set_random_seed(seed)
    return randomize_weights(TINY_BUILDERS[family](3), seed=seed)


def _uniform(value, shape):
    index = [np.floor(np.arange(d) * a / d).astype(int) for d, a in zip(shape, value.shape)]
    return value[np.ix_(*index)]


@pytest.mark.parametrize("family", ["vit", "vgg"])
def test_same_width_descendant_gets_the_first_units(family):
    ancestry = _ancestry(family)
    before = [w.copy() for w in ancestry.get_weights()]
    learngene = klg.condense(ancestry, num_units=2, method="front")
    descendant = keras.models.clone_model(klg.inherit(learngene, n_layers=1, num_classes=4))
    head = {layer.name: _weights(layer) for layer in descendant.layers
            if layer.name.startswith("head_")}
    assert head

    assert select_weights(ancestry, descendant) is descendant

    unit = "transformer_block" if family == "vit" else "conv_block"
    pairs = [("inherited_stem", "stem"), (f"inherited_{unit}_0", f"{unit}_0"),
             (f"inherited_{unit}_1", f"{unit}_1"), ("fresh_0", f"{unit}_2")]
    for target, source in pairs:
        got, want = _weights(descendant.get_layer(target)), _weights(ancestry.get_layer(source))
        assert len(got) == len(want) > 0
        for g, w in zip(got, want):  # the vgg's fresh unit is 4 wide, conv_block_2 is 8
            np.testing.assert_array_equal(g, w if g.shape == w.shape else _uniform(w, g.shape))
    for name, weights in head.items():
        for g, w in zip(_weights(descendant.get_layer(name)), weights):
            np.testing.assert_array_equal(g, w)
    for a, b in zip(before, ancestry.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_narrower_descendant_gets_uniformly_selected_elements():
    keras.utils.set_random_seed(0)
    ancestry = randomize_weights(_vit(num_layers=4, hidden_dim=8, mlp_dim=16))
    before = [w.copy() for w in ancestry.get_weights()]
    descendant = _vit(num_layers=2, hidden_dim=4, mlp_dim=8, num_classes=5)
    head = [w.copy() for w in descendant.get_layer("head_dense").get_weights()]

    select_weights(ancestry, descendant)

    # the first MLP kernel: (8, 16) -> (4, 8), rows 0, 2, 4, 6 and every other column
    mlp = [w for w in ancestry.get_layer("transformer_block_1").weights if w.shape == (8, 16)]
    small = [w for w in descendant.get_layer("transformer_block_1").weights if w.shape == (4, 8)]
    assert len(mlp) == len(small) == 1
    want = keras.ops.convert_to_numpy(mlp[0])[np.ix_([0, 2, 4, 6], np.arange(0, 16, 2))]
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(small[0]), want)
    # every other weight of the stem and the two blocks follows the same rule
    for name in ("stem", "transformer_block_0", "transformer_block_1"):
        for g, w in zip(_weights(descendant.get_layer(name)), _weights(ancestry.get_layer(name))):
            np.testing.assert_array_equal(g, _uniform(w, g.shape))
    for g, w in zip(descendant.get_layer("head_dense").get_weights(), head):
        np.testing.assert_array_equal(g, w)
    for a, b in zip(before, ancestry.get_weights()):
        np.testing.assert_array_equal(a, b)
    logits = descendant.predict(np.zeros((2,) + TINY_SHAPE, "float32"), verbose=0)
    assert logits.shape == (2, 5) and np.isfinite(logits).all()


def _einsum_model(equation, output_shape):
    inputs = keras.Input((4,))
    return keras.Model(inputs, keras.layers.EinsumDense(equation, output_shape)(inputs))


@pytest.mark.parametrize("case, match", [
    ("deeper", "descendant has 5 layers to initialise, the ancestry only 3"),
    ("wider", "wider than the ancestry"),
    ("other family", "'stem' \\(ConvBlock.*'stem' \\(PatchEmbedding.*same-family"),
    ("other layer", "residual_block_2.*same-depth-or-shallower"),
    ("rank", "ranks differ"),
])
def test_descendants_it_cannot_initialise(case, match):
    keras.utils.set_random_seed(0)
    if case == "deeper":
        ancestry, descendant = _vit(num_layers=2), _vit(num_layers=4)
    elif case == "wider":
        ancestry, descendant = _vit(hidden_dim=4, mlp_dim=8), _vit()
    elif case == "other family":
        ancestry, descendant = TINY_BUILDERS["vit"](), TINY_BUILDERS["vgg"]()
    elif case == "other layer":  # fresh_0 has no projection shortcut, residual_block_2 has
        ancestry = _ancestry("resnet")
        learngene = klg.condense(ancestry, num_units=2, method="front")
        descendant = klg.inherit(learngene, n_layers=1, num_classes=4)
    else:
        ancestry = _einsum_model("ab,bcd->acd", (2, 3))
        descendant = _einsum_model("ab,bc->ac", 3)
    before = [w.copy() for w in ancestry.get_weights()]
    with pytest.raises(ValueError, match=match):
        select_weights(ancestry, descendant)
    for a, b in zip(before, ancestry.get_weights()):
        np.testing.assert_array_equal(a, b)
