"""Condensing: selection rules, Auto/Heur Learngene, the learngene artifact."""

import os
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest
from conftest import TINY_BUILDERS, tiny_data

import keras_learngene as klg
from keras_learngene._condense import looks_untrained, resolve_form
from keras_learngene.methods import GradientStability, chain_test, make_tasks, select_units

# ------------------------------------------------------------------ selection rules
S = np.array([
    [0.9, 0.1, 0.1],
    [0.2, 0.3, 0.2],
    [0.1, 0.8, 0.2],
    [0.1, 0.7, 0.9],
    [0.8, 0.2, 0.6],
])


def test_top_k_picks_best_rows_in_order():
    # best matches per row: .9 .3 .8 .9 .8 -> the top 3 are rows 0, 3 and 2 or 4 (tie -> any)
    indices, matches = select_units(S, 2, "top_k")
    assert indices == [0, 3]
    assert matches == [0, 2]


def test_window_picks_best_contiguous_run():
    indices, _ = select_units(S, 3, "window")
    # windows: rows 0-2 = 2.0, 1-3 = 2.0, 2-4 = 2.5
    assert indices == [2, 3, 4]


def test_align_is_order_preserving_and_optimal():
    indices, matches = select_units(S, 3, "align")
    assert indices == [0, 2, 3] and matches == [0, 1, 2]
    total = sum(S[i, j] for i, j in zip(indices, matches))
    # brute force over every increasing pair of index triples
    import itertools

    best = max(sum(S[i, j] for i, j in zip(ii, jj))
               for ii in itertools.combinations(range(5), 3)
               for jj in itertools.combinations(range(3), 3))
    assert total == pytest.approx(best)


def test_selection_respects_chains():
    # unit 1 cannot follow the stem, unit 2 cannot follow unit 0
    ok = lambda prev, nxt: not (prev is None and nxt == 1) and not (prev == 0 and nxt == 2)  # noqa: E731
    indices, _ = select_units(S, 2, "top_k", ok)
    assert indices == [0, 3]
    indices, _ = select_units(np.eye(3), 2, "align", ok)
    assert indices != [0, 2] and indices[0] != 1


@pytest.mark.parametrize("k, rule, message", [
    (0, "top_k", "Cannot select k=0"),
    (6, "window", "Cannot select k=6"),
    (4, "align", "pseudo descendant of depth >= 4"),
    (2, "best", "Unknown selection rule 'best'"),
])
def test_selection_errors(k, rule, message):
    with pytest.raises(ValueError, match=message):
        select_units(S, k, rule)


# --------------------------------------------------------------------- condensing
FAST_OPTIONS = {"auto": {"pseudo_epochs": 1}, "heur": {"tasks": 2}}


@pytest.mark.parametrize("method", ["front", "back", "auto", "heur", "weight_selection"])
def test_condense_methods(trained_ancestry, data, method):
    form = resolve_form(trained_ancestry)
    anatomy = form.split(trained_ancestry)
    k = 2
    learngene = klg.condense(trained_ancestry, data, num_units=k, method=method,
                             **FAST_OPTIONS.get(method, {}))
    p = learngene.provenance
    assert len(learngene.learngene_units) == k == len(p["source_units"])
    assert p["source_units"] == sorted(p["source_units"])
    ok = chain_test(anatomy, form)
    assert all(ok(a, b) for a, b in zip([None] + p["source_units"][:-1], p["source_units"]))
    # units of different stages are joined by fresh bridges, recorded as such
    shapes_chain = chain_test(anatomy)
    expected = [anatomy.units[b].name for a, b in zip([None] + p["source_units"][:-1],
                                                      p["source_units"]) if not shapes_chain(a, b)]
    assert p["bridges_before"] == expected
    assert [learngene.bridge_before(u.name) is not None
            for u in learngene.learngene_units] == [u.name in expected
                                                    for u in learngene.learngene_units]
    if method in ("front", "weight_selection"):
        assert p["source_units"] == [0, 1]
    if method == "back":
        assert p["source_units"] == [len(anatomy.units) - 2, len(anatomy.units) - 1]
    if method == "auto":
        S = np.asarray(p["matrix"])
        assert S.shape == (len(anatomy.units), k)
        assert np.all((S >= 0) & (S <= 1))
        assert p["scores"] == [round(float(S[i, j]), 6)
                               for i, j in zip(p["source_units"], p["matches"])]
    if method == "heur":
        assert len(p["instability"]) == len(anatomy.units)
        assert np.asarray(p["matrix"]).shape == (2, len(anatomy.units))
    # the learngene's weights are copies of the selected ancestry units
    for unit, i in zip(learngene.learngene_units, p["source_units"]):
        for a, b in zip(unit.get_weights(), anatomy.units[i].get_weights()):
            np.testing.assert_array_equal(a, b)
        assert unit is not anatomy.units[i]
    for key in ("ancestry", "backend", "versions", "created", "seed", "form"):
        assert key in p
    assert p["backend"] == keras.backend.backend()


