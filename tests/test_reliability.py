"""No silent failure, no misleading message (issue #16).

A diverged training raises `TrainingDivergedError` instead of returning a NaN
history; NaN / inf images and non-integer labels are refused with the
argument's name; a damaged `.keras` file is called damaged (Keras says "File
not found"), a file Keras' safe mode refuses says why; a full disk while
saving keeps the existing file and says so.
"""

import errno
import inspect
import os
import re
import time
import zipfile

import keras
import numpy as np
import pytest
from conftest import TINY_BUILDERS, TINY_SHAPE, backend, tiny_data

import keras_learngene as klg
from keras_learngene import training
from keras_learngene._checks import check_dataset, check_images, check_labels
from keras_learngene._io import load_keras
from keras_learngene.learngene import Learngene, SaveError, save_atomically
from keras_learngene.training import DivergenceGuard, TrainingDivergedError


@pytest.fixture(autouse=True)
def no_xla_on_tensorflow(monkeypatch):
    if backend() == "tensorflow":
        monkeypatch.setattr(training, "DEFAULT_JIT_COMPILE", False)


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return TINY_BUILDERS["vgg"](3)


@pytest.fixture(scope="module")
def learngene():
    """A one-unit learngene, built directly (no condensing: fast)."""
    keras.utils.set_random_seed(0)
    unit = keras.layers.Conv2D(2, 3, padding="same", name="unit_0")
    return Learngene(TINY_SHAPE, None, [unit], form="vgg", provenance={"method": "test"})


# ------------------------------------------------------------------ divergence


