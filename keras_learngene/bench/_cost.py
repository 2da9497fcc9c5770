"""The benchmark's cost figures, measured in the same run as its accuracies.

- condensing wall time against one ancestry epoch (the epoch is timed over
  `profile.cost_steps` steps of the ancestry's own recipe, then scaled to the
  number of steps of one epoch of the base classes);
- training images per second of a library descendant against the same
  architecture written by hand in plain Keras (same optimizer, loss, data and
  batch size), to show what the library's layers cost;
- bytes on disk of the learngene and of the descendant it initialises.
"""

import math
import os
import time

import keras
import numpy as np
from keras import layers, ops

from keras_learngene import training
from keras_learngene.learngene import save_atomically
from keras_learngene.models import VGGNet, VisionTransformer


class _ClassTokenAndPositions(layers.Layer):
    """Prepends a learned class token and adds learned position embeddings."""

    def build(self, input_shape):
        tokens, width = input_shape[1], input_shape[2]
        self.token = self.add_weight(shape=(1, 1, width), initializer="zeros")
        self.positions = self.add_weight(shape=(1, tokens + 1, width),
                                         initializer=keras.initializers.RandomNormal(0.02))

    def call(self, x):
        token = ops.broadcast_to(self.token, (ops.shape(x)[0], 1, x.shape[-1]))
        return ops.concatenate([token, x], axis=1) + self.positions


def plain_vit(image_shape, num_classes, patch_size, hidden_dim, num_heads, mlp_dim, depth):
    """A pre-norm ViT with a class token, written with plain Keras layers."""
    inputs = keras.Input(image_shape)
    x = layers.Conv2D(hidden_dim, patch_size, strides=patch_size)(inputs)
    x = layers.Reshape((-1, hidden_dim))(x)
    x = _ClassTokenAndPositions()(x)
    for _ in range(depth):
        y = layers.LayerNormalization(epsilon=1e-6)(x)
        x = x + layers.MultiHeadAttention(num_heads, hidden_dim // num_heads)(y, y)
        y = layers.LayerNormalization(epsilon=1e-6)(x)
        y = layers.Dense(mlp_dim, activation="gelu")(y)
        x = x + layers.Dense(hidden_dim)(y)
    x = layers.LayerNormalization(epsilon=1e-6)(x)
    x = layers.Lambda(lambda t: t[:, 0])(x)
    return keras.Model(inputs, layers.Dense(num_classes)(x), name="plain_vit")


def plain_vgg(image_shape, num_classes, filters, stem_filters, stem_pool):
    """Conv-BN-ReLU blocks (the stem optionally max-pooled), plain Keras."""
    inputs = keras.Input(image_shape)
    x = inputs
    for i, f in enumerate((stem_filters,) + tuple(filters)):
        x = layers.Conv2D(f, 3, padding="same", use_bias=False)(x)
        x = layers.ReLU()(layers.BatchNormalization(momentum=0.9)(x))
        if i == 0 and stem_pool:
            x = layers.MaxPooling2D(2)(x)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(num_classes)(x), name="plain_vgg")


def plain_twin(ancestry, depth, num_classes):
    """The plain-Keras twin of a `depth`-unit descendant of `ancestry`, or
    None for a family with no hand-written twin here."""
    config = ancestry.get_config()
    shape = tuple(config["image_shape"])
    if isinstance(ancestry, VisionTransformer) and config["use_class_token"]:
        return plain_vit(shape, num_classes, config["patch_size"], config["hidden_dim"],
                         config["num_heads"], config["mlp_dim"], depth)
    if isinstance(ancestry, VGGNet) and not config["pool_after"] and \
            len(set(config["filters"])) == 1:
        return plain_vgg(shape, num_classes, config["filters"][:depth],
                         config["stem_filters"], config.get("stem_pool", False))
    return None


def _images_per_second(model, x, y, steps, batch_size=64):
    """Training img/s of `fit` on arrays; compiled and warmed up on first use."""
    n = steps * batch_size
    x, y = x[:n], keras.utils.to_categorical(y[:n], model.output_shape[-1])
    if getattr(model, "train_function", None) is None:
        training.compile_model(model, total_steps=10 * steps)
        model.fit(x[:2 * batch_size], y[:2 * batch_size], batch_size=batch_size, verbose=0)
    start = time.perf_counter()
    model.fit(x, y, batch_size=batch_size, verbose=0, shuffle=False)
    return n / (time.perf_counter() - start)


def _ancestry_epoch_seconds(ancestry, x, y, steps, batch_size=64):
    model = keras.models.clone_model(ancestry)
    training.compile_model(model, total_steps=10 * steps)
    warm = training.AugmentedBatches(x, y, model.output_shape[-1], batch_size, steps=2)
    model.fit(warm, epochs=1, verbose=0)
    timed = training.AugmentedBatches(x, y, model.output_shape[-1], batch_size, steps=steps)
    start = time.perf_counter()
    model.fit(timed, epochs=1, verbose=0)
    per_step = (time.perf_counter() - start) / steps
    return per_step * math.ceil(len(x) / batch_size)


def measure(bench, arch):
    """The cost figures of one setting (a dict for `meta.json`): the focus
    method's condensing against one ancestry epoch, library against plain
    Keras training img/s, learngene against descendant bytes, the backend."""
    p = bench.profile
    bench.say(f"{arch.key}: measuring cost figures")
    ways = arch.setting.data.tasks_of()[0][0]
    learngene = arch.learngene(p.reference, 0)
    descendant, _ = arch.descendant(p.reference, 0, ways)
    path = os.path.join(bench.cache, f"descendant_{arch.key.replace('/', '_')}_"
                                     f"{arch.info['key']}_{p.reference}.keras")
    save_atomically(descendant, path, overwrite=True)
    x, y = arch.setting.base.x_train, arch.setting.base.y_train
    steps = max(1, min(p.cost_steps, len(x) // 64))
    cost = {
        "backend": keras.backend.backend(),
        "ancestry_epoch_seconds": round(_ancestry_epoch_seconds(arch.ancestry, x, y, steps), 1),
        "ancestry_epoch_images": len(x),
        "epoch_timed_steps": steps,
        "condense_method": p.reference,
        "condense_seconds": learngene.provenance["seconds"],
        "learngene_bytes": bench.meta["condense"][arch.key][p.reference]["learngene_bytes"],
        "learngene_params": learngene.count_params(),
        "descendant_bytes": os.path.getsize(path),
        "descendant_params": descendant.count_params(),
    }
    twin = plain_twin(arch.ancestry, p.k + p.n_fresh, ways)
    if twin is not None:
        yb = np.asarray(y) % ways  # labels in range; img/s does not depend on them
        library, plain = [], []
        for _ in range(3):  # alternate, so drifting machine load hits both alike; best of 3
            library.append(_images_per_second(descendant, x, yb, steps))
            plain.append(_images_per_second(twin, x, yb, steps))
        cost.update(
            library_images_per_second=round(max(library), 1),
            plain_keras_images_per_second=round(max(plain), 1),
            plain_keras_params=twin.count_params(),
            overhead_batch_size=64, overhead_timed_steps=steps,
        )
    return cost
