"""The training recipe for the library's small ViTs and CNNs.

AdamW with linear warm-up and cosine decay, label smoothing, light
augmentation with Keras' own preprocessing layers (random translation and
horizontal flip), fixed seeds. Models output logits.
"""

import math
import time

import keras
import numpy as np

from keras_learngene import distribute

# Passed to `Model.compile(jit_compile=...)` when `train` gets none: "auto"
# lets Keras compile with XLA where it can. Compilation dominates tiny runs
# (tests, smoke checks), where False is faster on TensorFlow.
DEFAULT_JIT_COMPILE = "auto"


def compile_model(
    model,
    *,
    learning_rate=1e-3,
    weight_decay=0.05,
    total_steps=1000,
    warmup_fraction=0.1,
    label_smoothing=0.1,
    jit_compile=None,
):
    """Compiles `model` with the library's recipe.

    Args:
        model: a `keras.Model` that outputs logits.
        learning_rate: peak learning rate, reached after warm-up.
        weight_decay: AdamW decoupled weight decay.
        total_steps: optimizer steps of the whole run (warm-up + cosine decay).
        warmup_fraction: fraction of `total_steps` spent warming up linearly.
        label_smoothing: label smoothing of the categorical cross-entropy.
        jit_compile: Keras' `jit_compile`; default `DEFAULT_JIT_COMPILE`.

    Returns:
        The model, compiled; labels must be one-hot (see `train`).
    """
    if learning_rate <= 0 or total_steps <= 0:
        raise ValueError(
            f"learning_rate and total_steps must be positive, got {learning_rate!r} and "
            f"{total_steps!r}."
        )
    warmup = int(total_steps * warmup_fraction)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=learning_rate * 0.01 if warmup else learning_rate,
        decay_steps=max(total_steps - warmup, 1),
        warmup_target=learning_rate if warmup else None,
        warmup_steps=warmup,
    )
    model.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=weight_decay),
        loss=keras.losses.CategoricalCrossentropy(
            from_logits=True, label_smoothing=label_smoothing
        ),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
        jit_compile=DEFAULT_JIT_COMPILE if jit_compile is None else jit_compile,
    )
    return model


class AugmentedBatches(keras.utils.PyDataset):
    """Shuffled, augmented mini-batches of `(images, one_hot_labels)`.

    Shuffling uses a numpy generator seeded with `seed`, so the batch order is
    the same on every backend; augmentation uses Keras preprocessing layers.

    Args:
        x: float32 images `(N, H, W, C)`.
        y: int labels `(N,)`.
        num_classes: number of classes (for one-hot labels).
        batch_size: examples per batch (the last batch may be smaller).
        seed: seed of the shuffle and the augmentation.
        augment: apply random translation (up to 10%) and horizontal flips.
        multiple_of: trim the last batch to a multiple of this (the number of
            devices a distribution splits each batch over), dropping at most
            `multiple_of - 1` examples per epoch.
        steps: if given, an epoch is exactly `steps` full batches drawn from a
            stream of reshuffled passes over the data (a batch may span two
            passes), so a budget of optimizer steps does not depend on the
            number of examples; used with `fit(epochs=1)`.
    """

    def __init__(self, x, y, num_classes, batch_size=64, seed=0, augment=True, multiple_of=1,
                 steps=None, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y = x, keras.utils.to_categorical(y, num_classes).astype("float32")
        self.batch_size = batch_size
        self.multiple_of = multiple_of
        self.steps = steps
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(x))
        self.augment = (
            keras.Sequential(
                [
                    # float32 whatever the dtype policy: batches leave as numpy
                    keras.layers.RandomTranslation(0.1, 0.1, fill_mode="constant", seed=seed,
                                                   dtype="float32"),
                    keras.layers.RandomFlip("horizontal", seed=seed + 1, dtype="float32"),
                ]
            )
            if augment
            else None
        )

    @property
    def examples(self):
        """Examples per epoch (all of them, unless the last batch is trimmed)."""
        if self.steps is not None:
            return self.steps * self.batch_size
        return len(self.x) - (len(self.x) % self.batch_size) % self.multiple_of

    def __len__(self):
        return math.ceil(self.examples / self.batch_size)

    def _indices(self, index):
        start, stop = index * self.batch_size, (index + 1) * self.batch_size
        if self.steps is None:
            return self.order[start:min(stop, self.examples)]
        while len(self.order) < stop:  # extend the stream by another shuffled pass
            self.order = np.concatenate([self.order, self.rng.permutation(len(self.x))])
        return self.order[start:stop]

    def __getitem__(self, index):
        idx = self._indices(index)
        x = self.x[idx]
        if self.augment is not None:
            x = keras.ops.convert_to_numpy(self.augment(x, training=True))
        return x, self.y[idx]

    def on_epoch_end(self):
        self.order = self.rng.permutation(len(self.x))


