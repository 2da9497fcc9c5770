"""TLEG and SWS: their defining properties on every backend.

TLEG: every unit of the auxiliary model is `theta_A + (l / L) * theta_B`,
training reaches only theta_A / theta_B, and a descendant of depth n has
unit l = theta_A + (l / n) * theta_B. SWS: the units of one stage are one
layer, and a descendant of depth n takes its stages by `stage_layout`.
"""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import TINY_BUILDERS, TINY_SHAPE, tiny_data, train_briefly

import keras_learngene as klg
from keras_learngene import models, plugins, training
from keras_learngene.methods import _sws, _tleg
from keras_learngene.methods._sws import stage_layout
from keras_learngene.methods._tleg import build_auxiliary, fit_line

QUICK = {"epochs": 1, "probe_size": 64, "batch_size": 32}


def _numpy(weights):
    return [np.asarray(keras.ops.convert_to_numpy(w)) for w in weights]


@pytest.fixture(scope="module")
def vit():
    keras.utils.set_random_seed(0)
    return train_briefly(TINY_BUILDERS["vit"](), *tiny_data(), epochs=1)


@pytest.fixture(scope="module")
def iso_vgg():
    """An iso-width CNN (every unit keeps the shape, as preset vgg_iso)."""
    keras.utils.set_random_seed(0)
    model = models.VGGNet(TINY_SHAPE, 3, filters=(4, 4, 4, 4), pool_after=(), stem_filters=4)
    return train_briefly(model, *tiny_data(), epochs=1)


@pytest.fixture(scope="module")
def tleg(vit):
    return klg.condense(vit, tiny_data(), method="tleg", **QUICK)


@pytest.fixture(scope="module")
def sws(vit):
    return klg.condense(vit, tiny_data(), method="sws", stages=3, **QUICK)


def test_fit_line_recovers_a_line_and_centres_on_the_mean():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, 2)), rng.normal(size=(3, 2))
    c = np.arange(1, 5) / 4
    fa, fb = fit_line([a + ci * b for ci in c], c)
    np.testing.assert_allclose(fa, a, atol=1e-5)
    np.testing.assert_allclose(fb, b, atol=1e-5)
    stack = rng.normal(size=(4, 3))
    fa, fb = fit_line(stack, c)
    np.testing.assert_allclose(fa + c.mean() * fb, stack.mean(0), atol=1e-5)


def test_tleg_auxiliary_units_are_linear_expansions_and_only_theta_trains(vit):
    """The defining constraint, through a real distillation step: unit l of
    the depth-L auxiliary model computes with theta_A + (l/L) theta_B and
    nothing else of the units is trained."""
    form = plugins.get_form("vit")
    anatomy = form.split(vit)
    rng = np.random.default_rng(1)
    shapes = [tuple(w.shape) for w in anatomy.units[0].trainable_variables]
    a = [rng.normal(0, 0.1, s).astype("float32") for s in shapes]
    b = [rng.normal(0, 0.1, s).astype("float32") for s in shapes]
    depth = 3
    states = [_numpy(anatomy.units[0].non_trainable_variables)] * depth
    keras.utils.set_random_seed(0)
    model, units, theta = build_auxiliary(form, anatomy, depth, 3, a, b, states)
    template = units[0]._template.layer
    before = _numpy(template.weights)
    theta_ids = {id(v) for v in theta.a + theta.b}
    unit_ids = {id(v) for u in units for v in u.trainable_variables}
    assert unit_ids == theta_ids  # the units' only trainable weights are theta
    assert not {id(v) for v in template.weights} & {id(v) for v in model.weights}

    # the forward pass is the template's with the expanded weights
    x = tiny_data(n=4)[0]
    features = keras.ops.convert_to_numpy(model.get_layer("stem")(x))
    plain = form.fresh_unit(anatomy.units[0], features.shape[1:], "plain", preserve_shape=False)
    for variable, value in zip(plain.trainable_variables, _tleg.expand_weights(a, b, 2 / depth)):
        variable.assign(value)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(units[1](features)),
                               keras.ops.convert_to_numpy(plain(features)), atol=1e-5)

    training.distill(model, vit, *tiny_data(n=64), epochs=1, batch_size=32, verbose=0,
                     augment=False)
    a_now, b_now = _numpy(theta.a), _numpy(theta.b)
    assert any(not np.allclose(x, y) for x, y in zip(a, a_now)), "theta_A was trained"
    assert any(not np.allclose(x, y) for x, y in zip(b, b_now)), "theta_B was trained"
    for l, unit in enumerate(units, start=1):
        for w, wa, wb in zip(unit.expanded_weights(), a_now, b_now):
            np.testing.assert_allclose(w, wa + l / depth * wb, rtol=1e-5, atol=1e-6)
    for old, new in zip(before, _numpy(template.weights)):
        np.testing.assert_array_equal(old, new)  # the template is never trained


