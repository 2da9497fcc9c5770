"""Users' data: the data kinds of `keras_learngene._data` through `train` and
`evaluate`, image folders (real PNG files written here) and `.npz` files."""

import os

import keras
import numpy as np
import pytest
from conftest import TINY_BUILDERS, forged_npz, tiny_data

from keras_learngene import _data, training
from keras_learngene.datasets import (
    load_data,
    load_image_folder,
    load_npz,
    parse_image_size,
)

X, Y = tiny_data(n=48)


def batches(x=X, y=Y, size=16):
    return [(x[i:i + size], y[i:i + size]) for i in range(0, len(x), size)]


class Batches(keras.utils.PyDataset):
    def __init__(self, x=X, y=Y, size=16):
        super().__init__()
        self.parts = batches(x, y, size)

    def __len__(self):
        return len(self.parts)

    def __getitem__(self, index):
        return self.parts[index]


def tf_dataset(batched=True, labelled=True):
    tf = pytest.importorskip("tensorflow")
    ds = tf.data.Dataset.from_tensor_slices((X, Y) if labelled else X)
    return ds.batch(16) if batched else ds


KINDS = {
    "arrays": lambda: (X, Y),
    "tf_batches": lambda: tf_dataset(True),
    "tf_examples": lambda: tf_dataset(False),
    "py_dataset": Batches,
    "generator": lambda: (b for b in batches()),
    "list": batches,
    "one_hot_generator": lambda: ((x, keras.utils.to_categorical(y, 3)) for x, y in batches()),
}


# ---- _data --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_gives_the_same_arrays(kind):
    x, y = _data.to_arrays(KINDS[kind](), x_rank=3)
    np.testing.assert_allclose(x, X)
    np.testing.assert_array_equal(y, Y)
    assert y.dtype == np.int64
    streamed = list(_data.iter_batches(KINDS[kind](), batch_size=16, x_rank=3))
    assert sum(len(b[1]) for b in streamed) == len(Y)
    assert all(b[0].shape[1:] == X.shape[1:] for b in streamed)


def test_limit_and_single_examples():
    x, y = _data.to_arrays(Batches(), limit=20)
    assert len(x) == len(y) == 20
    np.testing.assert_array_equal(y, Y[:20])
    examples = ((X[i], Y[i]) for i in range(len(X)))  # a generator of single examples
    sizes = [len(b[1]) for b in _data.iter_batches(examples, batch_size=20, x_rank=3)]
    assert sizes == [20, 20, 8]
    x, _ = _data.to_arrays((X[i], int(Y[i])) for i in range(5))  # scalar labels
    assert x.shape == (5,) + X.shape[1:]


def test_uint8_images_are_scaled():
    x, _ = _data.to_arrays((np.full((4, 8, 8, 1), 255, np.uint8), np.arange(4)))
    assert x.dtype == np.float32 and x.max() == 1.0


def test_unlabelled_data_is_refused():
    with pytest.raises(ValueError, match="x is a single array.*labelled data is needed"):
        _data.to_arrays(X, name="x")
    with pytest.raises(ValueError, match="x yields an array of shape .* not \\(x, y\\) pairs"):
        _data.to_arrays(tf_dataset(labelled=False), name="x")
    with pytest.raises(ValueError, match="data yields .* not \\(x, y\\) pairs"):
        _data.to_arrays(iter([X[:4], X[4:8]]))


def test_misshaped_data_is_refused():
    with pytest.raises(ValueError, match="must have rank 4"):
        _data.to_arrays([(X[:4, :, :, 0], Y[:4])], x_rank=3, name="x")
    with pytest.raises(ValueError, match="labels must be 1-D ints or 2-D one-hot"):
        _data.to_arrays([(X[:4], np.zeros((4, 3, 2)))])
    with pytest.raises(ValueError, match="4 images with 3 labels"):
        _data.to_arrays([(X[:4], Y[:3])])
    with pytest.raises(ValueError, match="x has 4 examples but y has 3"):
        _data.to_arrays((X[:4], Y[:3]))
    with pytest.raises(ValueError, match="whole numbers"):
        _data.to_arrays([(X[:2], np.array([0.5, 1.0]))])
    with pytest.raises(ValueError, match="sample_weight"):
        _data.to_arrays([(X[:2], Y[:2], np.ones(2))])
    with pytest.raises(ValueError, match="data yields images of different shapes: batch 2 "
                       "holds images of shape \\(4, 4, 1\\), but batch 0 held \\(8, 8, 1\\) "
                       "\\(counting from 0\\). Every batch must hold images of one shape"):
        _data.to_arrays([(X[:2], Y[:2]), (X[2:4], Y[2:4]), (np.zeros((2, 4, 4, 1)), Y[:2])])
    with pytest.raises(ValueError, match="example 1 holds images of shape \\(4, 4, 1\\), but "
                       "example 0 held \\(8, 8, 1\\)"):  # single examples gathered
        _data.to_arrays([(X[0], Y[0]), (np.zeros((4, 4, 1)), Y[1])])
    with pytest.raises(TypeError, match="validation_data must be a tuple"):
        _data.to_arrays(42, name="validation_data")