class _EpochTimer(keras.callbacks.Callback):
    """Wall time of each epoch (the first one includes tracing / compiling)."""

    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def train(
    model,
    x,
    y,
    *,
    epochs=5,
    batch_size=64,
    learning_rate=1e-3,
    weight_decay=0.05,
    label_smoothing=0.1,
    augment=True,
    seed=0,
    validation_data=None,
    callbacks=None,
    verbose="auto",
    distribution=None,
    mixed_precision=None,
):
    """Trains `model` on `(x, y)` with the library's recipe.

    Args:
        model: a `keras.Model` that outputs logits, one per class.
        x: float32 images `(N, H, W, C)`.
        y: int labels `(N,)` in `[0, num_classes)`.
        epochs: passes over the data.
        batch_size: examples per optimizer step.
        learning_rate: peak learning rate.
        weight_decay: AdamW weight decay.
        label_smoothing: label smoothing.
        augment: random translation and flips (Keras preprocessing layers).
        seed: seeds Keras, numpy and the batch order.
        validation_data: optional `(x_val, y_val)` with int labels.
        callbacks: extra Keras callbacks.
        verbose: Keras `fit` verbosity.
        distribution: `None` (the one in force, if any), `"data_parallel"`,
            `"model_parallel"` or a `keras.distribution` object (JAX
            only; see `keras_learngene.distribute`). The model must have been
            built under it (`keras_learngene.distribute.scope`). Each batch is
            split over the devices, so `batch_size` must be a multiple of
            their number; the last batch of an epoch is trimmed to one.
        mixed_precision: `None` (the model's own policy), or the policy the
            model must have been built with: `"float32"`, `"mixed_float16"`
            (the optimizer is wrapped in a `LossScaleOptimizer` by `compile`)
            or `"mixed_bfloat16"`.

    Returns:
        A dict with the Keras `history`, `seconds` of training, the
        training throughput `images_per_second`, the wall time of each epoch
        `epoch_seconds` (the first includes compiling) and where it ran: `backend`,
        `devices`, `distribution` and `precision` (the model's dtype policy).

    Raises:
        ValueError: mismatched `x` / `y`, labels out of range, a model not
            built under `distribution` / `mixed_precision`, a batch size the
            devices do not divide, or a distribution on a backend other than JAX.

    Example:
    ```python
    task = keras_learngene.datasets.load_task("embedded", classes="base")
    model = keras_learngene.models.build_preset("vit_tiny", num_classes=6)
    result = keras_learngene.training.train(model, task.x_train, task.y_train, epochs=1)
    ```
    """
    num_classes = model.output_shape[-1]
    y = np.asarray(y)
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} examples but y has {len(y)}; they must match.")
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(
            f"Labels must be in [0, {num_classes}) for a model with {num_classes} outputs; "
            f"got labels from {y.min()} to {y.max()}."
        )
    precision = distribute.precision_policy(mixed_precision)
    explicit = distribution is not None
    distribution = distribute.make_distribution(distribution) if explicit else \
        distribute.active_distribution()
    if explicit or precision is not None:
        distribute.check_model(model, distribution if explicit else None, precision)
    replicas = distribute.data_replicas(distribution)
    if batch_size % replicas:
        raise ValueError(
            f"batch_size={batch_size} must be a multiple of the {replicas} devices each "
            "batch is split over."
        )
    keras.utils.set_random_seed(seed)
    with distribute.scope(distribution if explicit else None, precision):
        batches = AugmentedBatches(x, y, num_classes, batch_size, seed=seed, augment=augment,
                                   multiple_of=replicas)
        if not batches.examples:
            raise ValueError(f"{len(x)} examples cannot be split over {replicas} devices.")
        compile_model(
            model,
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            total_steps=epochs * len(batches),
            label_smoothing=label_smoothing,
        )
        if validation_data is not None:
            x_val, y_val = validation_data
            validation_data = (x_val, keras.utils.to_categorical(y_val, num_classes))
            if replicas > 1:  # split over the devices like the training batches
                validation_data = AugmentedBatches(x_val, y_val, num_classes, batch_size,
                                                   augment=False, multiple_of=replicas)
        timer = _EpochTimer()
        start = time.perf_counter()
        history = model.fit(
            batches,
            epochs=epochs,
            validation_data=validation_data,
            callbacks=[timer] + list(callbacks or []),
            verbose=verbose,
        )
        seconds = time.perf_counter() - start
    return {
        "history": history.history,
        "seconds": seconds,
        "images_per_second": epochs * batches.examples / seconds,
        "epoch_seconds": timer.seconds,
        **distribute.describe_devices(distribution),
        "precision": model.dtype_policy.name,
    }


def evaluate(model, x, y, batch_size=1024):
    """Top-1 accuracy of a logits model on `(x, y)`, in large batches.

    Args:
        model: a `keras.Model` that outputs logits.
        x: float32 images.
        y: int labels.
        batch_size: evaluation batch size (large: eager backends are slow with
            small batches).

    Returns:
        Accuracy in [0, 1] as a float.
    """
    logits = model.predict(x, batch_size=batch_size, verbose=0)
    return float(np.mean(np.argmax(logits, axis=-1) == np.asarray(y)))