class _CountBatches(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.batches = 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1


def test_diverged_training_raises_with_the_fix_in_the_message():
    keras.utils.set_random_seed(0)
    model = TINY_BUILDERS["vgg"](3)
    x, y = tiny_data(n=64)
    counter = _CountBatches()
    with pytest.raises(TrainingDivergedError) as info:
        training.train(model, x, y, epochs=3, batch_size=8, learning_rate=1e12, augment=False,
                       verbose=0, callbacks=[counter])
    error = info.value
    assert isinstance(error, RuntimeError)
    message = str(error)
    assert message.startswith("Training diverged: the loss became")
    assert "Lower the learning rate (it was 1e+12), check the inputs for NaN/inf" in message
    assert "do not save this model" in message
    assert error.epoch == 0 and error.step is not None and error.step >= 1
    assert f"epoch 1, step {error.step + 1}" in message
    assert not np.isfinite(error.loss)
    assert error.last_finite_loss is not None and np.isfinite(error.last_finite_loss)
    assert f"last finite loss: {error.last_finite_loss:.6g}" in message
    assert counter.batches < 3 * 8, "training must stop at the first non-finite loss"


def test_sound_training_passes_the_guard(model):
    x, y = tiny_data(n=32)
    result = training.train(model, x, y, epochs=1, batch_size=16, augment=False, verbose=0)
    assert np.isfinite(result["history"]["loss"]).all()


def test_guard_in_a_plain_fit_loop_records_without_stopping():
    """What the benchmark does: it keeps training (every checkpoint is evaluated)
    and reads `guard.error`; `check()` raises."""
    keras.utils.set_random_seed(0)
    model = training.compile_model(TINY_BUILDERS["vgg"](3), learning_rate=1e12, total_steps=6)
    x, y = tiny_data(n=48)
    batches = training.AugmentedBatches(x, y, 3, batch_size=8, augment=False)
    guard, counter = DivergenceGuard(stop=False), _CountBatches()
    model.fit(batches, epochs=1, callbacks=[guard, counter], verbose=0)
    assert counter.batches == 6
    assert isinstance(guard.error, TrainingDivergedError)
    assert guard.error.bad_weights, "the final weights are non-finite too"
    with pytest.raises(TrainingDivergedError, match="Lower the learning rate, check the inputs"):
        guard.check()


def test_guard_checks_the_final_weights(model):
    guard = DivergenceGuard()
    guard.set_model(model)
    guard.on_train_begin()
    guard.on_train_batch_end(0, {"loss": 1.5})
    guard.on_train_end()
    assert guard.error is None
    guard.check()  # sound: no error
    weight = model.weights[0]
    saved = keras.ops.convert_to_numpy(weight)
    try:
        weight.assign(np.full(weight.shape, np.nan, "float32"))
        guard.on_train_begin()
        guard.on_train_batch_end(0, {"loss": 1.5})
        guard.on_train_end()
        error = guard.error
        assert error.step is None and error.loss is None and error.last_finite_loss == 1.5
        assert error.bad_weights == [weight.path]
        assert "the weights became NaN/inf" in str(error) and weight.path in str(error)
    finally:
        weight.assign(saved)


def test_guard_keeps_the_first_divergence_when_batches_arrive_out_of_order():
    guard = DivergenceGuard(check_weights=False)
    guard.on_train_begin()
    for batch, loss in [(0, 2.0), (3, float("nan")), (1, 1.8), (2, float("inf"))]:
        guard.on_train_batch_end(batch, {"loss": loss})
    error = guard.error
    assert (error.step, error.loss, error.last_finite_loss) == (2, float("inf"), 1.8)


# ------------------------------------------------------------------ input data


def _nan_images(n=12):
    x, y = tiny_data(n=n)
    x[5, 1, 2, 0] = np.nan
    x[7, 0, 0, 0] = np.inf
    return x, y


def test_train_refuses_nan_images(model):
    x, y = _nan_images()
    with pytest.raises(ValueError, match=r"`x` contains 2 NaN/inf value\(s\) out of 768 .*"
                                         r"at x\[5, 1, 2, 0\] \(example 5\)"):
        training.train(model, x, y, epochs=1, verbose=0)


def test_evaluate_refuses_nan_images_and_bad_labels(model):
    x, y = _nan_images()
    with pytest.raises(ValueError, match="`x` contains 2 NaN/inf"):
        training.evaluate(model, x, y)
    x, y = tiny_data(n=12)
    with pytest.raises(ValueError, match=r"Labels must be in \[0, 3\).*got labels from 0 to 7"):
        training.evaluate(model, x, np.where(np.arange(12) == 4, 7, y))
    # whole-number float labels are labels
    assert training.evaluate(model, x, y.astype("float32")) == training.evaluate(model, x, y)


def test_train_refuses_non_integer_labels(model):
    x, y = tiny_data(n=12)
    y = y.astype("float32")
    y[3] = 0.5
    with pytest.raises(ValueError, match=r"`y` must hold integer class labels, but 1 of 12 are "
                                         r"not whole numbers; the first is 0\.5 at y\[3\]"):
        training.train(model, x, y, epochs=1, verbose=0)
    y[3] = np.nan
    with pytest.raises(ValueError, match=r"the first is nan at y\[3\]"):
        training.train(model, x, y, epochs=1, verbose=0)


def test_train_refuses_one_hot_labels(model):
    x, y = tiny_data(n=12)
    with pytest.raises(ValueError, match=r"shape \(12, 3\). They look one-hot; pass np.argmax"):
        training.train(model, x, keras.utils.to_categorical(y, 3), epochs=1, verbose=0)


def test_train_refuses_images_of_the_wrong_rank_or_size(model):
    x, y = tiny_data(n=12)
    with pytest.raises(ValueError, match=r"`x` has shape \(12, 8, 8\) \(rank 3\) but the model "
                                         r"takes inputs of shape \(None, 8, 8, 1\) \(rank 4\)"
                                         r". Add a channel axis"):
        training.train(model, x[..., 0], y, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"holds examples of shape \(4, 4, 1\) but the model "
                                         r"takes \(8, 8, 1\)"):
        training.train(model, x[:, :4, :4], y, epochs=1, verbose=0)


def test_validation_data_is_checked_by_name(model):
    x, y = tiny_data(n=12)
    x_val, y_val = _nan_images()
    with pytest.raises(ValueError, match=r"`validation_data\[0\]` contains 2 NaN/inf"):
        training.train(model, x, y, epochs=1, verbose=0, validation_data=(x_val, y_val))
    with pytest.raises(ValueError, match=r"validation_data\[0\] has 12 examples but "
                                         r"validation_data\[1\] has 5"):
        training.train(model, x, y, epochs=1, verbose=0, validation_data=(x, y[:5]))


def test_check_functions_name_the_argument():
    x, y = tiny_data(n=6)
    assert check_images(x, "data[0]") is x
    np.testing.assert_array_equal(check_labels(y.astype("float64")), y)
    assert check_labels(y[:, None]).shape == (6,)
    assert check_labels(np.array([True, False])).dtype == np.int64
    x[2, 0, 0, 0] = -np.inf
    with pytest.raises(ValueError, match=r"`data\[0\]` contains 1 NaN/inf .*the first is -inf"):
        check_images(x, where="data[0]")
    with pytest.raises(ValueError, match=r"`probe_x` must be a batch of images"):
        check_images(np.zeros(5), where="probe_x")
    with pytest.raises(TypeError, match="numeric array"):
        check_images(np.array([["a"]]))
    with pytest.raises(ValueError, match=r"in `data\[1\]` \(the first out of range is -2 at "
                                         r"data\[1\]\[1\]\)"):
        check_labels([0, -2, 1], 3, where="data[1]")
    with pytest.raises(ValueError, match="x has 6 examples but y has 2"):
        check_dataset(np.zeros((6, 2)), [0, 1])
    # integer images are finite by construction: no check, no error
    check_images(np.zeros((3, 2, 2, 1), "uint8"))


def test_finiteness_check_is_cheap():
    x = np.random.default_rng(0).uniform(size=(1000, 64, 64, 3)).astype("float32")  # 12M values
    start = time.perf_counter()
    check_images(x)
    assert time.perf_counter() - start < 1.0


# ------------------------------------------------------------------ damaged .keras files


def test_load_keras_missing_file(tmp_path):
    path = str(tmp_path / "nothing.keras")
    with pytest.raises(FileNotFoundError, match=f"No ancestry file at {path!r}"):
        load_keras(path, what="ancestry")
    with pytest.raises(FileNotFoundError, match="No learngene file at"):
        Learngene.load(path)


def _damaged(tmp_path, learngene):
    good = tmp_path / "good.keras"
    learngene.save(str(good))
    data = good.read_bytes()
    files = {
        "truncated": data[: len(data) // 2],
        "empty": b"",
        "text": b"this is not a model\n",
        "hdf5": b"\x89HDF\r\n\x1a\n" + b"\0" * 64,
    }
    paths = {}
    for name, content in files.items():
        paths[name] = tmp_path / f"{name}.keras"
        paths[name].write_bytes(content)
    paths["no_config"] = tmp_path / "no_config.keras"
    with zipfile.ZipFile(paths["no_config"], "w") as archive:
        archive.writestr("weights.npz", b"123")
    paths["corrupt"] = tmp_path / "corrupt.keras"
    with zipfile.ZipFile(paths["corrupt"], "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("config.json", b'{"class_name": "Functional", "config": {}}')
    raw = bytearray(paths["corrupt"].read_bytes())
    raw[raw.index(b"Functional")] ^= 0xFF  # flip a byte of the member: its CRC fails
    paths["corrupt"].write_bytes(bytes(raw))
    return paths


DETAILS = {
    "truncated": r"it starts like a zip archive but its end is missing \(\d+ bytes\): the file "
                 r"is truncated",
    "empty": r"the file is empty \(0 bytes\)",
    "text": r"it is not a zip archive \(20 bytes, starting with b'this is '\)",
    "hdf5": r"it is an HDF5 file \(the legacy .h5 format\), not a zip archive",
    "no_config": r"the zip archive has no config.json \(it holds weights.npz\)",
    "corrupt": "the member 'config.json' of its zip archive is corrupt",
}


def test_damaged_files_are_called_damaged(tmp_path, learngene):
    paths = _damaged(tmp_path, learngene)
    for name, detail in DETAILS.items():
        path = str(paths[name])
        pattern = (re.escape(f"{path!r} is not a valid .keras file (truncated, or not a Keras "
                             "archive): ") + detail + "; re-save or re-download it.")
        with pytest.raises(ValueError, match=pattern):
            load_keras(path)
        with pytest.raises(ValueError, match="is not a valid .keras file"):
            Learngene.load(path)
    assert Learngene.load(str(tmp_path / "good.keras")).provenance == {"method": "test"}


def test_inherit_from_a_damaged_path(tmp_path, learngene):
    path = str(_damaged(tmp_path, learngene)["truncated"])
    with pytest.raises(ValueError, match="is not a valid .keras file"):
        klg.inherit(path, 1, num_classes=3)


def test_a_lambda_layer_is_refused_by_safe_mode(tmp_path):
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2)(inputs))
    path = str(tmp_path / "lambda.keras")
    model.save(path)
    with pytest.raises(ValueError) as info:
        load_keras(path)
    message = str(info.value)
    assert message.startswith(f"Keras safe mode refused to load {path!r}: the model carries "
                              "Python code (a `Lambda` layer")
    assert "keras_learngene never disables safe mode" in message
    assert f"keras.saving.load_model({path!r}, safe_mode=False)" in message
    with pytest.raises(TypeError, match="always loads with Keras safe mode on"):
        load_keras(path, safe_mode=False)


class _Unregistered(keras.layers.Layer):
    def call(self, x):
        return x


def test_an_unregistered_custom_layer_is_named(tmp_path):
    inputs = keras.Input((3,))
    model = keras.Model(inputs, _Unregistered()(inputs))
    path = str(tmp_path / "custom.keras")
    model.save(path)
    with pytest.raises(ValueError, match=r"uses the custom class '_Unregistered', which is not "
                                         r"registered with Keras.*register_keras_serializable"
                                         r".*custom_objects="):
        load_keras(path)
    assert isinstance(load_keras(path, custom_objects={"_Unregistered": _Unregistered}),
                      keras.Model)


# ------------------------------------------------------------------ full disk


@pytest.fixture
def full_disk(monkeypatch):
    """`keras.Model.save` writes half a file, then the disk is full."""

    def save(model, filepath, *args, **kwargs):
        with open(filepath, "wb") as f:
            f.write(b"PK\x03\x04 partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(keras.Model, "save", save)


def test_full_disk_keeps_the_existing_file(tmp_path, learngene, full_disk):
    path = tmp_path / "lg.keras"
    path.write_bytes(b"precious")
    for save in (lambda: learngene.save(str(path)),
                 lambda: save_atomically(learngene, path, overwrite=True)):
        with pytest.raises(OSError) as info:
            save()
        error = info.value
        assert isinstance(error, SaveError) and error.errno == errno.ENOSPC
        assert str(error).startswith(f"Could not write {str(path)!r}: no space left on device")
        assert str(error).endswith("; the existing file was kept.")
        assert isinstance(error.__cause__, OSError)
        assert path.read_bytes() == b"precious"
        assert os.listdir(tmp_path) == ["lg.keras"], "the temporary file must be removed"


def test_full_disk_on_a_new_file(tmp_path, learngene, full_disk):
    path = tmp_path / "new.keras"
    with pytest.raises(SaveError, match="no space left on device.*; nothing was written"):
        learngene.save(path)
    assert os.listdir(tmp_path) == []


def test_other_write_errors_keep_their_reason(tmp_path, learngene, monkeypatch):
    def save(model, filepath, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(keras.Model, "save", save)
    with pytest.raises(SaveError, match=r"Could not write .*: Permission denied; nothing was"):
        learngene.save(tmp_path / "x.keras")


def test_learngene_save_takes_keras_signature(tmp_path, learngene):
    ours = list(inspect.signature(Learngene.save).parameters.values())
    theirs = list(inspect.signature(keras.Model.save).parameters.values())
    assert [(p.name, p.default) for p in ours] == [(p.name, p.default) for p in theirs]
    path = tmp_path / "lg.keras"
    path.write_bytes(b"old")
    learngene.save(str(path))  # overwrite=True by default, as in Keras
    assert zipfile.is_zipfile(path)
    with pytest.raises(FileExistsError, match="already exists"):
        learngene.save(str(path), overwrite=False)
    with pytest.raises(ValueError, match="zipped=False is not supported"):
        learngene.save(str(tmp_path / "dir.keras"), zipped=False)
    learngene.save(str(path), zipped=True, include_optimizer=False)
    assert Learngene.load(str(path)).provenance == {"method": "test"}
    assert sorted(os.listdir(tmp_path)) == ["lg.keras"]
    with pytest.raises(FileExistsError):  # save_atomically keeps refusing by default
        save_atomically(learngene, path)