def test_empty_and_infinite_data_are_refused():
    with pytest.raises(ValueError, match="val is empty"):
        _data.to_arrays(iter([]), name="val")
    with pytest.raises(ValueError, match="x is empty"):
        _data.to_arrays((X[:0], Y[:0]), name="x")
    with pytest.raises(ValueError, match="infinite tf.data.Dataset"):
        _data.to_arrays(tf_dataset().repeat(), name="x")
    x, _ = _data.to_arrays(tf_dataset().repeat(), limit=40)  # with a limit it is fine
    assert len(x) == 40


class Endless:
    """Keras' `while True` generator of batches, counting what was pulled; it fails
    the test instead of hanging if the library reads far past where it must stop."""

    def __init__(self, most=200):
        self.pulled, self.most = 0, most

    def __iter__(self):
        while True:
            self.pulled += 1
            assert self.pulled <= self.most, "the library kept reading an endless generator"
            yield X[:16], Y[:16]


@pytest.mark.once
def test_an_endless_generator_is_stopped_with_a_message(monkeypatch):
    monkeypatch.setattr(_data, "collect_limit", lambda: 10 * X[:16].nbytes)  # "half the memory"
    source = Endless()
    with pytest.raises(ValueError, match="x has yielded 176 images .* and has not ended: is it an "
                       "endless generator \\(Keras' `while True` idiom\\)\\? Pass "
                       "steps_per_epoch=N to train on its first N batches"):
        training.train(TINY_BUILDERS["vgg"](), iter(source), verbose=0)
    assert source.pulled == 11
    with pytest.raises(ValueError, match="Make it end, e.g. itertools.islice"):
        _data.to_arrays(iter(Endless()))
    with pytest.raises(ValueError, match="steps_per_epoch=3 applies to a data set x"):
        training.train(TINY_BUILDERS["vgg"](), X, Y, steps_per_epoch=3)
    with pytest.raises(ValueError, match="steps_per_epoch=0 must be a positive int"):
        training.train(TINY_BUILDERS["vgg"](), iter(Endless()), steps_per_epoch=0)


@pytest.mark.once
def test_condense_names_the_batch_that_changes_shape():
    import keras_learngene as klg

    def batches():
        yield X[:16], Y[:16]
        yield X[16:32, :6, :6], Y[16:32]

    with pytest.raises(ValueError, match="data yields images of different shapes: batch 1 holds "
                       "images of shape \\(6, 6, 1\\), but batch 0 held \\(8, 8, 1\\)"):
        klg.condense(TINY_BUILDERS["vit"](), batches(), num_units=1)


def test_train_takes_steps_per_epoch_of_an_endless_generator():
    source = Endless()
    model = TINY_BUILDERS["vgg"]()
    result = training.train(model, iter(source), steps_per_epoch=3, epochs=2, batch_size=16,
                            augment=False, verbose=0)
    assert source.pulled == 3  # Keras' idiom: the first 3 batches make each epoch
    assert len(result["history"]["loss"]) == 2


# ---- train and evaluate -------------------------------------------------------------


def _trained(data, y=None, validation_data=None):
    keras.utils.set_random_seed(0)
    model = TINY_BUILDERS["vgg"]()
    result = training.train(model, data, y, epochs=1, batch_size=16, augment=False,
                            validation_data=validation_data, verbose=0)
    return model, result["history"]["loss"][-1]


@pytest.fixture(scope="module")
def reference():
    return _trained(X, Y)


@pytest.mark.parametrize("kind", ["tf_batches", "py_dataset", "generator"])
def test_train_takes_data_sets(kind, reference):
    """A data set is collected, so training on it is training on the arrays."""
    model, loss = _trained(KINDS[kind](), validation_data=Batches())
    np.testing.assert_allclose(loss, reference[1], rtol=1e-5)


@pytest.mark.parametrize("kind", ["arrays", "tf_examples", "py_dataset", "one_hot_generator"])
def test_evaluate_streams_data_sets(kind, reference):
    model = reference[0]
    expected = training.evaluate(model, X, Y)
    assert training.evaluate(model, KINDS[kind](), batch_size=10) == pytest.approx(expected)


def test_train_and_evaluate_name_bad_data(reference):
    with pytest.raises(ValueError, match="x is a single array"):
        training.train(TINY_BUILDERS["vgg"](), X)
    with pytest.raises(ValueError, match="x: a batch of images must have rank 4"):
        training.evaluate(reference[0], [(X[:4, :, :, 0], Y[:4])])
    with pytest.raises(ValueError, match="x is empty"):
        training.evaluate(reference[0], iter([]))


