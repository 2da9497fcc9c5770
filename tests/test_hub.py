"""keras-hub backbones as ancestries (skipped without keras-hub).

Tiny random-initialised configs only: nothing here downloads a preset.
"""

import warnings

import keras
import numpy as np
import pytest

keras_hub = pytest.importorskip("keras_hub")

import keras_learngene as klg  # noqa: E402
from keras_learngene import plugins  # noqa: E402
from keras_learngene._condense import resolve_form  # noqa: E402

SHAPE = (16, 16, 3)
RNG = np.random.default_rng(0)
X = RNG.random((40,) + SHAPE, dtype=np.float32)
Y = np.arange(40) % 3


def numpy(x):
    return keras.ops.convert_to_numpy(x)


BACKBONES = {
    "vit": lambda: keras_hub.models.ViTBackbone(
        image_shape=SHAPE, patch_size=4, num_layers=3, num_heads=2, hidden_dim=8, mlp_dim=16),
    "resnet": lambda: keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[3], stackwise_num_filters=[64, 64],
        stackwise_num_blocks=[2, 1], stackwise_num_strides=[1, 2], block_type="basic_block",
        image_shape=SHAPE),
    "vgg": lambda: keras_hub.models.VGGBackbone(
        stackwise_num_repeats=[1, 1, 2, 1], stackwise_num_filters=[4, 8, 8, 8],
        image_shape=SHAPE),
}
FORMS = {"vit": "keras_hub_vit", "resnet": "keras_hub_resnet", "vgg": "keras_hub_vgg"}
UNITS = {
    "vit": ["transformer_block_1", "transformer_block_2", "transformer_block_3"],
    "resnet": ["stack0_block0_unit", "stack0_block1_unit", "stack1_block0_unit"],
    "vgg": ["block2", "block3", "block4"],
}


@pytest.fixture(scope="module", params=sorted(BACKBONES))
def backbone(request):
    keras.utils.set_random_seed(0)
    return request.param, BACKBONES[request.param]()


def condense(model):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # random weights "look untrained"
        return klg.condense(model, (X, Y), method="front")  # the default k: 3 units


def train_one_step(model):
    model.compile(keras.optimizers.SGD(0.01),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    loss = model.train_on_batch(X[:8], Y[:8])
    assert np.isfinite(float(np.asarray(loss).ravel()[0]))


def test_forms_are_registered_before_functional():
    names = plugins.registry("forms").in_order()
    assert {"keras_hub_vit", "keras_hub_resnet", "keras_hub_vgg"} <= set(names)
    assert names.index("keras_hub_vit") < names.index("functional")


def test_backbone_is_cut_into_its_blocks(backbone):
    family, model = backbone
    form = resolve_form(model)
    assert form.name == FORMS[family]
    anatomy = form.split(model)
    assert form.split(model) is anatomy
    assert [u.name for u in anatomy.units] == UNITS[family]
    features = form.feature_model(model, anatomy)(X[:4])
    assert len(features) == 3 and all(f.shape[0] == 4 and len(f.shape) == 2 for f in features)
    assert all(np.isfinite(numpy(f)).all() for f in features)


def test_copies_compute_what_the_backbone_computes(backbone):
    family, model = backbone
    form = resolve_form(model)
    anatomy = form.split(model)
    stem = form.copy_unit(anatomy.stem, anatomy.input_shape, "stem_copy")
    x = stem(X[:4])
    for unit, inputs, outputs in zip(anatomy.units, anatomy.unit_inputs, anatomy.unit_outputs):
        copy = form.copy_unit(unit, tuple(inputs.shape[1:]), f"{unit.name}_copy")
        expected = keras.Model(model.inputs[0], outputs)(X[:4])
        x = copy(x)
        np.testing.assert_allclose(numpy(x), numpy(expected), rtol=1e-4, atol=1e-5)
    assert not {id(v) for v in copy.weights} & {id(v) for v in model.weights}


def test_condense_inherit_train(backbone, tmp_path):
    family, model = backbone
    learngene = condense(model)
    assert learngene.form == FORMS[family]
    assert learngene.provenance["source_names"] == UNITS[family]
    path = str(tmp_path / "learngene.keras")
    learngene.save(path)
    loaded = klg.Learngene.load(path)  # standard and library layers only: no keras-hub class
    for a, b in zip(loaded.get_weights(), learngene.get_weights()):
        np.testing.assert_array_equal(a, b)
    descendant = klg.inherit(loaded, 1, num_classes=3)
    assert tuple(descendant.output.shape) == (None, 3)
    assert sum(layer.name.startswith("fresh_") for layer in descendant.layers) == 1
    train_one_step(descendant)


def test_vit_descendant_takes_another_image_size():
    keras.utils.set_random_seed(0)
    learngene = condense(BACKBONES["vit"]())
    descendant = klg.inherit(learngene, 0, num_classes=3, input_shape=(24, 24, 3))
    assert descendant(np.zeros((2, 24, 24, 3), "float32")).shape == (2, 3)


def test_a_backbone_wrapped_with_a_head_is_an_ancestry():
    keras.utils.set_random_seed(0)
    backbone = BACKBONES["vit"]()
    inputs = keras.Input(SHAPE)
    x = keras.layers.GlobalAveragePooling1D()(backbone(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3, name="logits")(x))
    form = resolve_form(model)
    assert form.name == "keras_hub_vit"
    assert [layer.name for layer in form.split(model).head][-1] == "logits"
    klg.training.train(model, X, Y, epochs=1, batch_size=8, augment=False, verbose=0)
    train_one_step(klg.inherit(condense(model), 1, num_classes=3))

    classifier = keras_hub.models.ImageClassifier(backbone=BACKBONES["resnet"](), num_classes=3)
    assert resolve_form(classifier).name == "keras_hub_resnet"
    train_one_step(klg.inherit(condense(classifier), 1, num_classes=3))


def test_other_models_are_not_matched():
    vit = klg.models.VisionTransformer((8, 8, 1), 3, patch_size=4, num_layers=2, hidden_dim=8,
                                       num_heads=2, mlp_dim=8)
    for name in FORMS.values():
        form = plugins.get_form(name)
        assert not form.matches(vit)
        with pytest.raises(ValueError, match="needs a keras_hub.models"):
            form.split(vit)
