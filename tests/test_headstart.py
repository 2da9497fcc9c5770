"""Descendants that start from what they inherit: identity units, a fitted
head, batch norms aligned to the task, and per-layer learning rates."""

import keras
import numpy as np
import pytest
from conftest import TINY_BUILDERS, tiny_data, train_briefly

import keras_learngene as klg
from keras_learngene import plugins, strategies
from keras_learngene._headstart import align_batchnorm, fit_head, logistic_regression

GENERIC = [n for n in plugins.registry("strategies").names()
           if plugins.get_strategy(n).generic and n != "expand"]  # expand makes no fresh units


@pytest.fixture(scope="module")
def learngenes(data):
    out = {}
    for family, build in sorted(TINY_BUILDERS.items()):
        keras.utils.set_random_seed(0)
        ancestry = train_briefly(build(), *data, epochs=1)
        out[family] = klg.condense(ancestry, num_units=2, method="front")
    return out


def _body_features(model):
    """The output of a model's last unit (the input of the head's pooling)."""
    units = [layer for layer in model.layers
             if layer.name.startswith(("inherited_", "fresh_", "bridge_", "copy"))
             and layer.name != "inherited_stem"]
    return keras.Model(model.inputs, units[-1].output)


def _numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


@pytest.mark.parametrize("strategy", GENERIC)
@pytest.mark.parametrize("family", sorted(TINY_BUILDERS))
def test_identity_units_keep_the_learngene_features(learngenes, family, strategy, data):
    """Before training, a descendant whose new units are identity units
    computes exactly its learngene's features (inference mode)."""
    learngene = learngenes[family]
    x, _ = data
    descendant = klg.inherit(learngene, 3, num_classes=3, strategy=strategy,
                             fresh_init="identity", seed=3)
    assert sum(layer.name.startswith("fresh_") for layer in descendant.layers) == 3
    ours = _numpy(_body_features(descendant)(x, training=False))
    theirs = _numpy(learngene(x, training=False))
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5 * np.abs(theirs).max())
    # the paper's random units do change them
    random = klg.inherit(learngene, 3, num_classes=3, strategy=strategy, seed=3)
    changed = _numpy(_body_features(random)(x, training=False))
    assert family == "resnet" or np.abs(changed - theirs).max() > 1e-3  # zero-init residuals


def test_identity_transformer_block_is_exact_in_training_mode_too(learngenes, data):
    """A ViT identity unit's residual branches output zero in either mode."""
    learngene = learngenes["vit"]
    form = plugins.get_form(learngene.form)
    like = learngene.learngene_units[-1]
    shape = tuple(like.output.shape[1:])
    unit = form.identity_unit(like, shape, "fresh_0")
    tokens = np.random.default_rng(0).normal(size=(4,) + shape).astype("float32")
    np.testing.assert_allclose(_numpy(unit(tokens, training=True)), tokens, atol=1e-6)
    assert np.abs(_numpy(unit.mlp_in.kernel)).max() > 0  # the rest stays random


def test_a_form_without_identity_units_refuses_by_name(data):
    x, y = data
    inputs = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(4, 3, padding="same", name="c1")(inputs)
    h = keras.layers.Conv2D(4, 3, padding="same", name="c2")(h)
    h = keras.layers.Conv2D(4, 3, padding="same", name="c3")(h)
    h = keras.layers.GlobalAveragePooling2D(name="pool")(h)
    model = keras.Model(inputs, keras.layers.Dense(3, name="logits")(h))
    learngene = klg.condense(model, num_units=2, method="front", form="functional")
    with pytest.raises(ValueError, match="no identity unit for .*fresh_init='random'"):
        klg.inherit(learngene, 1, num_classes=3, fresh_init="identity")


def test_identity_is_refused_where_the_strategy_makes_no_fresh_units(learngenes):
    class OwnUnits(strategies.Strategy):
        def __init__(self):
            super().__init__("own_units", strategies.stack)

        def build(self, form, learngene, n_layers, shape):  # no fresh_init
            return super().build(form, learngene, n_layers, shape)

    class Plugin:
        @klg.hookimpl
        def register_strategies(self, register):
            register("own_units", OwnUnits)

    name = plugins.register_plugin(Plugin(), name="own_units_plugin")
    try:
        with pytest.raises(ValueError, match="does not apply to strategy 'own_units'"):
            klg.inherit(learngenes["vit"], 1, num_classes=3, strategy="own_units",
                        fresh_init="identity")
    finally:
        plugins.unregister_plugin(name)
    with pytest.raises(ValueError, match="fresh_init='zeros'"):
        klg.inherit(learngenes["vit"], 1, num_classes=3, fresh_init="zeros")


def test_logistic_regression_matches_scikit_learn():
    sklearn = pytest.importorskip("sklearn.linear_model")
    rng = np.random.default_rng(0)
    f = rng.normal(size=(60, 7))
    y = (f[:, 0] + 0.5 * f[:, 1] > 0).astype(int) + (f[:, 2] > 1)
    w, b, _ = logistic_regression(f, y, 3, c=1.0)
    reference = sklearn.LogisticRegression(C=1.0, tol=1e-10, max_iter=10000).fit(f, y)
    np.testing.assert_allclose(w.T, reference.coef_, atol=1e-4)
    np.testing.assert_allclose(b - b.mean(), reference.intercept_ - reference.intercept_.mean(),
                               atol=1e-4)


