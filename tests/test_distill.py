"""Auto Learngene, distilled (`auto_distill`): a weight learned per
(ancestry unit, pseudo-descendant unit) pair, and a case with a known answer."""

import warnings

import keras
import numpy as np
import pytest
from conftest import TINY_BUILDERS, tiny_data, train_briefly
from keras import ops

import keras_learngene as klg
from keras_learngene.methods import _distill


@pytest.fixture(scope="module")
def vit():
    keras.utils.set_random_seed(0)
    return train_briefly(TINY_BUILDERS["vit"](), *tiny_data())


OPTIONS = {"num_units": 2, "pseudo_depth": 3, "epochs": 4, "probe_size": 96}


@pytest.fixture(scope="module")
def distilled(vit):
    """The ancestry's weights and flags before, and its distilled learngene."""
    before = [w.copy() for w in vit.get_weights()]
    flags = [layer.trainable for layer in vit._flatten_layers()]
    return before, flags, _condense(vit, seed=3, **OPTIONS)


def _condense(ancestry, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return klg.condense(ancestry, tiny_data(), method="auto_distill", **options)


def test_a_learned_weight_per_pair_each_column_a_distribution(vit, distilled):
    before, flags, learngene = distilled
    p = learngene.provenance
    W = np.asarray(p["matrix"])
    assert W.shape == (4, 3)  # L ancestry units x D pseudo units
    np.testing.assert_allclose(W.sum(axis=0), 1.0, atol=1e-5)
    assert (W > 0).all()
    assert p["moved_from_uniform"] > 0.05  # learned: not the uniform start
    assert np.abs(W - 0.25).max() == pytest.approx(p["moved_from_uniform"], abs=1e-5)
    assert np.asarray(p["pair_loss"]).shape == (4, 3)
    assert len(p["distillation"]["loss"]) == 4
    np.testing.assert_allclose(p["heatmap"]["matrix"], W, atol=1e-6)
    assert p["scores"] == [p["matrix"][i][j] for i, j in zip(p["source_units"], p["matches"])]
    # the ancestry is the frozen teacher: untouched, its flags restored
    for a, b in zip(before, vit.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert flags == [layer.trainable for layer in vit._flatten_layers()]


# ---------------------------------------------------------------- a known answer

class Carrier(keras.layers.Layer):
    """(8, 8, 1) images -> one token: the 64 pixels (the carrier) + F zeros."""

    def __init__(self, features=4, **kwargs):
        super().__init__(**kwargs)
        self.features = features

    def build(self, shape):
        self.kernel = self.add_weight(shape=(1,), initializer="ones", trainable=False)

    def call(self, x):
        flat = ops.reshape(x, (-1, 1, 64)) * self.kernel
        return ops.concatenate([flat, ops.zeros_like(flat[..., :self.features])], axis=-1)

    def compute_output_shape(self, shape):
        return (shape[0], 1, 64 + self.features)

    def get_config(self):
        return {**super().get_config(), "features": self.features}


class Probe(keras.layers.Layer):
    """Passes the carrier on; its F feature channels are
    `amp * sin(freq * pixels @ kernel)`: with a small `freq` nearly linear in
    the image (informative), with a large one a hash of it (noise)."""

    def __init__(self, features=4, **kwargs):
        super().__init__(**kwargs)
        self.features = features

    def build(self, shape):
        self.kernel = self.add_weight(shape=(64, self.features), initializer="glorot_uniform")
        self.freq = self.add_weight(shape=(), initializer="ones", trainable=False)
        self.amp = self.add_weight(shape=(), initializer="ones", trainable=False)

    def call(self, x):
        carrier = x[..., :64]
        wave = self.amp * ops.sin(self.freq * ops.matmul(carrier, self.kernel))
        return ops.concatenate([carrier, wave], axis=-1)

    def compute_output_shape(self, shape):
        return shape

    def get_config(self):
        return {**super().get_config(), "features": self.features}


def synthetic_ancestry(informative, units=4):
    """Four units; only `informative` computes something a student can
    reproduce (the brightness of each quadrant: the class); the others add
    a hash of the image."""
    inputs = keras.Input((8, 8, 1))
    x = Carrier(name="carrier")(inputs)
    probes = [Probe(name=f"probe_{i}") for i in range(units)]
    for probe in probes:
        x = probe(x)
    model = keras.Model(inputs, keras.layers.Dense(3, name="head_dense")(
        keras.layers.Flatten()(x)))
    quadrants = np.zeros((8, 8, 4), "float32")
    quadrants[:4, :4, 0] = quadrants[:4, 4:, 1] = quadrants[4:, :4, 2] = \
        quadrants[4:, 4:, 3] = 1
    rng = np.random.default_rng(0)
    for i, probe in enumerate(probes):
        if i == informative:
            probe.set_weights([quadrants.reshape(64, 4), np.float32(0.02), np.float32(50.0)])
        else:
            probe.set_weights([rng.normal(size=(64, 4)).astype("float32"), np.float32(300.0),
                               np.float32(5.0)])
    return model


@pytest.mark.graph  # compiled as the library compiles (conftest)
def test_the_weights_concentrate_on_the_informative_unit():
    ancestry = synthetic_ancestry(informative=2)
    p = _condense(ancestry, num_units=1, pseudo_depth=1, epochs=20, form="functional",
                  probe_size=96).provenance
    W, losses = np.asarray(p["matrix"])[:, 0], np.asarray(p["pair_loss"])[:, 0]
    assert p["source_units"] == [2]
    assert W[2] > 0.8 and W.argmax() == 2
    assert losses.argmin() == 2 and losses[2] < 0.3 < losses[[0, 1, 3]].min()


def test_deterministic_by_seed(vit, distilled):
    a, b = distilled[2].provenance, _condense(vit, seed=3, **OPTIONS).provenance
    np.testing.assert_allclose(a["matrix"], b["matrix"], atol=1e-5)
    assert a["source_units"] == b["source_units"] and a["matches"] == b["matches"]


@pytest.mark.parametrize("option, value, message", [
    ("epochs", 0, "epochs=0 must be a positive int"),
    ("epochs", 1.5, "epochs=1.5 must be a positive int"),
    ("probe_size", True, "probe_size=True must be a positive int"),
    ("pseudo_depth", 0, "pseudo_depth=0 must be a positive int"),
    ("feature_weight", -1.0, "feature_weight=-1.0 must be a positive number"),
    ("temperature", 0, "temperature=0 must be a positive number"),
    ("learning_rate", float("nan"), "learning_rate=nan must be a positive number"),
    ("learning_rate", "1e-3", "learning_rate='1e-3' must be a positive number"),
    ("selection", "best", "Unknown selection rule 'best'"),
    ("pseudo_depth", 1, "pseudo descendant of depth >= 2"),
])
def test_bad_options_are_rejected_before_work(vit, monkeypatch, option, value, message):
    def no_work(*args, **kwargs):
        raise AssertionError("distilled before the options were checked")

    monkeypatch.setattr(_distill, "distill_pseudo_descendant", no_work)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(")):
        _condense(vit, num_units=2, **{option: value})