def test_condense_is_deterministic(data):
    ancestry = TINY_BUILDERS["vit"]()
    from conftest import train_briefly

    train_briefly(ancestry, *data)
    a = klg.condense(ancestry, data, num_units=2, pseudo_epochs=1, seed=3)
    b = klg.condense(ancestry, data, num_units=2, pseudo_epochs=1, seed=3)
    assert a.provenance["source_units"] == b.provenance["source_units"]
    np.testing.assert_allclose(a.provenance["matrix"], b.provenance["matrix"], atol=1e-5)


@pytest.mark.parametrize("kwargs, message", [
    ({"num_units": 0}, "num_units=0"),
    ({"num_units": 9}, "num_units=9"),
    ({"method": "magic"}, "Unknown method 'magic'"),
    ({"method": "front", "similarity": "cosine"}, "'front' takes no option 'similarity'"),
    ({"selection": "best"}, "Unknown selection rule 'best'"),
    ({"pseudo_epochs": -1}, "pseudo_epochs=-1 must be a positive int"),
    ({"method": "heur", "tasks": 0}, "tasks=0 must be a positive int"),
    ({"similarity": "linear_cak"}, "Did you mean 'linear_cka'"),
    ({"data": None}, "needs probe data"),
    ({"data": "wrong_shape"}, "Probe images have shape"),
    ({"data": "too_few"}, "at least 32"),
    ({"form": "nope"}, "Unknown form 'nope'"),
])
def test_condense_bad_input(trained_ancestry, data, kwargs, message):
    kwargs = dict(kwargs)
    if kwargs.get("data") == "wrong_shape":
        kwargs["data"] = tiny_data(shape=(12, 12, 1))
    elif kwargs.get("data") == "too_few":
        kwargs["data"] = (data[0][:8], data[1][:8])
    else:
        kwargs.setdefault("data", data)
    with pytest.raises(ValueError, match=message):
        klg.condense(trained_ancestry, **{"num_units": 2, **kwargs})


def test_untrained_ancestry_warns(data):
    model = TINY_BUILDERS["vgg"]()
    assert looks_untrained(model)
    with pytest.warns(UserWarning, match="looks untrained"):
        klg.condense(model, data, num_units=1, method="front")


def test_trained_ancestry_does_not_warn(trained_ancestry, data):
    assert not looks_untrained(trained_ancestry)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        klg.condense(trained_ancestry, data, num_units=1, method="front")


@pytest.mark.graph  # compiled as the library compiles (conftest)
def test_heur_callback_records_fractions(data):
    model = TINY_BUILDERS["vit"]()
    units = [model.get_layer(f"transformer_block_{i}") for i in range(4)]
    x, y = data
    onehot = keras.utils.to_categorical(y[:16], 3)
    callback = GradientStability(units, (x[:16], onehot), every=2)
    klg.training.train(model, x, y, epochs=1, batch_size=16, callbacks=[callback], verbose=0)
    fractions = np.asarray(callback.fractions)
    assert fractions.shape == (3 + 1, 4)  # 6 batches / every 2, plus the epoch end
    assert np.all((fractions >= 0) & (fractions <= 1)) and fractions.max() > 0


