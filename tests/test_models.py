"""Ancestry builders, their layers and presets (`keras_learngene.models`).

Every preset of `models.PRESETS` and every tiny builder of conftest is checked
(timm style: a new preset is tested the moment it is added). Presets are built
on the tiny 8x8 images of conftest, except for the output-shape check at their
real 28x28 size.
"""

import inspect

import keras
import numpy as np
import pytest
from conftest import TINY_BUILDERS, TINY_SHAPE, backend, tiny_data

from keras_learngene import models
from keras_learngene.models import (
    ConvBlock,
    PatchEmbedding,
    ResidualBlock,
    ResNet,
    TokenPooling,
    TransformerBlock,
    VGGNet,
    VisionTransformer,
)

NUM_CLASSES = 3

# The args each tiny builder of conftest passes (kept in step with TINY_BUILDERS).
TINY_ARGS = {
    "vit": (VisionTransformer, dict(patch_size=4, num_layers=4, hidden_dim=8, num_heads=2,
                                    mlp_dim=16)),
    "vgg": (VGGNet, dict(filters=(4, 4, 8, 8), pool_after=(1,), stem_filters=4)),
    "resnet": (ResNet, dict(filters=(4, 4, 8, 8), stem_filters=4)),
}

# builder class -> (unit layer class, unit name prefix, stem layer class)
FAMILY = {
    VisionTransformer: (TransformerBlock, "transformer_block", PatchEmbedding),
    VGGNet: (ConvBlock, "conv_block", ConvBlock),
    ResNet: (ResidualBlock, "residual_block", ConvBlock),
}

KINDS = [f"preset:{name}" for name in sorted(models.PRESETS)] + [
    f"tiny:{name}" for name in sorted(TINY_BUILDERS)
]


def spec(kind):
    """`(builder class, the args it was called with)` for a model kind."""
    source, name = kind.split(":")
    if source == "preset":
        builder, args, _ = models.PRESETS[name]
    else:
        builder, args = TINY_ARGS[name]
    return builder, {"image_shape": TINY_SHAPE, "num_classes": NUM_CLASSES, **args}


def build(kind):
    source, name = kind.split(":")
    if source == "preset":
        return models.build_preset(name, image_shape=TINY_SHAPE, num_classes=NUM_CLASSES)
    return TINY_BUILDERS[name](NUM_CLASSES)


def num_units(builder, args):
    return args["num_layers"] if builder is VisionTransformer else len(args["filters"])


def init_args(builder):
    """The builder's `__init__` parameters with their defaults (no `**kwargs`)."""
    params = inspect.signature(builder.__init__).parameters.values()
    return {p.name: p.default for p in params
            if p.name != "self" and p.kind is not p.VAR_KEYWORD}


def as_config_value(value):
    return list(value) if isinstance(value, tuple) else value


def architecture(model):
    """Everything that defines the architecture: layer names, classes and
    configs, and the weight shapes."""
    return (
        [(layer.name, type(layer).__name__, layer.get_config()) for layer in model.layers],
        [(w.path, tuple(w.shape)) for w in model.weights],
    )


def images(n=4, seed=0, shape=TINY_SHAPE):
    return np.random.default_rng(seed).uniform(0, 1, size=(n,) + shape).astype("float32")


def numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


@pytest.fixture(scope="module", params=KINDS)
def kind(request):
    return request.param


@pytest.fixture(scope="module")
def model(kind, model_zoo):
    """The model of each kind (shared, random weights: do not change it)."""
    assert set(KINDS) <= set(model_zoo)  # plus keras-hub backbones where installed
    return model_zoo[kind]


# ------------------------------------------------------------------ presets


def test_presets_are_listed_with_descriptions():
    listed = models.list_presets()
    assert set(listed) == set(models.PRESETS) >= {"vit_tiny", "vit_small", "vgg_small",
                                                  "resnet_small"}
    assert all(isinstance(text, str) and text for text in listed.values())
    for builder, args, _ in models.PRESETS.values():
        assert builder in FAMILY
        assert set(args) <= set(init_args(builder)), "a preset passes an unknown argument"


