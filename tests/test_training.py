"""The training recipe (`keras_learngene.training`): it learns, it is
deterministic, it checks its inputs, and its batches are what they claim.

The learning checks use `texture_data`, whose class (stripe orientation) is
visible in every patch: conftest's `tiny_data` (a bright quadrant) can only be
told apart by *where* the bright patch is, which the tiny ViT learns only once
its position embedding (initialised at std 0.02) has grown, after 100+ steps
and not on every seed; the CNNs learn it quickly in training mode but their
batch-norm moving statistics (momentum 0.99) lag far behind after a few dozen
steps, so `evaluate` (inference mode) stays near chance.
"""

import keras
import numpy as np
import pytest
from conftest import TINY_BUILDERS, TINY_SHAPE, backend, tiny_data

from keras_learngene import training


def texture_data(n=96, classes=3, seed=0, shape=TINY_SHAPE):
    """Images whose class is a texture visible everywhere: horizontal stripes,
    vertical stripes or a checkerboard (contrast 0.7) over uniform noise."""
    rng = np.random.default_rng(seed)
    rows, cols = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    patterns = [rows % 2, cols % 2, (rows + cols) % 2]
    y = np.arange(n) % classes
    x = rng.uniform(0, 0.3, size=(n,) + shape).astype("float32")
    for c in range(classes):
        x[y == c] += 0.7 * patterns[c][..., None].astype("float32")
    return x, y.astype("int64")


@pytest.fixture(autouse=True)
def no_xla_on_tensorflow(monkeypatch):
    """XLA compilation dominates these tiny runs on TensorFlow (see
    `training.DEFAULT_JIT_COMPILE`)."""
    if backend() == "tensorflow":
        monkeypatch.setattr(training, "DEFAULT_JIT_COMPILE", False)


def weights_of(model):
    return [np.array(keras.ops.convert_to_numpy(w)) for w in model.weights]


# ------------------------------------------------------------------ learning

# Tuned on held-out texture_data: every seed tried reached > 0.95 (JAX: 10 ViT and 8
# ResNet seeds; TensorFlow and torch: 4 seeds each).
LEARNING = {
    "vit": dict(epochs=4, batch_size=16, learning_rate=5e-3),
    "resnet": dict(epochs=6, batch_size=8, learning_rate=1e-2),
}


@pytest.mark.graph  # compiled as the library compiles (conftest)
@pytest.mark.parametrize("family", sorted(LEARNING))
def test_train_learns_far_beyond_chance(family):
    x, y = texture_data()
    x_test, y_test = texture_data(n=60, seed=1)
    keras.utils.set_random_seed(0)
    model = TINY_BUILDERS[family](3)

    result = training.train(model, x, y, augment=False, seed=0, verbose=0, **LEARNING[family])

    accuracy = training.evaluate(model, x_test, y_test)
    assert accuracy > 0.6, f"{family}: held-out accuracy {accuracy:.2f} (chance: 0.33)"
    history = result["history"]
    epochs = LEARNING[family]["epochs"]
    assert len(history["loss"]) == len(history["accuracy"]) == epochs
    assert history["loss"][-1] < 0.7 * history["loss"][0]
    assert result["seconds"] > 0
    assert result["images_per_second"] == pytest.approx(epochs * len(x) / result["seconds"])
    assert len(result["epoch_seconds"]) == epochs and all(t > 0 for t in result["epoch_seconds"])
    assert sum(result["epoch_seconds"]) <= result["seconds"]
    assert result["backend"] == backend()
    # evaluate is plain top-1 accuracy of the logits
    predicted = np.argmax(model.predict(x_test, batch_size=1024, verbose=0), axis=-1)
    assert training.evaluate(model, x_test, predicted) == 1.0
    assert training.evaluate(model, x_test, (predicted + 1) % 3) == 0.0


def test_same_seed_gives_identical_weights():
    x, y = tiny_data(n=32)

    def run(seed):
        keras.utils.set_random_seed(0)  # the same initial weights
        model = TINY_BUILDERS["vgg"](3)
        initial = weights_of(model)
        # augment=True: the shuffle and the augmentation are seeded too
        training.train(model, x, y, epochs=2, batch_size=16, seed=seed, verbose=0)
        return initial, weights_of(model)

    initial, first = run(seed=5)
    _, second = run(seed=5)
    assert len(first) == len(second) > 0
    for a, b in zip(first, second):
        np.testing.assert_allclose(a, b, atol=1e-6, rtol=0)
    changed = [not np.allclose(a, b) for a, b in zip(initial, first)]
    assert sum(changed) >= len(changed) // 2, "training did not move the weights"


def test_compiling_is_timed_apart_from_the_steady_rate():
    """`klg train` reports the rate after the first (compiling) step; no wall-clock
    target is asserted, only that the parts add up."""
    x, y = tiny_data(n=32)
    result = training.train(TINY_BUILDERS["vgg"](3), x, y, epochs=2, batch_size=16,
                            verbose=0)
    steady, compiling = result["steady_images_per_second"], result["compile_seconds"]
    assert steady > 0 and 0 <= compiling <= result["seconds"]
    steps_after_first = 2 * 2 - 1
    assert 16 * steps_after_first / steady <= result["seconds"] + 1e-9
    one_step = training.train(TINY_BUILDERS["vgg"](3), x[:16], y[:16], epochs=1,
                              batch_size=16, verbose=0)
    assert one_step["steady_images_per_second"] is None and one_step["compile_seconds"] is None