@pytest.mark.parametrize("family", sorted(TINY_BUILDERS))
def test_fitted_head_is_the_reference_probe_at_step_0(learngenes, family):
    """The fitted head's step-0 predictions equal scikit-learn's logistic
    regression on the same (standardised) features."""
    sklearn = pytest.importorskip("sklearn.linear_model")
    x, y = tiny_data(60, classes=3, seed=1)
    x_test, y_test = tiny_data(90, classes=3, seed=2)
    descendant = klg.inherit(learngenes[family], 2, num_classes=3, fresh_init="identity")
    result = klg.head_start(descendant, x, y)
    head = descendant.get_layer("head_dense")
    features = keras.Model(descendant.inputs, head.input)
    f_train = _numpy(features.predict(x, verbose=0)).astype(np.float64)
    f_test = _numpy(features.predict(x_test, verbose=0)).astype(np.float64)
    mean, std = f_train.mean(0), f_train.std(0)
    std = np.where(std > 1e-6, std, 1.0)
    reference = sklearn.LogisticRegression(C=1.0, tol=1e-10, max_iter=10000).fit(
        (f_train - mean) / std, y)
    expected = reference.predict((f_test - mean) / std)
    logits = _numpy(descendant.predict(x_test, verbose=0))
    np.testing.assert_array_equal(np.argmax(logits, 1), expected)
    accuracy = klg.training.evaluate(descendant, x, y)
    assert result["train_accuracy"] == pytest.approx(accuracy)
    assert accuracy == pytest.approx(reference.score((f_train - mean) / std, y))
    assert accuracy > 0.4  # above chance (1/3) on features of a briefly trained ancestry


def test_align_batchnorm_keeps_inference_and_brings_training_mode_close(learngenes, data):
    x, _ = data
    descendant = klg.inherit(learngenes["vgg"], 2, num_classes=3, fresh_init="identity")
    before = _numpy(descendant(x, training=False))
    count = align_batchnorm(descendant, x)
    assert count >= 3  # the stem's, the units' and the identity units' batch norms
    after = _numpy(descendant(x, training=False))
    np.testing.assert_allclose(after, before, rtol=1e-4, atol=1e-4 * np.abs(before).max())
    body = _body_features(descendant)
    train_mode = _numpy(body(x, training=True))
    infer_mode = _numpy(body(x, training=False))
    np.testing.assert_allclose(train_mode, infer_mode, atol=1e-2 * np.abs(infer_mode).max())


def test_head_started_descendant_saves_and_loads(learngenes, data, tmp_path):
    x, y = data
    descendant = klg.inherit(learngenes["resnet"], 2, num_classes=3, fresh_init="identity")
    klg.head_start(descendant, x, y)
    klg.training.train(descendant, x, y, epochs=1, batch_size=32, augment=False, verbose=0,
                       warmup_fraction=0.0, inherited_lr_scale=0.1)
    path = str(tmp_path / "d.keras")
    descendant.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(_numpy(loaded.predict(x, verbose=0)),
                               _numpy(descendant.predict(x, verbose=0)), rtol=1e-5, atol=1e-5)
    # the optimizer goes into the file by its registered name and config (tests patch
    # `Model.compile`, so Keras does not recompile models it loads here)
    optimizer = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(descendant.optimizer))
    assert isinstance(optimizer, klg.training.ScaledAdamW)
    assert optimizer.layer_scales == descendant.optimizer.layer_scales
    assert set(optimizer.layer_scales) == set(klg.inherited_layers(descendant))
    assert set(optimizer.layer_scales.values()) == {0.1}


def test_inherited_lr_scale_zero_leaves_inherited_layers_unchanged(learngenes, data):
    x, y = data
    descendant = klg.inherit(learngenes["vit"], 1, num_classes=3, fresh_init="identity")
    inherited = klg.inherited_layers(descendant)
    before = {name: [w.copy() for w in descendant.get_layer(name).get_weights()]
              for name in [layer.name for layer in descendant.layers]}
    klg.training.train(descendant, x, y, epochs=1, batch_size=32, augment=False, verbose=0,
                       inherited_lr_scale=0.0)
    for name, weights in before.items():
        moved = any(np.abs(a - b).max() > 0 for a, b in
                    zip(weights, descendant.get_layer(name).get_weights()))
        if name in inherited:
            assert not moved, name
        elif name.startswith(("fresh_", "head_dense")):
            assert moved, name


@pytest.mark.parametrize("call, match", [
    (lambda d, x, y: fit_head(d, x[:0], y[:0]), "needs training images"),
    (lambda d, x, y: fit_head(d, x, np.zeros_like(y)), "at least two classes"),
    (lambda d, x, y: klg.head_start(d, x, np.zeros_like(y)), "at least two classes"),
    (lambda d, x, y: fit_head(d, x, y, c=0), "c=0 must be positive"),
    (lambda d, x, y: klg.training.train(d, x, y, epochs=1, warmup_fraction=1.0),
     "warmup_fraction=1.0"),
])
def test_bad_input_is_refused_before_work(learngenes, data, call, match):
    x, y = data
    descendant = klg.inherit(learngenes["vit"], 1, num_classes=3)
    before = [w.copy() for w in descendant.get_weights()]
    with pytest.raises(ValueError, match=match):
        call(descendant, x, y)
    for a, b in zip(before, descendant.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_inherited_lr_scale_needs_inherited_layers(data):
    x, y = data
    scratch = TINY_BUILDERS["vit"]()
    with pytest.raises(ValueError, match="inherited_lr_scale=0.5 applies to a descendant"):
        klg.training.train(scratch, x, y, epochs=1, inherited_lr_scale=0.5)