@pytest.mark.parametrize("n", [2, 3, 5])
def test_tleg_descendant_unit_l_is_theta_a_plus_l_over_n_theta_b(tleg, n):
    theta_a, theta_b = tleg.learngene_units
    assert [theta_a.name, theta_b.name] == ["theta_A", "theta_B"]
    a, b = theta_a.get_weights(), theta_b.get_weights()
    descendant = klg.inherit(tleg, n, num_classes=4)  # default strategy: linear_expansion
    units = [layer for layer in descendant.layers if "theta" in layer.name]
    assert len(units) == n
    for l, unit in enumerate(units, start=1):
        assert unit.name == f"copy{l - 1}_theta_A_B"
        for w, wa, wb in zip(unit.get_weights(), a, b):
            np.testing.assert_allclose(w, wa + l / n * wb, rtol=1e-5, atol=1e-6)
    assert klg.inherited_layers(descendant)["inherited_stem"] == "stem"


def tleg_ancestry_like():
    model = TINY_BUILDERS["vit"]()
    model.get_layer("head_dense").bias.assign(np.arange(3, dtype="float32"))  # "trained"
    return model


def test_tleg_provenance_and_save_load(tleg, tmp_path):
    p = tleg.provenance
    assert p["method"] == "tleg" and p["strategy"] == "linear_expansion"
    assert p["source_units"] == [0, 1, 2, 3] and p["auxiliary"]["depth"] == 4
    assert p["auxiliary"]["coefficients"] == [0.25, 0.5, 0.75, 1.0]
    assert np.isfinite(p["distillation"]["final_loss"])
    path = str(tmp_path / "tleg.keras")
    tleg.save(path)
    loaded = klg.Learngene.load(path)
    for x, y in zip(loaded.get_weights(), tleg.get_weights()):
        np.testing.assert_array_equal(x, y)
    with pytest.raises(ValueError, match="needs n_layers \\(or depth\\) of at least 1"):
        klg.inherit(loaded, 0, num_classes=3)
    # every unit of its descendant is new: n_layers and depth agree
    assert len(klg.inherit(loaded, depth=3, num_classes=3).layers) == \
        len(klg.inherit(loaded, 3, num_classes=3).layers)
    with pytest.raises(ValueError, match="needs a TLEG learngene"):
        klg.inherit(klg.condense(tleg_ancestry_like(), num_units=3, method="front"), 2,
                    num_classes=3, strategy="linear_expansion")


@pytest.mark.parametrize("n, expected", [(2, [0, 2]), (3, [0, 1, 2]), (5, [0, 0, 1, 2, 2]),
                                         (7, [0, 0, 1, 1, 1, 2, 2])])
def test_stage_layout(n, expected):
    assert stage_layout(n, 3) == expected
    for n in range(1, 12):
        for s in range(1, 6):
            layout = stage_layout(n, s)
            sizes = np.bincount(layout, minlength=s)
            assert layout == sorted(layout) and len(layout) == n
            if n >= s:
                assert sizes.min() >= 1 and sizes.max() - sizes.min() <= 1


def test_sws_auxiliary_units_of_a_stage_share_one_layer(vit):
    form = plugins.get_form("vit")
    anatomy = form.split(vit)
    model, units = _sws.build_auxiliary(form, anatomy, 2, 5, 3, like=[0, 3])
    stages = stage_layout(5, 2)
    for j in range(5):
        for k in range(5):
            assert (units[j] is units[k]) == (stages[j] == stages[k])
    shared_ids = {id(v) for u in units for v in u.weights}
    assert len(shared_ids) == 2 * len(anatomy.units[0].weights)  # two stages' worth
    training.distill(model, vit, *tiny_data(n=64), epochs=1, batch_size=32, verbose=0)
    for j, k in [(0, 1), (2, 4)]:  # the same values after training
        for x, y in zip(units[j].get_weights(), units[k].get_weights()):
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("n", [3, 5, 7])
def test_sws_descendant_units_map_onto_stages(sws, n):
    stages = sws.learngene_units
    assert [u.name for u in stages] == ["stage_0", "stage_1", "stage_2"]
    descendant = klg.inherit(sws, depth=n, num_classes=4)
    units = [layer for layer in descendant.layers if "stage_" in layer.name]
    assert len(units) == n
    # n_layers counts the new units: the copies beside each stage's own unit
    again = klg.inherit(sws, n - 3, num_classes=4)
    assert [layer.name for layer in again.layers] == [layer.name for layer in descendant.layers]
    layout = stage_layout(n, 3)
    for j, (unit, s) in enumerate(zip(units, layout)):
        assert unit.name.endswith(f"stage_{s}")
        assert unit.name.startswith("inherited_" if s not in layout[:j] else "copy")
        for w, ws in zip(unit.get_weights(), stages[s].get_weights()):
            np.testing.assert_array_equal(w, ws)
    p = sws.provenance
    assert p["strategy"] == "stage_sharing" and p["stages"] == 3
    assert p["source_units"] == [0, 1, 3]  # the centre of each ancestry stage [0|1 2|3]