# Building at 28x28 traces every layer (seconds for the 8-block ViTs on JAX); the
# ViT presets differ only in widths, and `test_vit_token_count` covers 28x28 ViTs.
REAL_SIZE = [name for name, (builder, _, _) in sorted(models.PRESETS.items())
             if builder is not VisionTransformer] + ["vit_tiny"]


@pytest.mark.parametrize("name", REAL_SIZE)
def test_preset_output_shape_at_real_size(name):
    model = models.build_preset(name, num_classes=7)  # the default 28x28x1 images
    assert tuple(model.inputs[0].shape) == (None, 28, 28, 1)
    assert tuple(model.output_shape) == (None, 7)


def test_build_preset_overrides_the_preset_args():
    model = models.build_preset("vit_tiny", image_shape=TINY_SHAPE, num_classes=2, num_layers=3)
    assert model.num_layers == 3 and model.hidden_dim == models.PRESETS["vit_tiny"][1][
        "hidden_dim"]
    assert [layer.name for layer in model.layers if layer.name.startswith("transformer")] == [
        "transformer_block_0", "transformer_block_1", "transformer_block_2"]


# ------------------------------------------------------------ every model


def test_output_shape(model):
    assert tuple(model.output_shape) == (None, NUM_CLASSES)
    out = numpy(model(images(4), training=False))
    assert out.shape == (4, NUM_CLASSES)
    assert np.all(np.isfinite(out))


def test_units_are_named_and_counted(kind, model):
    builder, args = spec(kind)
    unit_class, prefix, stem_class = FAMILY[builder]
    count = num_units(builder, args)
    names = [layer.name for layer in model.layers]

    assert type(model) is builder
    assert names[0] == "images" and names[1] == "stem"
    assert names[2:2 + count] == [f"{prefix}_{i}" for i in range(count)]
    head = names[2 + count:]
    assert head and all(name.startswith("head_") for name in head)
    assert head[-1] == "head_dense"

    assert isinstance(model.get_layer("stem"), stem_class)
    for i in range(count):
        assert isinstance(model.get_layer(f"{prefix}_{i}"), unit_class)
    assert model.get_layer("head_dense").units == NUM_CLASSES
    # one chain: each unit takes the previous unit's output (the forms rely on it)
    previous = model.get_layer("stem")
    for i in range(count):
        unit = model.get_layer(f"{prefix}_{i}")
        assert unit.input is previous.output
        previous = unit


def test_get_config_is_exactly_the_init_args(kind, model):
    builder, args = spec(kind)
    expected = {name: as_config_value(value) for name, value in init_args(builder).items()}
    expected.update({name: as_config_value(value) for name, value in args.items()})
    expected.update(name=model.name, trainable=True)
    config = model.get_config()
    assert config == expected
    assert set(config) == set(init_args(builder)) | {"name", "trainable"}


def test_from_config_rebuilds_the_same_architecture(model):
    config = model.get_config()
    rebuilt = type(model).from_config(config)
    assert type(rebuilt) is type(model)
    assert rebuilt.get_config() == config
    assert architecture(rebuilt) == architecture(model)
    assert rebuilt.count_params() == model.count_params()


def test_keras_file_round_trip(kind, model, tmp_path):
    x = images(4, seed=1)
    expected = numpy(model(x, training=False))

    path = tmp_path / f"{kind.replace(':', '_')}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)  # safe mode on: only registered classes

    assert type(loaded) is type(model)
    assert loaded.get_config() == model.get_config()
    assert architecture(loaded) == architecture(model)
    for a, b in zip(loaded.weights, model.weights):
        np.testing.assert_array_equal(numpy(a), numpy(b), err_msg=a.path)
    np.testing.assert_allclose(numpy(loaded(x, training=False)), expected, atol=1e-6)


# Compiling a train step costs seconds per model (JAX, TensorFlow): the tiny
# models cover the three builder classes, the shipped ancestry's preset the rest.
FIT_KINDS = [f"tiny:{name}" for name in sorted(TINY_BUILDERS)] + ["preset:vit_tiny"]


