"""The training recipe for the library's small ViTs and CNNs.

AdamW with linear warm-up and cosine decay, label smoothing, light
augmentation with Keras' own preprocessing layers (random translation, and
horizontal flips where the data set allows them), fixed seeds. Models output
logits.

Training fails loudly: `train` checks its data and
always runs a `DivergenceGuard`, so a diverged run (a NaN / inf loss or
weights) raises `TrainingDivergedError` instead of returning a NaN history.
"""

import math
import threading
import time

import keras
import numpy as np

from keras_learngene import _data, distribute
from keras_learngene import _names as names
from keras_learngene._checks import check_dataset
from keras_learngene.datasets._tasks import Task

__all__ = [
    "AugmentedBatches",
    "DivergenceGuard",
    "StepCheckpoints",
    "ScaledAdamW",
    "TrainingDivergedError",
    "compile_model",
    "distill",
    "evaluate",
    "train",
]

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
    schedule="cosine",
    layer_lr_scales=None,
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
        schedule: `"cosine"` (warm-up, then cosine decay to 0 at `total_steps`)
            or `"constant"` (warm-up, then the peak learning rate to the end:
            the accuracy after step t of a run does not depend on its budget,
            so checkpoints inside one run are short runs; the benchmark's).
        layer_lr_scales: `{layer name: factor}`: the learning rate (and the
            decoupled weight decay) of those layers' weights is multiplied by
            the factor (0 freezes them without a new trace); see `ScaledAdamW`.

    Returns:
        The model, compiled; labels must be one-hot (see `train`).
    """
    if schedule not in ("cosine", "constant"):
        raise ValueError(f"schedule must be 'cosine' or 'constant', got {schedule!r}.")
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
        alpha=1.0 if schedule == "constant" else 0.0,  # alpha=1: no decay after warm-up
    )
    optimizer = keras.optimizers.AdamW(schedule, weight_decay=weight_decay) \
        if not layer_lr_scales else \
        ScaledAdamW(schedule, weight_decay=weight_decay, layer_scales=layer_lr_scales)
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalCrossentropy(
            from_logits=True, label_smoothing=label_smoothing
        ),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
        jit_compile=DEFAULT_JIT_COMPILE if jit_compile is None else jit_compile,
    )
    return model


@keras.saving.register_keras_serializable(package="keras_learngene")
class ScaledAdamW(keras.optimizers.AdamW):
    """AdamW whose learning rate is scaled per layer (PyTorch's parameter
    groups, for Keras): a weight of a layer named in `layer_scales` moves
    with `factor * learning_rate`, and decays by `factor * learning_rate *
    weight_decay`. The layer is the first part of the weight's path, so in a
    descendant these are its top-level layers (`inherited_*`, `fresh_*`,
    `head_*`). Used by `train(inherited_lr_scale=...)`: inherited units
    fine-tune more gently than the fresh units and the head.

    Args:
        learning_rate: a float or schedule, as `AdamW`.
        layer_scales: `{layer name: factor >= 0}`; other layers use 1.
        **kwargs: `keras.optimizers.AdamW` arguments.
    """

    def __init__(self, learning_rate=0.001, layer_scales=None, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.layer_scales = {str(k): float(v) for k, v in (layer_scales or {}).items()}
        bad = {k: v for k, v in self.layer_scales.items() if not v >= 0}
        if bad:
            raise ValueError(f"layer_scales={bad!r}: every factor must be 0 or more.")

    def build(self, var_list):
        super().build(var_list)
        self._scales = [self.layer_scales.get(v.path.split("/")[0], 1.0) for v in var_list]

    def _scale_of(self, variable):
        return self._scales[self._get_variable_index(variable)]

    def update_step(self, gradient, variable, learning_rate):
        scale = self._scale_of(variable)
        super().update_step(gradient, variable, learning_rate * scale if scale != 1.0
                            else learning_rate)

    def _apply_weight_decay(self, variables):
        if self.weight_decay is None:
            return
        for variable in variables:
            if self._use_weight_decay(variable):
                factor = keras.ops.cast(self.learning_rate * self.weight_decay
                                        * self._scale_of(variable), variable.dtype)
                variable.assign(variable - variable * factor)

    def get_config(self):
        return {**super().get_config(), "layer_scales": dict(self.layer_scales)}


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
        flip: with `augment`, also flip horizontally (False for characters
            and digits, whose mirror image is another shape).
    """

    def __init__(self, x, y, num_classes, batch_size=64, seed=0, augment=True, multiple_of=1,
                 steps=None, flip=True, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y = x, keras.utils.to_categorical(y, num_classes).astype("float32")
        self.batch_size = batch_size
        self.multiple_of = multiple_of
        self.steps = steps
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(x))
        self.flip = flip
        self.augment = (
            keras.Sequential(
                [
                    # float32 whatever the dtype policy: batches leave as numpy
                    keras.layers.RandomTranslation(0.1, 0.1, fill_mode="constant", seed=seed,
                                                   dtype="float32"),
                ]
                + ([keras.layers.RandomFlip("horizontal", seed=seed + 1, dtype="float32")]
                   if flip else [])
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
    """Wall time of each epoch (the first one includes tracing / compiling) and of
    the first step (tracing / compiling and one step)."""

    async_safe = True  # a batch hook must not turn off Keras' asynchronous dispatch

    def __init__(self):
        super().__init__()
        self.seconds = []
        self.first_step = None

    def on_train_begin(self, logs=None):
        self._begin = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if self.first_step is None:
            self.first_step = time.perf_counter() - self._begin

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


class TrainingDivergedError(RuntimeError):
    """Training diverged: the loss or the weights became NaN / inf.

    Raised by `train` (and by anything that calls `DivergenceGuard.check`)
    after `fit` stopped. The model's weights are left as they were when
    training stopped (not restored): they may hold NaN / inf, so do not save
    or use the model; build or load it again and retrain.

    Attributes:
        epoch: the epoch (0-based) where it was noticed.
        step: the batch (0-based, within `epoch`) where it was noticed, or
            `None` when only the final weights were found non-finite.
        loss: the non-finite loss (`None` when the weights were the problem).
        last_finite_loss: the last finite loss Keras reported before (its
            running mean over the epoch), or `None` if there was none.
        bad_weights: paths of the non-finite weights (may be empty).
    """

    def __init__(self, message, *, epoch=None, step=None, loss=None, last_finite_loss=None,
                 bad_weights=()):
        super().__init__(message)
        self.epoch, self.step, self.loss = epoch, step, loss
        self.last_finite_loss = last_finite_loss
        self.bad_weights = list(bad_weights)


def _finite_value(value):
    """Whether a number or array holds only finite values (one reduction)."""
    value = np.asarray(value)
    if value.dtype.kind != "f":
        return True
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(np.sum(value, dtype=np.float64))) or bool(
            np.isfinite(value).all())


class DivergenceGuard(keras.callbacks.Callback):
    """Stops `fit` when the loss becomes NaN / inf; `check()` then raises.

    After every batch it reads the loss Keras reports; the first non-finite
    one sets `model.stop_training`. At the end of training it also checks that
    every weight is finite. `check()` (call it after `fit` returns) raises
    `TrainingDivergedError` if either went wrong. `train` always adds one;
    any loop of the library that calls `model.fit` itself adds one too:

    ```python
    guard = DivergenceGuard(learning_rate=1e-3)
    model.fit(batches, epochs=1, callbacks=[guard, ...])
    guard.check()  # raises TrainingDivergedError
    ```

    It only reads the logs and sets a flag, so Keras may run it off the main
    thread (`async_safe`), and the loss values do not stall the device.

    Args:
        learning_rate: the peak learning rate, quoted in the message.
        stop: stop training at the first non-finite loss (default). With
            `False` training runs on, and `check()` / `error` still report it.
        check_weights: check the weights at the end of training.
    """

    async_safe = True

    def __init__(self, learning_rate=None, stop=True, check_weights=True):
        super().__init__()
        self.learning_rate = learning_rate
        self.stop = stop
        self.check_weights = check_weights
        self._lock = threading.Lock()
        self._reset()

    def _reset(self):
        self._epoch = 0
        self._bad = None  # ((epoch, batch), loss) of the first non-finite loss
        self._finite = None  # ((epoch, batch), loss) of the last finite one before it
        self._bad_weights = []

    def on_train_begin(self, logs=None):
        self._reset()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        loss = float(np.asarray(loss, dtype=np.float64).sum())
        at = (self._epoch, batch)
        with self._lock:  # batches may be reported out of order (async dispatch)
            if np.isfinite(loss):
                if (self._finite is None or at > self._finite[0]) and (
                        self._bad is None or at < self._bad[0]):
                    self._finite = (at, loss)
            elif self._bad is None or at < self._bad[0]:
                self._bad = (at, loss)
                if self.stop and self.model is not None:
                    self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.check_weights and self.model is not None:
            self._bad_weights = [w.path for w in self.model.weights
                                 if not _finite_value(keras.ops.convert_to_numpy(w))]

    @property
    def error(self):
        """The `TrainingDivergedError` to raise, or `None` if training was sound."""
        if self._bad is None and not self._bad_weights:
            return None
        last = None if self._finite is None else self._finite[1]
        last_text = "none" if last is None else f"{last:.6g}"
        lr = "" if self.learning_rate is None else f" (it was {self.learning_rate:g})"
        if self._bad is not None:
            (epoch, step), loss = self._bad
            what = (f"the loss became {loss} at epoch {epoch + 1}, step {step + 1} "
                    f"(last finite loss: {last_text})")
        else:
            epoch = self._epoch
            step = loss = None
            what = f"the weights became NaN/inf by the end of epoch {epoch + 1}"
        if self._bad_weights:
            shown = ", ".join(self._bad_weights[:3])
            more = len(self._bad_weights) - 3
            what += (f"; {len(self._bad_weights)} weight(s) hold NaN/inf ({shown}"
                     f"{f', and {more} more' if more > 0 else ''})")
        message = (
            f"Training diverged: {what}. Lower the learning rate{lr}, check the inputs for "
            "NaN/inf, and check the labels. The model's weights were left as they were when "
            "training stopped (they may be NaN/inf): do not save this model; rebuild or "
            "reload it before training again."
        )
        return TrainingDivergedError(message, epoch=epoch, step=step, loss=loss,
                                     last_finite_loss=last, bad_weights=self._bad_weights)

    def check(self):
        """Raises `TrainingDivergedError` if training diverged; call after `fit`."""
        error = self.error
        if error is not None:
            raise error


class StepCheckpoints(keras.callbacks.Callback):
    """Evaluates the model after given optimizer steps of one `train` run:
    a learning curve from one run, not a run per point (each `train` call
    starts a new schedule, warm-up included). With `train(schedule=
    "constant")` the accuracy after step t is that of a t-step run.

    ```python
    at = StepCheckpoints([0, 50, 100], task.x_test, task.y_test)
    train(model, task, steps=100, callbacks=[at])
    at.accuracy  # {0: 0.25, 50: ..., 100: ...}
    ```

    Args:
        steps: the steps to evaluate after, counted from the run's start
            (0: before the first step).
        x: evaluation images.
        y: their int labels.
        batch_size: evaluation batch size.

    Attributes:
        accuracy: `{step: top-1 accuracy}`, filled as the run goes.
    """

    def __init__(self, steps, x, y, batch_size=1024):
        super().__init__()
        self.steps = {int(s) for s in steps}
        if not self.steps or min(self.steps) < 0:
            raise ValueError(f"steps={steps!r} must hold steps of 0 or more.")
        self.x, self.y, self.batch_size = x, np.asarray(y), batch_size
        self.accuracy = {}

    def on_train_begin(self, logs=None):
        self._step, self.accuracy = 0, {}
        if 0 in self.steps:
            self._evaluate()

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        if self._step in self.steps:
            self._evaluate()

    def _evaluate(self):
        if hasattr(self.model, "jax_state_sync"):  # JAX keeps the state outside the model
            self.model.jax_state_sync()
        logits = self.model.predict(self.x, batch_size=self.batch_size, verbose=0)
        self.accuracy[self._step] = float(np.mean(np.argmax(logits, -1) == self.y))


def train(
    model,
    x,
    y=None,
    *,
    epochs=None,
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
    flip=None,
    warmup_fraction=0.1,
    inherited_lr_scale=1.0,
    steps_per_epoch=None,
    steps=None,
    schedule="cosine",
):
    """Trains `model` on `(x, y)` with the library's recipe.

    `x` may also be a `keras_learngene.datasets.Task` (its training split,
    flipped or not as the task says), or a whole labelled data set (with
    `y=None`): a tuple `(x, y)`, a `tf.data.Dataset` of `(x, y)` batches or
    examples, a `keras.utils.PyDataset`, or a generator / iterable of `(x, y)`
    batches. It is read once and collected into arrays (one-hot labels become
    ints, uint8 images float32 in `[0, 1]`), so that the recipe's seeded
    shuffling and
    augmentation apply to it as to arrays; it must be finite and fit in memory.
    An endless one (Keras' `while True` generator, `dataset.repeat()`) needs
    `steps_per_epoch`, as in `keras.Model.fit`: its first `steps_per_epoch`
    batches are collected and make each epoch. `validation_data` takes the
    same kinds.

    Args:
        model: a `keras.Model` that outputs logits, one per class.
        x: float32 images `(N, H, W, C)`, or a labelled data set (see above).
        y: int labels `(N,)` in `[0, num_classes)`; None when `x` is a data set.
        epochs: passes over the data (default 5; not with `steps`).
        batch_size: examples per optimizer step.
        learning_rate: peak learning rate.
        weight_decay: AdamW weight decay.
        label_smoothing: label smoothing.
        augment: random translation (up to 10%) and, where `flip` says so,
            horizontal flips (Keras preprocessing layers).
        seed: seeds Keras, numpy and the batch order.
        validation_data: optional `(x_val, y_val)` with int labels, or a
            labelled data set of any kind `x` takes.
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
        flip: with `augment`, also flip horizontally. `None` (the default):
            what the data set says, `Task.flip` for a `Task` (Fashion-MNIST
            and CIFAR yes, glyphs and digits no: their mirror image is another
            character), and no flips for arrays and other data sets.
        warmup_fraction: share of the steps spent warming the learning rate
            up linearly from 1% of its peak (0: none, for a descendant whose
            head was fitted by `keras_learngene.head_start`, where a warm-up
            protects nothing).
        inherited_lr_scale: factor of the learning rate (and weight decay)
            of a descendant's inherited layers (`inherited_layers`: its
            inherited stem, units and copies); fresh units and the head train
            at `learning_rate`. 1 trains every layer alike; 0 freezes them.
        steps_per_epoch: with a data set `x` (`y=None`), the batches of it
            read (the first ones it yields); they are collected and trained on
            for `epochs` epochs. Needed for an endless source.
        steps: a budget of optimizer steps instead of `epochs`: the run is
            exactly `steps` batches drawn from reshuffled passes over the
            data, and the schedule warms up and decays over them. Calling
            `train` again starts a new schedule (warm-up included), so do not
            train in chunks to read accuracy along the way: pass a
            `StepCheckpoints` callback, which evaluates inside the one run.
        schedule: `"cosine"` (decay to 0 at the last step) or `"constant"`
            (the peak rate after warm-up, so the model after step t of a long
            run is the model a t-step run gives; see `compile_model`).

    Returns:
        A dict with the Keras `history`, `seconds` of training, the
        training throughput `images_per_second` (compiling included), the
        steady throughput after the first step `steady_images_per_second` and
        the time compiling took `compile_seconds` (the first step's time less
        a later step's; both None after a single step), the wall time of each
        epoch `epoch_seconds` (the first includes compiling) and where it ran: `backend`,
        `devices`, `distribution` and `precision` (the model's dtype policy).

    Raises:
        TrainingDivergedError: the loss or the weights became NaN / inf
            (training stops at the first non-finite loss). The model's weights
            are left as they were then, possibly NaN: do not save it.
        ValueError: NaN / inf images, labels that are not integers in
            `[0, num_classes)`, mismatched `x` / `y`, images of the wrong rank
            or shape, a model not built under `distribution` /
            `mixed_precision`, a batch size the devices do not divide, or a
            distribution on a backend other than JAX.

    Example:
    ```python
    task = keras_learngene.datasets.load_task("embedded", classes="base")
    model = keras_learngene.models.build_preset("vit_tiny", num_classes=6)
    result = keras_learngene.training.train(model, task.x_train, task.y_train, epochs=1)
    ```
    """
    num_classes = model.output_shape[-1]
    if y is None and isinstance(x, Task):
        flip = x.flip if flip is None else flip
        x, y = x.x_train, x.y_train
    if steps is not None:
        if epochs is not None or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps={steps!r} must be a positive int, and epochs "
                             f"(={epochs!r}) left at None: steps replaces it.")
    epochs = 1 if steps is not None else 5 if epochs is None else epochs
    if steps_per_epoch is not None and (y is not None or _data.is_arrays(x)):
        raise ValueError(
            f"steps_per_epoch={steps_per_epoch!r} applies to a data set x (a generator, "
            "tf.data.Dataset or PyDataset, with y=None); with arrays an epoch is one pass over "
            "them: leave it at None."
        )
    if steps_per_epoch is not None and (not isinstance(steps_per_epoch, int)
                                        or steps_per_epoch < 1):
        raise ValueError(f"steps_per_epoch={steps_per_epoch!r} must be a positive int.")
    if y is None:  # a data set: collected, so the shuffled, augmented recipe applies
        x, y = _data.to_arrays(
            x, x_rank=_data.example_rank(model), name="x", max_batches=steps_per_epoch,
            endless_fix="Pass steps_per_epoch=N to train on its first N batches, as "
            "keras.Model.fit does.")
    if validation_data is not None and not _data.is_arrays(validation_data):
        validation_data = _data.to_arrays(validation_data, x_rank=_data.example_rank(model),
                                          name="validation_data")
    x, y = check_dataset(x, y, num_classes, input_shape=_input_shape(model))
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
    if not 0 <= warmup_fraction < 1:
        raise ValueError(f"warmup_fraction={warmup_fraction!r} must be in [0, 1).")
    if not inherited_lr_scale >= 0:
        raise ValueError(f"inherited_lr_scale={inherited_lr_scale!r} must be 0 or more.")
    scales = None
    if inherited_lr_scale != 1.0:
        scales = {layer.name: inherited_lr_scale for layer in model.layers
                  if names.source_of(layer.name) is not None}
        if not scales:
            raise ValueError(
                f"inherited_lr_scale={inherited_lr_scale!r} applies to a descendant's "
                f"inherited layers, and model {model.name!r} has none (no layer named "
                "inherited_* or copy<n>_*); leave it at 1."
            )
    keras.utils.set_random_seed(seed)
    with distribute.scope(distribution if explicit else None, precision):
        batches = AugmentedBatches(x, y, num_classes, batch_size, seed=seed, augment=augment,
                                   multiple_of=replicas, steps=steps, flip=bool(flip))
        if not batches.examples:
            raise ValueError(f"{len(x)} examples cannot be split over {replicas} devices.")
        compile_model(
            model,
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            total_steps=epochs * len(batches),
            label_smoothing=label_smoothing,
            warmup_fraction=warmup_fraction,
            layer_lr_scales=scales,
            schedule=schedule,
        )
        if validation_data is not None:
            x_val, y_val = check_dataset(
                *validation_data, num_classes, where=("validation_data[0]", "validation_data[1]"),
                input_shape=_input_shape(model))
            validation_data = (x_val, keras.utils.to_categorical(y_val, num_classes))
            if replicas > 1:  # split over the devices like the training batches
                validation_data = AugmentedBatches(x_val, y_val, num_classes, batch_size,
                                                   augment=False, multiple_of=replicas)
        timer = _EpochTimer()
        guard = DivergenceGuard(learning_rate=learning_rate)
        start = time.perf_counter()
        history = model.fit(
            batches,
            epochs=epochs,
            validation_data=validation_data,
            callbacks=[timer, guard] + list(callbacks or []),
            verbose=verbose,
        )
        seconds = time.perf_counter() - start
    guard.check()
    steps = epochs * len(batches)
    steady = compile_seconds = None
    if timer.first_step is not None and steps > 1:  # the steps after the first, compiled one
        rest = seconds - timer.first_step
        steady = epochs * batches.examples * (steps - 1) / steps / rest
        compile_seconds = max(timer.first_step - rest / (steps - 1), 0.0)
    return {
        "history": history.history,
        "seconds": seconds,
        "images_per_second": epochs * batches.examples / seconds,
        "steady_images_per_second": steady,
        "compile_seconds": compile_seconds,
        "epoch_seconds": timer.seconds,
        **distribute.describe_devices(distribution),
        "precision": model.dtype_policy.name,
    }


class _Untracked:
    """Holds a model without Keras tracking it (lists and tuples are tracked)."""

    def __init__(self, model):
        self.model = model


class _Distiller(keras.Model):
    """`student`'s graph (the same layers, so training it trains `student`)
    with a loss that adds soft-label distillation from `teacher` to the
    compiled cross-entropy. The teacher is held outside Keras' tracking: its
    weights are neither trained nor part of this model's state."""

    def __init__(self, student, teacher, temperature, alpha):
        super().__init__(student.inputs, student.outputs, name=f"{student.name}_distilled")
        self._teacher = _Untracked(teacher)
        self.temperature, self.alpha = float(temperature), float(alpha)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        ce = super().compute_loss(x, y, y_pred, sample_weight, training=training)
        t = self.temperature
        teacher_logits = keras.ops.stop_gradient(
            keras.ops.cast(self._teacher.model(x, training=False), "float32"))
        log_p_teacher = keras.ops.log_softmax(teacher_logits / t, axis=-1)
        log_p_student = keras.ops.log_softmax(keras.ops.cast(y_pred, "float32") / t, axis=-1)
        kl = keras.ops.sum(keras.ops.exp(log_p_teacher) * (log_p_teacher - log_p_student), -1)
        kd = keras.ops.mean(kl) * t * t  # T^2 keeps the gradients' scale (Hinton et al.)
        return (1.0 - self.alpha) * ce + self.alpha * kd


def distill(student, teacher, x, y, *, temperature=4.0, alpha=0.5, **kwargs):
    """Trains `student` by soft-label knowledge distillation from `teacher`,
    with the library's recipe (`train`: the same optimizer, schedule,
    augmentation, data checks, divergence guard and distribution).

    The loss of a batch is
    `alpha * T^2 * KL(softmax(t / T) || softmax(s / T)) + (1 - alpha) * CE(y, s)`,
    where `s` and `t` are the student's and the teacher's logits on the same
    (augmented) images, `T` the temperature and `CE` the recipe's
    label-smoothed cross-entropy (Hinton et al., 2015). The teacher is called
    in inference mode and never trained.

    Args:
        student: a `keras.Model` (Functional) that outputs logits.
        teacher: a model that maps the same images to as many logits.
        x: float32 images; or a labelled data set (with `y=None`), as `train`.
        y: int labels, indices into both models' logits.
        temperature: `T` of the softened distributions (positive).
        alpha: weight of the distillation term, in `[0, 1]`.
        **kwargs: `train`'s keyword arguments (`epochs`, `batch_size`,
            `learning_rate`, `augment`, `seed`, `verbose`, ...).

    Returns:
        `train`'s result dict; the loss in its history is the combined loss.

    Raises:
        ValueError: the models' logits differ in number, a temperature that
            is not positive or an `alpha` outside `[0, 1]`; and whatever `train`
            raises (`TrainingDivergedError` on a NaN loss).
    """
    if not temperature > 0 or not 0 <= alpha <= 1:
        raise ValueError(f"temperature={temperature!r} must be positive and alpha={alpha!r} "
                         "in [0, 1].")
    if teacher.output_shape[-1] != student.output_shape[-1]:
        raise ValueError(
            f"The teacher {teacher.name!r} outputs {teacher.output_shape[-1]} logits, the "
            f"student {student.name!r} {student.output_shape[-1]}; distillation needs the same "
            "classes."
        )
    return train(_Distiller(student, teacher, temperature, alpha), x, y, **kwargs)


def evaluate(model, x, y=None, batch_size=1024):
    """Top-1 accuracy of a logits model on `(x, y)`, in large batches.

    Args:
        model: a `keras.Model` that outputs logits.
        x: float32 images, or (with `y=None`) a labelled data set of any kind
            `train` takes, streamed batch by batch (never collected; sources
            of batches are evaluated in their own batches).
        y: int labels; None when `x` is a data set.
        batch_size: evaluation batch size (large: eager backends are slow with
            small batches).

    Returns:
        Accuracy in [0, 1] as a float.

    Raises:
        ValueError: as `train` for `x` and `y`.
    """
    shape = model.output_shape
    num_classes = shape[-1] if isinstance(shape, tuple) else None
    if y is None:  # a data set: streamed, one batch at a time
        correct = total = 0
        for xb, yb in _data.iter_batches(x, batch_size, x_rank=_data.example_rank(model),
                                         name="x"):
            xb, yb = check_dataset(xb, yb, num_classes, input_shape=_input_shape(model))
            logits = keras.ops.convert_to_numpy(model.predict_on_batch(xb))
            correct += int(np.sum(np.argmax(logits, axis=-1) == yb))
            total += len(yb)
        return correct / total
    x, y = check_dataset(x, y, num_classes, input_shape=_input_shape(model))
    logits = model.predict(x, batch_size=batch_size, verbose=0)
    return float(np.mean(np.argmax(logits, axis=-1) == y))


def _input_shape(model):
    """The model's input shape `(None, ...)`, or `None` if it has several inputs."""
    try:
        shape = model.input_shape
    except (AttributeError, ValueError):  # a subclassed model that was never built
        return None
    return shape if isinstance(shape, tuple) else None