def test_make_tasks_partitions_classes():
    tasks = make_tasks(np.arange(60) % 6, 3, seed=0)
    assert sorted(c for t in tasks for c in t) == list(range(6))
    assert all(len(t) == 2 for t in tasks)
    assert make_tasks(np.arange(60) % 6, 3, seed=0) == tasks


# ------------------------------------------------------------------------ artifact
def test_learngene_round_trip(trained_ancestry, data, tmp_path):
    learngene = klg.condense(trained_ancestry, data, num_units=2, pseudo_epochs=1)
    path = str(tmp_path / "lg.keras")
    learngene.save(path)
    loaded = keras.saving.load_model(path)  # plain Keras, safe mode on
    assert isinstance(loaded, klg.Learngene)
    assert loaded.provenance == learngene.provenance
    assert loaded.form == learngene.form
    for a, b in zip(loaded.get_weights(), learngene.get_weights()):
        np.testing.assert_array_equal(a, b)
    x = data[0][:8]
    np.testing.assert_allclose(loaded.predict(x, verbose=0), learngene.predict(x, verbose=0),
                               atol=1e-6)


def test_save_is_atomic_and_takes_keras_signature(data, tmp_path, trained_ancestry):
    learngene = klg.condense(trained_ancestry, num_units=1, method="front")
    path = tmp_path / "lg.keras"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="already exists"):
        learngene.save(str(path), overwrite=False)
    assert path.read_bytes() == b"precious"
    learngene.save(str(path))  # Keras' Model.save default: overwrite=True
    assert klg.Learngene.load(str(path)).provenance["method"] == "front"
    with pytest.raises(ValueError, match="must end in '.keras'"):
        learngene.save(str(tmp_path / "lg.h5"))
    assert sorted(os.listdir(tmp_path)) == ["lg.keras"]  # no temporary file left behind


def test_load_rejects_a_plain_model(tmp_path):
    model = TINY_BUILDERS["vit"]()
    path = str(tmp_path / "ancestry.keras")
    model.save(path)
    with pytest.raises(ValueError, match="not a learngene. Condense it first"):
        klg.Learngene.load(path)


OTHER_BACKENDS = [b for b in ("tensorflow", "jax", "torch") if b != keras.backend.backend()]

_CONDENSE_SCRIPT = """
import sys, keras, numpy as np
sys.path.insert(0, {tests!r})
from conftest import TINY_BUILDERS, tiny_data, train_briefly
import keras_learngene as klg
keras.utils.set_random_seed(0)
data = tiny_data()
model = train_briefly(TINY_BUILDERS["vit"](), *data)
klg.condense(model, data, num_units=2, pseudo_epochs=1).save({path!r})
"""


@pytest.mark.parametrize("source", OTHER_BACKENDS)
def test_learngene_from_another_backend(source, tmp_path, data):
    """A learngene condensed on `source` loads here with bit-identical weights
    and inherits into a trainable descendant (with the suite run on every
    backend, this covers all 6 ordered pairs)."""
    path = str(tmp_path / f"from_{source}.keras")
    env = {**os.environ, "KERAS_BACKEND": source, "KLG_LOAD_PLUGINS": ""}
    script = _CONDENSE_SCRIPT.format(tests=os.path.dirname(__file__), path=path)
    subprocess.run([sys.executable, "-c", script], env=env, check=True, capture_output=True)
    learngene = klg.Learngene.load(path)
    assert learngene.provenance["backend"] == source
    import zipfile

    import h5py

    with zipfile.ZipFile(path) as z, z.open("model.weights.h5") as f, h5py.File(f) as h5:
        stored = []
        h5.visititems(lambda name, obj: stored.append(obj[()]) if isinstance(
            obj, h5py.Dataset) else None)
    here = sorted(np.asarray(w).tobytes() for w in learngene.get_weights())
    assert here == sorted(np.asarray(w).tobytes() for w in stored)
    descendant = klg.inherit(learngene, 1, num_classes=3)
    x, y = data
    descendant.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    descendant.fit(x[:32], y[:32], epochs=1, verbose=0)
