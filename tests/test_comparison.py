"""What a user writing their own comparison against scratch needs (issue 24,
item 9): the scratch twin of a descendant, a step budget with checkpoints in
one run, flips decided by the data set, the glyph ancestries' own scripts and
a short `Task` repr."""

import keras
import numpy as np
import pytest
from conftest import TINY_BUILDERS, TINY_SHAPE, backend, tiny_data, train_briefly

import keras_learngene as klg
from keras_learngene import datasets, training


@pytest.fixture(autouse=True)
def no_xla_on_tensorflow(monkeypatch):
    if backend() == "tensorflow":
        monkeypatch.setattr(training, "DEFAULT_JIT_COMPILE", False)


@pytest.fixture(scope="module", params=["vit", "resnet"])
def descendant(request, data):
    keras.utils.set_random_seed(0)
    ancestry = train_briefly(TINY_BUILDERS[request.param](), *data, epochs=1)
    learngene = klg.condense(ancestry, num_units=2, method="front")
    return klg.inherit(learngene, 1, num_classes=3, seed=1)


def test_scratch_twin_has_the_architecture_and_fresh_weights(descendant, data):
    twin = klg.scratch_twin(descendant, seed=3)
    assert [type(layer) for layer in twin.layers] == [type(layer) for layer in descendant.layers]
    assert twin.count_params() == descendant.count_params()
    assert [w.shape for w in twin.weights] == [w.shape for w in descendant.weights]
    assert klg.inherited_layers(descendant) and not klg.inherited_layers(twin)
    for name in klg.inherited_layers(descendant):
        old = descendant.get_layer(name)
        new = twin.get_layer(f"scratch_{name}")
        for a, b in zip(old.weights, new.weights):
            a, b = keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b)
            if a.size > 1 and np.ptp(a) > 0:  # initialised constants (zeros, ones) may match
                assert not np.array_equal(a, b), name
    for w in twin.weights:  # batch-norm statistics start afresh
        if "moving_mean" in w.path:
            assert not np.any(keras.ops.convert_to_numpy(w))
        if "moving_variance" in w.path:
            assert np.all(keras.ops.convert_to_numpy(w) == 1)
    same = klg.scratch_twin(descendant, seed=3)
    assert all(np.array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
               for a, b in zip(twin.weights, same.weights))
    before = [keras.ops.convert_to_numpy(w).copy() for w in twin.trainable_weights]
    result = training.train(twin, *data, steps=3, batch_size=32, verbose=0)
    assert len(result["history"]["loss"]) == 1 and np.isfinite(result["history"]["loss"][0])
    assert any(not np.array_equal(a, keras.ops.convert_to_numpy(b))
               for a, b in zip(before, twin.trainable_weights))


def test_scratch_twin_draws_what_the_bench_drew(descendant):
    """The bench's scratch rows were `set_random_seed(task); clone_model(like)`:
    the twin holds the same weights, so the bench can use it unchanged."""
    keras.utils.set_random_seed(7)
    old = keras.models.clone_model(descendant)
    twin = klg.scratch_twin(descendant, seed=7)
    for a, b in zip(old.weights, twin.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))


def test_steps_is_a_budget_of_optimizer_steps_and_checkpoints_read_one_run():
    x, y = tiny_data(n=40)
    keras.utils.set_random_seed(0)
    model = TINY_BUILDERS["vit"]()
    at = training.StepCheckpoints([0, 2, 7], x[:12], y[:12])
    result = training.train(model, x, y, steps=7, batch_size=16, verbose=0, callbacks=[at])
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 7  # > 40 / 16 * 1
    assert sorted(at.accuracy) == [0, 2, 7] and all(0 <= a <= 1 for a in at.accuracy.values())
    assert result["epoch_seconds"] and len(result["history"]["loss"]) == 1
    lr = model.optimizer.learning_rate  # the cosine schedule decays to 0 at the budget
    assert float(keras.ops.convert_to_numpy(lr)) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.once
@pytest.mark.parametrize("bad", [dict(steps=0), dict(steps=2.5), dict(steps=3, epochs=2)])
def test_steps_must_be_a_positive_int_without_epochs(bad):
    x, y = tiny_data(n=8)
    with pytest.raises(ValueError, match="steps="):
        training.train(TINY_BUILDERS["vit"](), x, y, verbose=0, **bad)


@pytest.mark.once
def test_step_checkpoints_reject_negative_steps():
    with pytest.raises(ValueError, match="steps="):
        training.StepCheckpoints([-1], np.zeros((1,) + TINY_SHAPE), [0])