# ---- files --------------------------------------------------------------------------


def write_folder(root, classes=("cat", "dog", "eel"), per_class=5, size=(10, 12), mode="L"):
    """PNG images: class c's images have the value 40 * (c + 1) everywhere."""
    image_module = pytest.importorskip("PIL.Image")
    for c, name in enumerate(classes):
        os.makedirs(root / name)
        for i in range(per_class):
            value = 40 * (c + 1)
            shape = size if mode == "L" else size + (3,)
            image_module.fromarray(np.full(shape, value, np.uint8), mode).save(
                root / name / f"{i}.png")
    (root / "README.txt").write_text("ignored")  # a file next to the class folders
    return root


def test_image_folder(tmp_path):
    root = write_folder(tmp_path / "pets")
    task = load_image_folder(root, test_fraction=0.2, seed=0)
    assert task.class_names == ("cat", "dog", "eel")
    assert task.name == "folder:pets"
    assert task.x_train.shape == (12, 10, 12, 1) and task.x_test.shape == (3, 10, 12, 1)
    assert task.x_train.dtype == np.float32
    assert np.bincount(task.y_test).tolist() == [1, 1, 1]
    for x, y in ((task.x_train, task.y_train), (task.x_test, task.y_test)):
        np.testing.assert_allclose(x[:, 0, 0, 0], 40 * (y + 1) / 255, rtol=1e-6)
    again = load_image_folder(root, test_fraction=0.2, seed=0)
    np.testing.assert_array_equal(again.y_train, task.y_train)
    rgb = load_image_folder(root, image_size="8x8", color_mode="rgb", test_fraction=0)
    assert rgb.x_train.shape == (15, 8, 8, 3) and rgb.x_test.shape == (0, 8, 8, 3)


def test_image_folder_colour_is_detected(tmp_path):
    task = load_image_folder(write_folder(tmp_path / "c", mode="RGB", per_class=2))
    assert task.input_shape == (10, 12, 3)


def test_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="No image folder"):
        load_image_folder(tmp_path / "missing")
    (tmp_path / "flat").mkdir()
    with pytest.raises(ValueError, match="has no sub-folders"):
        load_image_folder(tmp_path / "flat")
    root = write_folder(tmp_path / "a", per_class=2)
    (root / "empty").mkdir()
    with pytest.raises(ValueError, match="empty' holds no images"):
        load_image_folder(root)
    root = write_folder(tmp_path / "b", per_class=2)
    (root / "cat" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="Cannot read image .*broken.png"):
        load_image_folder(root)
    root = write_folder(tmp_path / "c", per_class=2)
    write_folder(tmp_path / "c" / "cat" / "sub", classes=("x",), per_class=1, size=(6, 6))
    with pytest.raises(ValueError, match="different sizes.*pass image_size"):
        load_image_folder(root)
    with pytest.raises(ValueError, match="color_mode='cmyk'"):
        load_image_folder(root, color_mode="cmyk")


def test_npz(tmp_path):
    path = tmp_path / "mine.npz"
    images = (X[..., 0] * 255).astype(np.uint8)  # (N, H, W) grey
    np.savez(path, x=images, y=keras.utils.to_categorical(Y, 3),
             class_names=np.array(["a", "b", "c"]))
    task = load_npz(path, test_fraction=0.25)
    assert task.class_names == ("a", "b", "c")
    assert task.x_train.shape == (36, 8, 8, 1) and len(task.x_test) == 12
    assert task.x_train.dtype == np.float32 and task.x_train.max() <= 1
    np.savez(path, x=X, y=Y, x_test=X[:6], y_test=Y[:6])
    task = load_npz(path)
    assert len(task.x_train) == 48 and len(task.x_test) == 6
    assert task.class_names == ("0", "1", "2")


def test_npz_errors(tmp_path):
    path = str(tmp_path / "bad.npz")
    np.savez(path, images=X, y=Y)
    with pytest.raises(ValueError, match="bad.npz' has no key 'x' \\(it has: images, y\\)"):
        load_npz(path)
    np.savez(path, x=X, y=Y, x_test=X)
    with pytest.raises(ValueError, match="has no key 'y_test'"):
        load_npz(path)
    np.savez(path, x=X[:, 0, 0, 0], y=Y)
    with pytest.raises(ValueError, match="'x' must be images"):
        load_npz(path)
    np.savez(path, x=X * 255, y=Y)
    with pytest.raises(ValueError, match="outside \\[0, 1\\]"):
        load_npz(path)
    np.savez(path, x=X, y=Y[:10])
    with pytest.raises(ValueError, match="'y' has 10 labels for 48 images"):
        load_npz(path)
    with pytest.raises(FileNotFoundError):
        load_npz(tmp_path / "none.npz")