# ------------------------------------------------------------------ validation


@pytest.fixture(scope="module")
def small_model():
    keras.utils.set_random_seed(0)
    return TINY_BUILDERS["vgg"](3)


@pytest.mark.parametrize("labels, lo, hi", [([0, 1, 3], 0, 3), ([-1, 0, 2], -1, 2)])
def test_labels_out_of_range_are_rejected(small_model, labels, lo, hi):
    x = np.zeros((3,) + TINY_SHAPE, "float32")
    with pytest.raises(ValueError, match=rf"Labels must be in \[0, 3\) for a model with 3 "
                                         rf"outputs; got labels from {lo} to {hi}"):
        training.train(small_model, x, np.array(labels), epochs=1, verbose=0)


def test_x_and_y_lengths_must_match(small_model):
    x, y = tiny_data(n=12)
    with pytest.raises(ValueError, match="x has 12 examples but y has 11; they must match"):
        training.train(small_model, x, y[:11], epochs=1, verbose=0)


@pytest.mark.parametrize("learning_rate", [0, 0.0, -1e-3])
def test_compile_model_rejects_non_positive_learning_rate(small_model, learning_rate):
    with pytest.raises(ValueError, match="learning_rate and total_steps must be positive"):
        training.compile_model(small_model, learning_rate=learning_rate)


def test_compile_model_rejects_non_positive_total_steps(small_model):
    with pytest.raises(ValueError, match=r"must be positive, got 0\.001 and 0"):
        training.compile_model(small_model, total_steps=0)


def test_compile_model_warms_up_from_one_percent(small_model):
    training.compile_model(small_model, learning_rate=2e-3, total_steps=50)
    assert isinstance(small_model.optimizer, keras.optimizers.AdamW)
    assert float(small_model.optimizer.learning_rate) == pytest.approx(2e-5)
    assert small_model.loss.get_config()["from_logits"] is True
    training.compile_model(small_model, learning_rate=2e-3, total_steps=50, warmup_fraction=0)
    assert float(small_model.optimizer.learning_rate) == pytest.approx(2e-3)


# ------------------------------------------------------------------ batches


def collect(batches):
    return [batches[i] for i in range(len(batches))]


def test_augmented_batches_shapes_and_one_hot_labels():
    x, y = tiny_data(n=10)
    batches = training.AugmentedBatches(x, y, num_classes=3, batch_size=4, seed=0,
                                        augment=False)
    assert len(batches) == 3
    got = collect(batches)
    assert [bx.shape for bx, _ in got] == [(4,) + TINY_SHAPE, (4,) + TINY_SHAPE,
                                           (2,) + TINY_SHAPE]
    assert [by.shape for _, by in got] == [(4, 3), (4, 3), (2, 3)]
    for bx, by in got:
        assert bx.dtype == np.float32 and by.dtype == np.float32
        assert set(np.unique(by)) <= {0.0, 1.0}
        np.testing.assert_array_equal(by.sum(axis=1), 1.0)
    # without augmentation a batch is the examples in the shuffled order, labels in step
    order = batches.order
    assert sorted(order) == list(range(10))
    np.testing.assert_array_equal(np.concatenate([bx for bx, _ in got]), x[order])
    np.testing.assert_array_equal(np.concatenate([by for _, by in got]).argmax(axis=1),
                                  y[order])


def test_augmented_batches_same_seed_same_order():
    x, y = tiny_data(n=20)
    a, b, c = (training.AugmentedBatches(x, y, 3, batch_size=8, seed=s, augment=False)
               for s in (7, 7, 8))
    np.testing.assert_array_equal(a.order, b.order)
    assert not np.array_equal(a.order, c.order)
    for (ax, ay), (bx, by) in zip(collect(a), collect(b)):
        np.testing.assert_array_equal(ax, bx)
        np.testing.assert_array_equal(ay, by)
    # each epoch reshuffles, in the same way for the same seed
    first = a.order.copy()
    a.on_epoch_end()
    b.on_epoch_end()
    np.testing.assert_array_equal(a.order, b.order)
    assert not np.array_equal(a.order, first)
    assert sorted(a.order) == list(range(20))


def test_augmented_batches_augmentation_is_seeded():
    x, y = tiny_data(n=16)
    plain = training.AugmentedBatches(x, y, 3, batch_size=16, seed=3, augment=False)[0]
    first = training.AugmentedBatches(x, y, 3, batch_size=16, seed=3, augment=True)[0]
    second = training.AugmentedBatches(x, y, 3, batch_size=16, seed=3, augment=True)[0]
    assert first[0].shape == plain[0].shape and first[0].dtype == np.float32
    np.testing.assert_array_equal(first[1], plain[1])  # labels are not augmented
    assert not np.allclose(first[0], plain[0])  # images are
    np.testing.assert_allclose(first[0], second[0], atol=1e-6)