def _flips(monkeypatch, *args, **kwargs):
    seen = {}
    real = training.AugmentedBatches

    def spy(*a, **k):
        seen["flip"] = k["flip"]
        return real(*a, **k)

    monkeypatch.setattr(training, "AugmentedBatches", spy)
    x, y = tiny_data(n=8)
    training.train(TINY_BUILDERS["vit"](), *(args or (x, y)), epochs=1, verbose=0, **kwargs)
    return seen["flip"]


@pytest.mark.once
def test_the_data_set_decides_the_flips(monkeypatch):
    assert [name for name in datasets.DATASETS if name in ("fashion_mnist", "embedded",
            "cifar_fs")] == list(datasets._tasks.FLIPPED)
    assert _flips(monkeypatch) is False  # arrays: no flips unless asked
    assert _flips(monkeypatch, flip=True) is True
    x, y = tiny_data(n=8)
    for flip in (True, False):
        task = datasets.Task("t", x, y, x, y, ("a", "b", "c"), flip=flip)
        assert _flips(monkeypatch, task) is flip
        assert _flips(monkeypatch, task, flip=not flip) is (not flip)
    assert datasets.load_task("embedded", classes="novel", shots=1).flip is True
    episodes = datasets.sample_episodes(datasets.load_task("embedded"), ways=2, shots=1,
                                        num_tasks=1)
    assert episodes[0].flip is True


@pytest.mark.once
def test_digits_and_own_data_are_not_flipped(tmp_path):
    pytest.importorskip("sklearn")
    assert datasets.load_task("digits").flip is False
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 8, 8, 1), "float32"), y=np.arange(4) % 2)
    assert datasets.load_data(str(tmp_path / "d.npz")).flip is False


@pytest.mark.once
def test_the_bench_passes_its_flips_explicitly():
    import inspect

    from keras_learngene.bench import _runner

    source = inspect.getsource(_runner)
    calls = source.count("training.train(") + source.count("training.AugmentedBatches(")
    assert calls == source.count("flip=d.flip")


@pytest.mark.once
def test_a_task_with_many_classes_prints_short():
    x, y = np.zeros((2,) + TINY_SHAPE, "float32"), np.zeros(2, "int64")
    names = tuple(f"c{i}" for i in range(333))
    text = repr(datasets.Task("glyphs/base", x, y, x, y, names))
    assert "333: 'c0', 'c1', 'c2', ..., 'c332'" in text and "c100" not in text
    assert "('a', 'b')" in repr(datasets.Task("t", x, y, x, y, ("a", "b")))


@pytest.mark.once
def test_the_glyph_ancestries_scripts_are_public():
    from keras_learngene.bench import _profiles

    assert datasets.ANCESTRY_SCRIPTS == _profiles.PILOT_SCRIPTS
    assert set(datasets.ANCESTRY_SCRIPTS) <= set(datasets.SCRIPT_NAMES)


@pytest.mark.once
@pytest.mark.parametrize("args, flip", [((), True), (("--no-flip",), False),
                                        (("--dataset", "digits"), False),
                                        (("--dataset", "digits", "--flip"), True)])
def test_klg_train_flips_as_the_data_set_says(monkeypatch, tmp_path, args, flip):
    from click.testing import CliRunner

    from keras_learngene.cli import cli

    if "digits" in args:
        pytest.importorskip("sklearn")
    seen = {}

    def fake_train(model, x, y, **kwargs):
        seen.update(kwargs)
        return {"seconds": 1.0, "steady_images_per_second": 1.0, "compile_seconds": 0.0}

    monkeypatch.setattr(training, "train", fake_train)
    monkeypatch.setattr(training, "evaluate", lambda *a, **k: 0.5)
    result = CliRunner().invoke(cli, ["train", "--preset", "vit_tiny", "--shots", "1", "--quiet",
                                      "--out", str(tmp_path / "m.keras"), *args])
    assert result.exit_code == 0, result.output
    assert seen["flip"] is flip


@pytest.mark.once
def test_the_errors_page_quotes_the_steps_message():
    from pathlib import Path

    x, y = tiny_data(n=8)
    with pytest.raises(ValueError) as error:
        training.train(TINY_BUILDERS["vit"](), x, y, steps=100, epochs=3)
    page = (Path(__file__).resolve().parents[1] / "docs" / "errors.md").read_text()
    assert f"`ValueError: {error.value}`" in page