@pytest.mark.once
def test_npz_files_numpy_cannot_read(tmp_path):
    """Each names the file and the key and says how to write the file, and a
    header's claim is checked against the file before anything is allocated."""
    fix = "write it with np.savez\\(path, x=images, y=labels\\)"
    path = forged_npz(tmp_path / "big.npz", (550_000_000,))
    with pytest.raises(ValueError, match="big.npz': the header of 'x' claims 2.2 GB \\(shape "
                       "\\(550000000,\\), float32\\) but the file holds at most 64 bytes of it: "
                       f"the file is truncated or damaged; {fix}"):
        load_npz(path)
    path = forged_npz(tmp_path / "huge.npz", (10**6, 10**6), dtype="|u1")  # no MemoryError
    with pytest.raises(ValueError, match="huge.npz': the header of 'x' claims 1 TB"):
        load_npz(path)
    path = tmp_path / "ragged.npz"
    np.savez(path, x=np.array([np.zeros((2, 2)), np.zeros((3, 3))], dtype=object), y=[0, 1])
    with pytest.raises(ValueError, match="ragged.npz': 'x' holds Python objects .* resize the "
                       f"images to one size, np.stack them as uint8 and {fix}"):
        load_npz(path)
    (tmp_path / "notes.npz").write_text("this is not an npz\n")
    with pytest.raises(ValueError, match="notes.npz' is not a NumPy .npz file: it is not a zip "
                       f"archive \\(19 bytes, starting with b'this is '\\); {fix}"):
        load_npz(tmp_path / "notes.npz")
    np.save(tmp_path / "one.npy", X)
    os.rename(tmp_path / "one.npy", tmp_path / "one.npz")
    with pytest.raises(ValueError, match="one.npz' is a single .npy array, not an .npz archive"):
        load_npz(tmp_path / "one.npz")
    whole = (tmp_path / "ok.npz")
    np.savez_compressed(whole, x=X, y=Y)  # a compressed file passes the size check
    assert len(load_npz(whole, test_fraction=0).x_train) == len(X)
    (tmp_path / "cut.npz").write_bytes(whole.read_bytes()[:-30])
    with pytest.raises(ValueError, match="cut.npz' is not a NumPy .npz file: it starts like a "
                       "zip archive but its end is missing"):
        load_npz(tmp_path / "cut.npz")


def test_load_data_follows_the_model(tmp_path):
    root = write_folder(tmp_path / "pets", per_class=3)
    task = load_data(root, input_shape=(None, 8, 8, 3))
    assert task.input_shape == (8, 8, 3)
    np.savez(tmp_path / "d.npz", x=X, y=Y)
    task = load_data(tmp_path / "d.npz", input_shape=(16, 16, 3))
    assert task.input_shape == (16, 16, 3)
    np.testing.assert_allclose(task.x_train[..., 0], task.x_train[..., 2])
    task = load_data(tmp_path / "d.npz")
    assert task.input_shape == (8, 8, 1)
    (tmp_path / "d.csv").write_text("1,2")
    with pytest.raises(ValueError, match="folder of images .* or a NumPy .npz"):
        load_data(tmp_path / "d.csv")
    assert parse_image_size("32x24") == (32, 24) and parse_image_size("28") == (28, 28)
    with pytest.raises(ValueError, match="must be HxW"):
        parse_image_size("big")


def test_a_folder_trains_a_model(tmp_path):
    task = load_data(write_folder(tmp_path / "p", per_class=6, size=(8, 8)),
                     input_shape=TINY_BUILDERS["vgg"]().input_shape)
    model = TINY_BUILDERS["vgg"]()
    training.train(model, (task.x_train, task.y_train), epochs=1, batch_size=8, verbose=0)
    assert 0 <= training.evaluate(model, (task.x_test, task.y_test)) <= 1


# ------------------------------------------------------------ condense's probe data
@pytest.mark.parametrize("trained_ancestry", ["vit"], indirect=True)
def test_condense_takes_every_data_kind(trained_ancestry):
    """Arrays, a generator of batches, a PyDataset and (on TensorFlow) tf.data
    give condense the same probe data, hence the same learngene."""
    import keras
    from conftest import tiny_data

    import keras_learngene as klg

    x, y = tiny_data(n=64)

    class Batches(keras.utils.PyDataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return x[16 * i:16 * (i + 1)], y[16 * i:16 * (i + 1)]

    kinds = {"arrays": (x, y), "generator": ((x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)),
             "py_dataset": Batches()}
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        kinds["tf_data"] = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    units = {name: klg.condense(trained_ancestry, data, num_units=1, method="auto",
                                pseudo_epochs=1, probe_size=64).provenance["probe_fingerprint"]
             for name, data in kinds.items()}
    assert len(set(units.values())) == 1, units