@pytest.mark.parametrize("kind", FIT_KINDS)
def test_one_fit_step_changes_weights(kind):
    keras.utils.set_random_seed(2)
    model = build(kind)
    builder, args = spec(kind)
    _, prefix, _ = FAMILY[builder]
    x, y = tiny_data(n=24)
    before = {w.path: numpy(w).copy() for w in model.weights}

    # eager is faster for one step, except on JAX (op-by-op dispatch compiles every op)
    model.compile(optimizer=keras.optimizers.SGD(0.1), run_eagerly=backend() != "jax",
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    history = model.fit(x, keras.utils.to_categorical(y, NUM_CLASSES), batch_size=len(x),
                        epochs=1, shuffle=False, verbose=0)
    assert np.isfinite(history.history["loss"][0])

    def changed(layer, trainable=True):
        weights = layer.trainable_weights if trainable else layer.non_trainable_weights
        return [w.path for w in weights
                if np.max(np.abs(numpy(w) - before[w.path])) > 1e-6]

    # the stem, every unit and the head learn in a single step
    for name in ["stem", "head_dense"] + [f"{prefix}_{i}" for i in
                                         range(num_units(builder, args))]:
        assert changed(model.get_layer(name)), f"no trainable weight of {name!r} changed"
    # batch norm statistics move in training mode (the CNNs have them)
    if builder is not VisionTransformer:
        assert changed(model.get_layer("stem"), trainable=False)
    if builder is not ResNet:  # (a ResNet's zero-initialised residual branches start later)
        # every weight moves, except attention key biases, whose gradient is exactly 0
        # (softmax ignores a shift of every logit by the same q . b_k)
        expected = [w.path for w in model.trainable_weights
                    if not w.path.endswith("attention/key/bias")]
        assert changed(model) == expected


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize("builder", [VisionTransformer, VGGNet, ResNet])
@pytest.mark.parametrize("bad", [(28, 28), (28, 28, 0), (28.0, 28, 1), (28, 28, 1, 1)])
def test_bad_image_shape_is_a_value_error(builder, bad):
    with pytest.raises(ValueError, match=r"image_shape must be \(height, width, channels\)") as e:
        builder(image_shape=bad, num_classes=3)
    assert repr(bad) in str(e.value)


def test_bad_image_shape_through_build_preset():
    with pytest.raises(ValueError, match="image_shape must be"):
        models.build_preset("vgg_small", image_shape=(28, 28))


@pytest.mark.parametrize("pool_after, bad", [((1, 4),  [4]), ((0, 7, -1), [7, -1])])
def test_pool_after_out_of_range_is_a_value_error(pool_after, bad):
    with pytest.raises(ValueError) as e:
        VGGNet(TINY_SHAPE, 3, filters=(4, 4, 8, 8), pool_after=pool_after, stem_filters=4)
    message = str(e.value)
    assert f"pool_after={pool_after!r}" in message
    assert f"units {bad}" in message and "there are 4 units (0..3)" in message


def test_unknown_preset_is_a_value_error_listing_the_presets():
    with pytest.raises(ValueError, match="Unknown preset 'vit_huge'") as e:
        models.build_preset("vit_huge")
    for name in models.PRESETS:
        assert name in str(e.value)


@pytest.mark.parametrize("size", [(10, 10), (8, 10), (6, 8)])
def test_patch_embedding_needs_divisible_image_size(size):
    layer = PatchEmbedding(patch_size=4, hidden_dim=8)
    with pytest.raises(ValueError, match=rf"image size {size[0]}x{size[1]} is not a multiple "
                                         r"of patch_size=4"):
        layer(np.zeros((1, *size, 1), "float32"))


def test_vit_with_indivisible_image_size_fails_clearly():
    with pytest.raises(ValueError, match=r"10x10 is not a multiple of patch_size=4"):
        VisionTransformer((10, 10, 1), 3, patch_size=4, num_layers=1, hidden_dim=8,
                          num_heads=2, mlp_dim=8)


def test_transformer_block_needs_width_divisible_by_heads():
    with pytest.raises(ValueError, match=r"width 6 is not divisible by num_heads=4"):
        TransformerBlock(num_heads=4, mlp_dim=8)(np.zeros((1, 3, 6), "float32"))


def test_token_pooling_rejects_unknown_mode():
    with pytest.raises(ValueError, match=r"mode must be 'class' or 'mean', got 'max'"):
        TokenPooling("max")


# ------------------------------------------------------------------ layers


@pytest.mark.parametrize("use_class_token, tokens", [(True, 5), (False, 4)])
def test_patch_embedding_token_count(use_class_token, tokens):
    layer = PatchEmbedding(patch_size=4, hidden_dim=8, use_class_token=use_class_token)
    out = numpy(layer(images(3)))
    assert out.shape == (3, tokens, 8)
    assert tuple(layer.compute_output_shape((None, 8, 8, 1))) == (None, tokens, 8)
    assert tuple(layer.position_embedding.shape) == (1, tokens, 8)
    assert layer.grid == (2, 2)


def test_patch_embedding_non_square_grid():
    layer = PatchEmbedding(patch_size=4, hidden_dim=8)
    assert numpy(layer(np.zeros((2, 8, 12, 1), "float32"))).shape == (2, 2 * 3 + 1, 8)


def test_patch_embedding_class_token_is_input_independent():
    layer = PatchEmbedding(patch_size=4, hidden_dim=8, use_class_token=True)
    out = numpy(layer(images(3)))
    position = numpy(layer.position_embedding)[0]
    expected = numpy(layer.class_token)[0, 0] + position[0]
    np.testing.assert_allclose(out[:, 0], np.broadcast_to(expected, (3, 8)), atol=1e-6)
    # the patch tokens do depend on the image
    assert not np.allclose(out[0, 1:], out[1, 1:])


@pytest.mark.parametrize("use_class_token, tokens", [(True, 50), (False, 49)])
def test_vit_token_count(use_class_token, tokens):
    model = VisionTransformer((28, 28, 1), 3, patch_size=4, num_layers=2, hidden_dim=8,
                              num_heads=2, mlp_dim=8, use_class_token=use_class_token)
    assert tuple(model.get_layer("stem").output.shape) == (None, tokens, 8)
    for i in range(2):
        assert tuple(model.get_layer(f"transformer_block_{i}").output.shape) == (
            None, tokens, 8)
    assert model.get_layer("head_pool").mode == ("class" if use_class_token else "mean")


def test_token_pooling_values():
    x = np.arange(2 * 3 * 4, dtype="float32").reshape(2, 3, 4)
    np.testing.assert_allclose(numpy(TokenPooling("class")(x)), x[:, 0])
    np.testing.assert_allclose(numpy(TokenPooling("mean")(x)), x.mean(axis=1), rtol=1e-6)


@pytest.mark.parametrize(
    "layer, input_shape, output_shape",
    [
        (ConvBlock(6), (2, 8, 8, 3), (2, 8, 8, 6)),
        (ConvBlock(6, pool=True), (2, 8, 8, 3), (2, 4, 4, 6)),
        (ResidualBlock(3), (2, 8, 8, 3), (2, 8, 8, 3)),
        (ResidualBlock(6, strides=2), (2, 8, 8, 3), (2, 4, 4, 6)),
        (TransformerBlock(2, 16), (2, 5, 8), (2, 5, 8)),
    ],
    ids=["conv", "conv_pool", "residual", "residual_down", "transformer"],
)
def test_unit_layer_shapes_and_config(layer, input_shape, output_shape):
    out = numpy(layer(np.ones(input_shape, "float32")))
    assert out.shape == output_shape
    assert tuple(layer.compute_output_shape(input_shape)) == output_shape
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def test_residual_block_shortcut_only_when_shape_changes():
    same, down = ResidualBlock(3), ResidualBlock(6, strides=2)
    same.build((None, 8, 8, 3))
    down.build((None, 8, 8, 3))
    assert same.shortcut is None
    assert down.shortcut is not None
    # the zero-initialised last norm makes a fresh block the identity (+ relu)
    x = np.abs(images(2, shape=(8, 8, 3)))
    np.testing.assert_allclose(numpy(same(x, training=False)), x, atol=1e-6)
