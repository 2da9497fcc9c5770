import dataclasses
import gzip
import importlib.util
import pathlib
import sys

import numpy as np
import pytest

from keras_learngene import datasets
from keras_learngene.datasets import _digits, _fashion_mnist

REAL_DIR = _fashion_mnist.FASHION_MNIST_DEBIAN_DIR
needs_real_data = pytest.mark.skipif(
    not all((REAL_DIR / name).is_file() for name in datasets.FASHION_MNIST_FILES),
    reason=f"real Fashion-MNIST not installed in {REAL_DIR} (apt-get install "
    "dataset-fashion-mnist)",
)


def write_idx(folder, marker, n_train=3, n_test=2, compress=True):
    """Writes four tiny valid IDX files whose every pixel equals `marker`."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = np.full((n, 28, 28), marker, np.uint8)
        labels = np.arange(n, dtype=np.uint8) % 10
        payloads = {
            f"{prefix}-images-idx3-ubyte": (2051, images),
            f"{prefix}-labels-idx1-ubyte": (2049, labels),
        }
        for name, (magic, array) in payloads.items():
            header = np.array([magic, *array.shape], dtype=">u4").tobytes()
            raw = header + array.tobytes()
            if compress:
                (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
            else:
                (folder / name).write_bytes(raw)
    return folder


@pytest.fixture
def places(tmp_path, monkeypatch):
    """Four folders with distinct fake data: explicit, env var, Keras cache, Debian."""
    folders = {
        "explicit": write_idx(tmp_path / "explicit", 1),
        "env": write_idx(tmp_path / "env", 2),
        "keras": write_idx(tmp_path / "keras_home" / "datasets" / "fashion-mnist", 3),
        "debian": write_idx(tmp_path / "debian", 4),
    }
    monkeypatch.setenv("KLG_DATA_DIR", str(folders["env"]))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setattr(_fashion_mnist, "FASHION_MNIST_DEBIAN_DIR", folders["debian"])
    return folders


def marker(path=None):
    (x_train, _), (x_test, _) = datasets.load_fashion_mnist(path)
    assert x_train.shape == (3, 28, 28) and x_test.shape == (2, 28, 28)
    return int(x_train[0, 0, 0])


def test_search_order(places, monkeypatch, tmp_path):
    assert datasets.find_fashion_mnist(places["explicit"]) == places["explicit"]
    assert marker(str(places["explicit"])) == 1
    assert datasets.find_fashion_mnist() == places["env"]
    assert marker() == 2
    monkeypatch.delenv("KLG_DATA_DIR")
    assert datasets.find_fashion_mnist() == places["keras"]
    assert marker() == 3
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty_keras_home"))
    assert datasets.find_fashion_mnist() == places["debian"]
    assert marker() == 4


def test_keras_cache_defaults_to_home(places, monkeypatch, tmp_path):
    monkeypatch.delenv("KLG_DATA_DIR")
    monkeypatch.delenv("KERAS_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    write_idx(tmp_path / "home" / ".keras" / "datasets" / "fashion-mnist", 5)
    assert marker() == 5


def test_subfolder_and_uncompressed_files(tmp_path):
    write_idx(tmp_path / "root" / "fashion-mnist", 6, compress=False)
    assert datasets.find_fashion_mnist(tmp_path / "root") == tmp_path / "root" / "fashion-mnist"
    assert marker(tmp_path / "root") == 6


def test_nothing_found_message(tmp_path, monkeypatch):
    monkeypatch.delenv("KLG_DATA_DIR", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setattr(_fashion_mnist, "FASHION_MNIST_DEBIAN_DIR", tmp_path / "debian")
    with pytest.raises(datasets.DataNotFoundError) as info:
        datasets.load_fashion_mnist()
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert "sudo apt-get install dataset-fashion-mnist" in message
    assert "KLG_DATA_DIR" in message and "path=" in message
    assert str(tmp_path / "keras_home" / "datasets" / "fashion-mnist") in message
    assert str(tmp_path / "debian") in message
    for name in datasets.FASHION_MNIST_FILES:
        assert name in message


def test_explicit_bad_path_does_not_fall_back(places, tmp_path, monkeypatch):
    write_idx(tmp_path / "partial", 7)
    (tmp_path / "partial" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(datasets.DataNotFoundError, match="partial"):
        datasets.find_fashion_mnist(tmp_path / "partial")
    monkeypatch.setenv("KLG_DATA_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(datasets.DataNotFoundError, match=r"KLG_DATA_DIR='.*nowhere'"):
        datasets.load_fashion_mnist()


def test_corrupt_files(tmp_path):
    folder = write_idx(tmp_path / "bad", 8)
    labels = folder / "train-labels-idx1-ubyte.gz"
    labels.write_bytes(gzip.compress(np.array([2051, 3], ">u4").tobytes() + bytes(3)))
    with pytest.raises(ValueError, match="magic number 0x00000803, expected 0x00000801"):
        datasets.load_fashion_mnist(folder)
    labels.write_bytes(gzip.compress(np.array([2049, 3], ">u4").tobytes() + bytes(2)))
    with pytest.raises(ValueError, match="10 bytes, expected 11"):
        datasets.load_fashion_mnist(folder)
    labels.write_bytes(gzip.compress(np.array([2049, 4], ">u4").tobytes() + bytes(4)))
    with pytest.raises(ValueError, match=r"3 images .* but 4 labels"):
        datasets.load_fashion_mnist(folder)
    labels.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(ValueError, match="Corrupt gzip"):
        datasets.load_fashion_mnist(folder)


def test_arrays_cached_and_read_only(tmp_path):
    folder = write_idx(tmp_path / "cache", 9)
    first = datasets.load_fashion_mnist(folder)
    assert datasets.load_fashion_mnist(folder) is first
    (x_train, y_train), _ = first
    assert y_train.dtype == np.int64 and y_train.tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="read-only"):
        x_train[0, 0, 0] = 0


@needs_real_data
def test_real_fashion_mnist():
    (x_train, y_train), (x_test, y_test) = datasets.load_fashion_mnist(REAL_DIR)
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.int64
    assert np.bincount(y_train).tolist() == [6000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10
    assert x_train.max() == 255 and x_train.min() == 0


def test_embedded_subset():
    (x_train, y_train), (x_test, y_test) = datasets.load_embedded()
    assert x_train.shape == (5000, 28, 28) and x_test.shape == (1500, 28, 28)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.int64
    assert np.bincount(y_train).tolist() == [500] * 10
    assert np.bincount(y_test).tolist() == [150] * 10
    assert datasets.load_embedded()[0][0] is x_train
    npz = pathlib.Path(_fashion_mnist.__file__).parent / "data" / "fashion_mnist_subset.npz"
    assert npz.stat().st_size < 3_000_000


@needs_real_data
def test_embedded_subset_is_real_and_reproducible():
    real_train, real_test = datasets.load_fashion_mnist(REAL_DIR)
    embedded = datasets.load_embedded()
    for (x_real, y_real), (x_sub, y_sub) in zip((real_train, real_test), embedded, strict=True):
        labels_of = {}
        for row, label in zip(x_real.reshape(len(x_real), -1), y_real.tolist(), strict=True):
            labels_of.setdefault(row.tobytes(), set()).add(label)
        rows = x_sub.reshape(len(x_sub), -1)
        assert all(
            y in labels_of.get(r.tobytes(), ()) for r, y in zip(rows, y_sub.tolist(), strict=True)
        )
    script = pathlib.Path(__file__).parents[1] / "scripts" / "make_embedded_subset.py"
    spec = importlib.util.spec_from_file_location("make_embedded_subset", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    arrays = module.make_subset(real_train, real_test)
    (x_train, y_train), (x_test, y_test) = embedded
    np.testing.assert_array_equal(arrays["x_train"], x_train)
    np.testing.assert_array_equal(arrays["y_train"], y_train)
    np.testing.assert_array_equal(arrays["x_test"], x_test)
    np.testing.assert_array_equal(arrays["y_test"], y_test)


def test_constants():
    assert len(datasets.FASHION_MNIST_CLASSES) == 10
    assert datasets.FASHION_MNIST_CLASSES[0] == "T-shirt/top"
    assert datasets.FASHION_MNIST_CLASSES[9] == "Ankle boot"
    assert sorted(datasets.BASE_CLASSES + datasets.NOVEL_CLASSES) == list(range(10))
    assert datasets.DATASETS == ("fashion_mnist", "embedded", "digits", "glyphs", "cifar_fs")
    assert set(datasets.__all__) <= set(dir(datasets))


def test_class_split():
    x = np.arange(8) * 10
    y = np.array([3, 1, 4, 1, 5, 9, 2, 6])
    x_sub, y_sub = datasets.class_split(x, y, (4, 1))
    assert x_sub.tolist() == [10, 20, 30] and y_sub.tolist() == [1, 0, 1]
    assert y_sub.dtype == np.int64
    x_sub, y_sub = datasets.class_split(x, y, [np.int64(9)])
    assert x_sub.tolist() == [50] and y_sub.tolist() == [0]


@pytest.mark.parametrize(
    "classes, match",
    [
        ((), "at least one class"),
        ((1, 4, 1), "duplicate"),
        ((1, 12), "Class 12 is out of range: labels in y run from 1 to 9"),
        ((7,), r"Class 7 has no examples in y \(labels present: \[1, 2, 3, 4, 5, 6, 9\]\)"),
        (("a",), "must be integers"),
    ],
)
def test_class_split_errors(classes, match):
    y = np.array([3, 1, 4, 1, 5, 9, 2, 6])
    with pytest.raises(ValueError, match=match):
        datasets.class_split(np.zeros(8), y, classes)


def test_class_split_length_mismatch():
    with pytest.raises(ValueError, match="3 examples, 2 labels"):
        datasets.class_split(np.zeros(3), np.array([0, 1]), (0,))


def test_sample_shots():
    y = np.repeat(np.arange(5), 20)
    idx = datasets.sample_shots(y, 7, seed=0)
    assert idx.dtype == np.int64 and len(idx) == 35
    assert np.all(np.diff(idx) > 0)
    assert np.bincount(y[idx]).tolist() == [7] * 5
    np.testing.assert_array_equal(idx, datasets.sample_shots(y, 7, seed=0))
    assert not np.array_equal(idx, datasets.sample_shots(y, 7, seed=1))
    some = datasets.sample_shots(y, 20, seed=3, classes=(4, 1))
    np.testing.assert_array_equal(some, np.flatnonzero((y == 1) | (y == 4)))


def test_sample_shots_errors():
    y = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2, 2])
    with pytest.raises(ValueError, match="Class 0 has only 3 examples, fewer than shots=4"):
        datasets.sample_shots(y, 4, seed=0)
    with pytest.raises(ValueError, match=r"positive.*got 0"):
        datasets.sample_shots(y, 0, seed=0)
    with pytest.raises(ValueError, match="Class 5 is out of range"):
        datasets.sample_shots(y, 1, seed=0, classes=(5,))


def test_to_float_images():
    x = np.array([[[0, 51], [255, 102]]], np.uint8)
    out = datasets.to_float_images(x)
    assert out.shape == (1, 2, 2, 1) and out.dtype == np.float32
    np.testing.assert_allclose(out[0, :, :, 0], [[0.0, 0.2], [1.0, 0.4]], rtol=1e-6)
    assert datasets.to_float_images(np.zeros((2, 4, 4, 3), np.uint8)).shape == (2, 4, 4, 3)
    with pytest.raises(ValueError, match="dtype float64"):
        datasets.to_float_images(np.zeros((1, 2, 2)))
    with pytest.raises(ValueError, match=r"\(4, 4\)"):
        datasets.to_float_images(np.zeros((4, 4), np.uint8))


def test_load_task_embedded():
    (_, _), (x_test_all, y_test_all) = datasets.load_embedded()
    novel = datasets.load_task("embedded", classes="novel", shots=10, seed=0)
    assert novel.name == "embedded/novel/10-shot/seed=0"
    assert novel.x_train.shape == (40, 28, 28, 1) and novel.x_test.shape == (600, 28, 28, 1)
    assert novel.x_train.dtype == np.float32 and novel.y_train.dtype == np.int64
    assert novel.x_train.min() >= 0.0 and novel.x_train.max() <= 1.0
    assert np.bincount(novel.y_train).tolist() == [10] * 4
    assert np.bincount(novel.y_test).tolist() == [150] * 4
    assert novel.class_names == ("T-shirt/top", "Pullover", "Coat", "Shirt")
    assert novel.num_classes == 4 and novel.input_shape == (28, 28, 1)
    keep = np.isin(y_test_all, (0, 2, 4, 6))
    np.testing.assert_array_equal(novel.x_test[..., 0], x_test_all[keep] / np.float32(255))
    np.testing.assert_array_equal(novel.y_test, (y_test_all[keep] // 2))

    again = datasets.load_task("embedded", classes="novel", shots=10, seed=0)
    np.testing.assert_array_equal(novel.x_train, again.x_train)
    other = datasets.load_task("embedded", classes="novel", shots=10, seed=1)
    assert not np.array_equal(novel.x_train, other.x_train)

    base = datasets.load_task("embedded", classes="base")
    assert base.x_train.shape == (3000, 28, 28, 1) and base.x_test.shape == (900, 28, 28, 1)
    assert base.class_names[0] == "Trouser" and base.num_classes == 6
    assert np.bincount(base.y_train).tolist() == [500] * 6

    picked = datasets.load_task("embedded", classes=(9, 0), shots=3)
    assert picked.name == "embedded/9-0/3-shot/seed=0"
    assert picked.class_names == ("Ankle boot", "T-shirt/top")
    assert len(datasets.load_task("embedded").y_train) == 5000


def test_task_repr_and_frozen():
    task = datasets.load_task("embedded", classes="novel", shots=2)
    text = repr(task)
    assert "train=(8, 28, 28, 1)" in text and "test=(600, 28, 28, 1)" in text
    assert len(text) < 200
    with pytest.raises(dataclasses.FrozenInstanceError):
        task.name = "other"


def test_load_task_errors(tmp_path):
    with pytest.raises(ValueError, match="fashion_mnist, embedded, digits"):
        datasets.load_task("cifar10")
    with pytest.raises(ValueError, match=r"Unknown classes='tops'.*all, base, novel"):
        datasets.load_task("embedded", classes="tops")
    with pytest.raises(ValueError, match="only used by dataset='fashion_mnist'"):
        datasets.load_task("embedded", path=tmp_path)
    with pytest.raises(ValueError, match="has only 500 examples"):
        datasets.load_task("embedded", classes="base", shots=501)


def test_load_task_fashion_mnist_path(tmp_path):
    folder = write_idx(tmp_path / "fake", 255, n_train=20, n_test=10)
    task = datasets.load_task("fashion_mnist", classes=(1, 0), shots=2, path=folder)
    assert task.x_train.shape == (4, 28, 28, 1) and task.x_test.shape == (2, 28, 28, 1)
    assert task.y_test.tolist() == [1, 0] and float(task.x_train.max()) == 1.0


def test_digits():
    pytest.importorskip("sklearn")
    (x_train, y_train), (x_test, y_test) = datasets.load_digits()
    assert x_train.shape == (1347, 8, 8) and x_test.shape == (450, 8, 8)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.int64
    assert x_train.max() == 255 and x_train.min() == 0
    totals = np.bincount(y_train) + np.bincount(y_test)
    np.testing.assert_array_equal(np.bincount(y_test), np.round(totals * 0.25))
    (x_again, _), _ = datasets.load_digits()
    np.testing.assert_array_equal(x_train, x_again)
    (x_other, _), _ = datasets.load_digits(seed=1)
    assert not np.array_equal(x_train, x_other)
    task = datasets.load_task("digits", classes=(3, 8), shots=5)
    assert task.x_train.shape == (10, 8, 8, 1) and task.class_names == ("3", "8")
    with pytest.raises(ValueError, match="valid names: all"):
        datasets.load_task("digits", classes="novel")
    with pytest.raises(ValueError, match="test_fraction"):
        datasets.load_digits(test_fraction=1.0)


def test_digits_without_sklearn(monkeypatch):
    _digits._raw_digits.cache_clear()
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    try:
        with pytest.raises(
            ImportError, match=r"pip install scikit-learn.*keras-learngene\[digits\]"
        ):
            datasets.load_digits()
    finally:
        _digits._raw_digits.cache_clear()