@pytest.mark.parametrize("method", ["tleg", "sws"])
def test_iso_width_cnn_works_and_staged_cnns_are_refused_before_work(method, iso_vgg,
                                                                     monkeypatch):
    learngene = klg.condense(iso_vgg, tiny_data(), num_units=2, method=method, **QUICK)
    assert len(learngene.learngene_units) == 2  # TLEG: theta_A, theta_B; SWS: num_units stages
    x, y = tiny_data(n=64)
    descendant = klg.inherit(learngene, 3, num_classes=3)
    training.train(descendant, x, y, epochs=1, batch_size=32, verbose=0)

    def no_work(*args, **kwargs):
        raise AssertionError("work started before the check")

    monkeypatch.setattr(_tleg, "distill", no_work)
    for family in ("vgg", "resnet"):
        with pytest.raises(ValueError, match="needs units of one shape"):
            klg.condense(TINY_BUILDERS[family](), tiny_data(), method=method)
    assert plugins.get_method(method).supports(
        plugins.get_form("cnn").split(TINY_BUILDERS["vgg"]())) is not None


def test_distillation_options_and_labels_are_checked(vit):
    for method, bad in [("tleg", {"alpha": 2}), ("tleg", {"temperature": 0}),
                        ("sws", {"epochs": 0}), ("tleg", {"depth": 0}), ("sws", {"stages": 9})]:
        with pytest.raises(ValueError, match=f"{list(bad)[0]}={list(bad.values())[0]}"):
            klg.condense(vit, tiny_data(), method=method, **bad)
    x, y = tiny_data()
    with pytest.raises(ValueError, match="the ancestry's own logits"):
        klg.condense(vit, (x, y + 5), method="tleg")


@pytest.mark.graph  # compiled as the library compiles (conftest)
def test_distill_trains_the_student_only_and_fails_loudly(vit):
    keras.utils.set_random_seed(0)
    student = TINY_BUILDERS["vit"]()
    teacher_before, student_before = _numpy(vit.weights), _numpy(student.weights)
    result = training.distill(student, vit, *tiny_data(n=32), epochs=1, batch_size=32,
                              verbose=0)
    assert np.isfinite(result["history"]["loss"][-1])
    for x, y in zip(teacher_before, _numpy(vit.weights)):
        np.testing.assert_array_equal(x, y)
    assert any(not np.allclose(x, y) for x, y in zip(student_before, _numpy(student.weights)))
    broken = keras.models.clone_model(vit)
    broken.set_weights([np.full_like(w, np.nan) for w in vit.get_weights()])
    with pytest.raises(training.TrainingDivergedError):
        training.distill(student, broken, *tiny_data(n=32), epochs=1, batch_size=32,
                         verbose=0)
    with pytest.raises(ValueError, match="same classes"):
        training.distill(TINY_BUILDERS["vit"](4), vit, *tiny_data(n=64))


OTHER_BACKENDS = [b for b in ("tensorflow", "jax", "torch") if b != keras.backend.backend()]

_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
import conftest  # the suite's speed settings
import keras_learngene as klg
from keras_learngene import training
x, y = conftest.tiny_data(n=32)
for path in {paths!r}:
    learngene = klg.Learngene.load(path)
    descendant = klg.inherit(learngene, 4, num_classes=3)
    training.train(descendant, x, y, epochs=1, batch_size=32, verbose=0)
    print(learngene.provenance["method"], "inherited and trained")
"""


@pytest.mark.parametrize("target", OTHER_BACKENDS)
def test_learngenes_inherit_and_train_on_another_backend(target, tleg, sws, tmp_path):
    """Learngenes condensed here load, inherit and train on `target` (with
    the suite run on every backend, this covers all 6 ordered pairs)."""
    paths = [str(tmp_path / "tleg.keras"), str(tmp_path / "sws.keras")]
    tleg.save(paths[0])
    sws.save(paths[1])
    env = {**os.environ, "KERAS_BACKEND": target, "KLG_LOAD_PLUGINS": ""}
    script = _SCRIPT.format(tests=os.path.dirname(__file__), paths=paths)
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "tleg inherited and trained" in result.stdout
    assert "sws inherited and trained" in result.stdout
