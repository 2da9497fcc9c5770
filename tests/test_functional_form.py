"""Tests for the generic Functional form (`form="functional"`).

keras.applications models are built once per module (weights=None, 32x32
inputs) and shared by the tests that read them; nothing here trains more than
one step.
"""

import keras
import numpy as np
import pytest
from keras import layers

from keras_learngene.forms._functional import FunctionalForm
from keras_learngene.forms._library import CNNForm, ViTForm
from keras_learngene.models import ResNet, TransformerBlock, VGGNet, VisionTransformer

FORM = FunctionalForm()
APPLICATIONS = ["ResNet50V2", "MobileNetV2", "EfficientNetB0"]


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def images(shape=(16, 16, 3), batch=2, seed=0):
    return np.random.default_rng(seed).random((batch,) + shape, dtype=np.float32)


def residual_backbone(inputs, blocks=3, width=8):
    """conv-BN-ReLU stem, then `blocks` residual blocks (default Keras names)."""
    x = layers.Conv2D(width, 3, padding="same")(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    for _ in range(blocks):
        y = layers.Conv2D(width, 3, padding="same")(x)
        y = layers.BatchNormalization()(y)
        y = layers.ReLU()(y)
        y = layers.Conv2D(width, 3, padding="same")(y)
        x = layers.ReLU()(x + y)  # the shortcut keeps x alive: no cut inside the block
    return x


def residual_model(blocks=3, num_classes=5):
    inputs = keras.Input((16, 16, 3))
    x = layers.GlobalAveragePooling2D()(residual_backbone(inputs, blocks))
    return keras.Model(inputs, layers.Dense(num_classes)(x), name="residual")


def run(model, x):
    """`model` on `x`, compiled (on JAX one XLA program instead of one per op)."""
    return model.predict(x, batch_size=len(x), verbose=0)


def composed(anatomy, inputs, head=False):
    """The tensors of `inputs` run through stem, each unit (and the original
    head layers): the pieces put back together."""
    y, outputs = anatomy.stem(inputs), []
    for unit in anatomy.units:
        y = unit(y)
        outputs.append(y)
    for layer in anatomy.head if head else []:
        y = layer(y)
    return outputs, y


def total_params(anatomy):
    return (anatomy.stem.count_params() + sum(u.count_params() for u in anatomy.units)
            + sum(layer.count_params() for layer in anatomy.head))


@pytest.fixture(scope="module", params=APPLICATIONS)
def application(request):
    model = getattr(keras.applications, request.param)(
        weights=None, input_shape=(32, 32, 3), classes=10
    )
    return model, FORM.split(model)


# ---- a hand-made residual model ------------------------------------------------------


def test_residual_model_is_cut_between_blocks():
    model = residual_model(blocks=3)
    assert FORM.matches(model)
    anatomy = FORM.split(model)
    assert len(anatomy.units) == 3
    assert [type(op).__name__ for op in anatomy.stem.operations[1:]] == [
        "Conv2D", "BatchNormalization", "ReLU"
    ]
    for unit in anatomy.units:  # each unit is a whole block: 2 convs, the add, the ReLU
        kinds = sorted(type(op).__name__ for op in unit.operations[1:])
        assert kinds == sorted(["Conv2D", "BatchNormalization", "ReLU", "Conv2D", "Add", "ReLU"])
        assert len(unit.inputs) == 1 and len(unit.outputs) == 1
    assert [layer.name for layer in anatomy.head] == [
        model.layers[-2].name, model.layers[-1].name
    ]
    assert total_params(anatomy) == model.count_params()
    inputs = keras.Input((16, 16, 3))
    _, logits = composed(anatomy, inputs, head=True)
    x = images()
    np.testing.assert_allclose(run(keras.Model(inputs, logits), x), run(model, x),
                               rtol=1e-6, atol=1e-6)


def test_units_share_the_original_weights():
    model = residual_model(blocks=2)
    anatomy = FORM.split(model)
    model_variables = {id(v) for v in model.weights}
    for unit in [anatomy.stem] + anatomy.units:
        assert {id(v) for v in unit.weights} <= model_variables


def test_split_is_cached_and_names_are_unique():
    model = residual_model(blocks=3)
    anatomy = FORM.split(model)
    assert FORM.split(model) is anatomy
    names = [anatomy.stem.name] + [u.name for u in anatomy.units]
    assert len(set(names)) == len(names)
    assert names[0] == "stem" and all(name.endswith("_unit") for name in names[1:])
    rows = FORM.describe_units(model)
    assert [r["name"] for r in rows] == names[1:]
    assert rows[0]["input_shape"] == [None, 16, 16, 8]


def test_feature_model_gives_one_matrix_per_unit():
    model = residual_model(blocks=3)
    features = FORM.feature_model(model)(images(batch=4))
    assert len(features) == 3
    assert all(tuple(f.shape) == (4, 8) for f in features)


def test_fresh_and_copied_units():
    model = residual_model(blocks=2)
    anatomy = FORM.split(model)
    like, shape = anatomy.units[0], tuple(anatomy.unit_inputs[0].shape[1:])
    fresh = FORM.fresh_unit(like, shape, "fresh_unit")
    copy = FORM.copy_unit(like, shape, "copy_unit")
    assert fresh.name == "fresh_unit" and copy.name == "copy_unit"
    old, new = like.get_weights(), fresh.get_weights()
    assert [w.shape for w in new] == [w.shape for w in old]
    kernels = [(a, b) for a, b in zip(old, new) if a.ndim > 1]
    assert kernels and all(not np.allclose(a, b) for a, b in kernels)
    assert all(np.array_equal(a, b) for a, b in zip(old, copy.get_weights()))
    assert not {id(v) for v in fresh.weights} & {id(v) for v in like.weights}
    x = images((16, 16, 8))
    np.testing.assert_allclose(numpy(copy(x)), numpy(like(x)), rtol=1e-6, atol=1e-6)


def test_assemble_with_new_head_trains_one_step():
    model = residual_model(blocks=2)
    anatomy = FORM.split(model)
    fresh = FORM.fresh_unit(anatomy.units[-1], (16, 16, 8), "fresh_unit")
    descendant = FORM.assemble((16, 16, 3), anatomy.stem, anatomy.units + [fresh],
                               num_classes=4, name="descendant")
    assert tuple(descendant.output.shape) == (None, 4)
    descendant.compile(keras.optimizers.SGD(0.01),
                       keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    loss = descendant.train_on_batch(images(batch=4), np.array([0, 1, 2, 3]))
    assert np.isfinite(float(np.asarray(loss).ravel()[0]))


# ---- nested models ------------------------------------------------------------------


def test_nested_backbone_is_inlined():
    inputs = keras.Input((16, 16, 3))
    backbone = keras.Model(inputs, residual_backbone(inputs, blocks=3), name="backbone")
    sequential = keras.Sequential(
        [keras.Input((16, 16, 3)), backbone, layers.GlobalAveragePooling2D(), layers.Dense(3)]
    )
    outer_inputs = keras.Input((16, 16, 3))
    features = backbone(outer_inputs, training=False)
    functional = keras.Model(outer_inputs, layers.Dense(3)(layers.Flatten()(features)))
    x = images()
    for model in (sequential, functional):
        assert FORM.matches(model)
        anatomy = FORM.split(model)
        assert len(anatomy.units) == 3
        assert total_params(anatomy) == model.count_params()
        _, last = composed(anatomy, inputs)
        np.testing.assert_allclose(run(keras.Model(inputs, last), x), run(backbone, x),
                                   rtol=1e-6, atol=1e-6)
        outputs = FORM.feature_model(model, anatomy)(x)
        assert [tuple(f.shape) for f in outputs] == [(2, 8)] * 3


def test_sequential_models():
    mlp = keras.Sequential([keras.Input((20,))] + [layers.Dense(8) for _ in range(3)]
                           + [layers.Dense(3)])
    anatomy = FORM.split(mlp)  # a body of vectors: the last layer alone is the head
    assert anatomy.stem is mlp.layers[0]
    assert anatomy.units == mlp.layers[1:3] and anatomy.head == mlp.layers[3:]

    cnn = keras.Sequential([
        keras.Input((8, 8, 3)),
        layers.Conv2D(4, 3), layers.BatchNormalization(), layers.ReLU(),
        layers.Conv2D(4, 3), layers.BatchNormalization(), layers.ReLU(),
        layers.Conv2D(4, 1), layers.GlobalAveragePooling2D(), layers.Dense(2),
    ])
    anatomy = FORM.split(cnn)  # conv + BN + ReLU is one unit
    assert [type(op).__name__ for op in anatomy.units[0].operations[1:]] == [
        "Conv2D", "BatchNormalization", "ReLU"
    ]
    assert anatomy.units[1] is cnn.layers[6]  # the last conv alone: the layer itself
    assert [type(layer).__name__ for layer in anatomy.head] == ["GlobalAveragePooling2D", "Dense"]


# ---- bad inputs ---------------------------------------------------------------------


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.dense = layers.Dense(2)

    def call(self, x):
        return self.dense(x)


def test_models_that_cannot_be_cut():
    a, b = keras.Input((4,)), keras.Input((4,))
    two_inputs = keras.Model([a, b], layers.Dense(2)(layers.Concatenate()([a, b])))
    assert not FORM.matches(two_inputs)
    with pytest.raises(ValueError, match="2 inputs and 1 outputs"):
        FORM.split(two_inputs)

    subclassed = Subclassed()
    subclassed(np.zeros((1, 4), "float32"))
    assert not FORM.matches(subclassed)
    with pytest.raises(ValueError, match="subclassed model with no Functional graph"):
        FORM.split(subclassed)

    with pytest.raises(ValueError, match="is not built"):
        FORM.split(keras.Sequential([layers.Dense(2)]))

    inputs = keras.Input((8, 8, 3))  # two branches from the input to the head: no cut
    left = layers.Conv2D(4, 3, padding="same")(inputs)
    right = layers.Conv2D(4, 1)(inputs)
    pooled = layers.GlobalAveragePooling2D()(layers.Add()([left, right]))
    with pytest.raises(ValueError, match="no cut point"):
        FORM.split(keras.Model(inputs, layers.Dense(2)(pooled)))


# ---- the library's own ancestries ---------------------------------------------------


def test_library_vit_units_are_its_transformer_blocks():
    model = VisionTransformer((16, 16, 1), num_classes=3, num_layers=8, hidden_dim=16,
                              num_heads=2, mlp_dim=16)
    anatomy = FORM.split(model)
    assert len(anatomy.units) == 8
    assert all(isinstance(u, TransformerBlock) for u in anatomy.units)
    expected = ViTForm().split(model)
    assert all(a is b for a, b in zip(anatomy.units, expected.units))
    assert anatomy.stem is expected.stem
    assert [layer.name for layer in anatomy.head] == ["head_norm", "head_pool", "head_dense"]


@pytest.mark.parametrize(
    "builder", [lambda **kw: VGGNet(pool_after=(1,), **kw), ResNet], ids=["vgg", "resnet"]
)
def test_library_cnn_units_are_its_blocks(builder):
    model = builder(image_shape=(16, 16, 1), num_classes=3, filters=(8, 8, 16), stem_filters=8)
    anatomy, expected = FORM.split(model), CNNForm().split(model)
    assert anatomy.stem is expected.stem
    assert [u.name for u in anatomy.units] == [u.name for u in expected.units]
    assert all(a is b for a, b in zip(anatomy.units, expected.units))


# ---- keras.applications -------------------------------------------------------------


def test_application_units_reproduce_the_model(application):
    model, anatomy = application
    assert FORM.matches(model)
    assert len(anatomy.units) > 5
    for unit in anatomy.units:
        assert len(unit.inputs) == 1 and len(unit.outputs) == 1
        assert unit.name.endswith("_unit")
    assert total_params(anatomy) == model.count_params()
    # every unit's output, run through the pieces, equals the original graph's
    # (pooled by feature_model, and the last one whole): one compiled probe
    tapped = FORM.feature_model(model, anatomy).outputs
    assert [tuple(t.shape) for t in tapped] == [(None, t.shape[-1]) for t in anatomy.unit_outputs]
    inputs = model.inputs[0]
    outputs, last = composed(anatomy, inputs)
    pooled = [keras.ops.mean(y, axis=(1, 2)) for y in outputs]
    probe = keras.Model(inputs, tapped + pooled + [anatomy.unit_outputs[-1], last])
    results = run(probe, images((32, 32, 3)))
    n = len(anatomy.units)
    assert [r.shape for r in results[:n]] == [(2, t.shape[-1]) for t in anatomy.unit_outputs]
    for original, pieces in zip(results[:n], results[n:2 * n]):
        np.testing.assert_allclose(pieces, original, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(results[-1], results[-2], rtol=1e-4, atol=1e-5)


def test_application_units_are_named_after_blocks(application):
    model, anatomy = application
    names = [u.name for u in anatomy.units]
    first = {"resnet50v2": "conv2_block1_unit", "efficientnetb0": "block1a_unit"}
    if model.name in first:
        assert names[0] == first[model.name]
    else:  # MobileNetV2
        assert names[:3] == ["expanded_conv_unit", "block_1_unit", "block_2_unit"]
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("application", ["ResNet50V2"], indirect=True)
def test_resnet50v2_block_is_a_stackable_unit(application):
    model, anatomy = application
    block = anatomy.units[1]  # conv2_block2: an identity residual block, 8x8x256
    assert block.name == "conv2_block2_unit"
    shape = tuple(anatomy.unit_inputs[1].shape[1:])
    out = block(keras.Input(shape))
    assert tuple(out.shape) == (None,) + shape
    fresh = FORM.fresh_unit(block, shape, "fresh_block")
    kernels = [(a, b) for a, b in zip(block.get_weights(), fresh.get_weights()) if a.ndim > 1]
    assert all(a.shape == b.shape and not np.allclose(a, b) for a, b in kernels)
    descendant = FORM.assemble((32, 32, 3), anatomy.stem, anatomy.units[:2] + [fresh],
                               num_classes=7)
    assert tuple(descendant.output.shape) == (None, 7)
    descendant.compile(keras.optimizers.SGD(0.01),
                       keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    loss = descendant.train_on_batch(images((32, 32, 3)), np.array([0, 6]))
    assert np.isfinite(float(np.asarray(loss).ravel()[0]))
    # units take other image sizes too (their spatial axes are free), not other channels
    assert tuple(anatomy.stem(images((64, 64, 3), batch=1)).shape) == (1, 16, 16, 64)
    assert FORM.adapt_stem(anatomy.stem, (64, 64, 3)) is anatomy.stem
    with pytest.raises(ValueError, match="takes inputs of shape"):
        FORM.adapt_stem(anatomy.stem, (32, 32, 1))


# ---- condense and inherit through the generic form ----------------------------------


@pytest.mark.parametrize("application, method, n_layers", [("MobileNetV2", "auto", 0),
                                                           ("ResNet50V2", "front", 1)],
                         indirect=["application"])
def test_application_learngene_and_descendant(application, method, n_layers, tmp_path):
    import keras_learngene as klg

    model, anatomy = application
    rng = np.random.default_rng(0)
    x = rng.random((48, 32, 32, 3), dtype=np.float32)
    y = np.arange(48) % 3
    with pytest.warns(UserWarning, match="looks untrained"):  # weights=None
        learngene = klg.condense(model, (x, y), num_units=2, method=method,
                                 **({"pseudo_epochs": 1} if method == "auto" else {}))
    assert learngene.form == "functional"
    p = learngene.provenance
    if method == "auto":
        assert np.asarray(p["matrix"]).shape == (len(anatomy.units), 2)
    else:
        assert p["source_units"] == [0, 1]
    path = str(tmp_path / "lg.keras")
    learngene.save(path)
    loaded = klg.Learngene.load(path)
    for a, b in zip(loaded.get_weights(), learngene.get_weights()):
        np.testing.assert_array_equal(a, b)
    # (fresh units must keep the shape: ResNet50V2's second block does)
    descendant = klg.inherit(loaded, n_layers, num_classes=4)
    assert sum(layer.name.startswith("fresh_") for layer in descendant.layers) == n_layers
    inherited = klg.inherited_layers(descendant)
    assert sorted(v for v in inherited.values() if v != "stem") == sorted(p["source_names"])
    descendant.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    loss = descendant.train_on_batch(x[:4], y[:4])
    assert np.isfinite(float(np.asarray(loss).ravel()[0]))


def test_generic_form_cannot_bridge_stages():
    import keras_learngene as klg

    model = keras.applications.MobileNetV2(weights=None, input_shape=(32, 32, 3), classes=3,
                                           alpha=0.35)
    with pytest.warns(UserWarning, match="looks untrained"):
        with pytest.raises(ValueError, match="No chain of 2 units fits together"):
            klg.condense(model, num_units=2, method="back")
