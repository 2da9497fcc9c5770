"""Per-variable gradients of a classification loss, one function per backend.

Keras 3 has no backend-neutral gradient API, so this module is the one place
in the library that calls TensorFlow, JAX or PyTorch directly; each branch is
exercised by the test suite on its own backend.
"""

import keras
import numpy as np


def loss_gradients(model, variables, x, y_onehot):
    """Gradients of the mean categorical cross-entropy (from logits) of
    `model(x)` against `y_onehot`, with respect to `variables`.

    Args:
        model: a `keras.Model` that outputs logits.
        variables: the trainable `keras.Variable`s to differentiate.
        x: a batch of inputs (numpy).
        y_onehot: one-hot labels (numpy).

    Returns:
        A list of numpy arrays, one per variable.
    """
    backend = keras.backend.backend()
    loss_fn = keras.losses.CategoricalCrossentropy(from_logits=True)
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = loss_fn(y_onehot, model(x, training=False))
        grads = tape.gradient(loss, [v.value for v in variables])
    elif backend == "torch":
        import torch

        loss = loss_fn(y_onehot, model(x, training=False))
        grads = torch.autograd.grad(loss, [v.value for v in variables], allow_unused=True)
    elif backend == "jax":
        import jax

        trainable = model.trainable_variables
        positions = {id(v): i for i, v in enumerate(trainable)}
        non_trainable = [v.value for v in model.non_trainable_variables]

        def loss_of(values):
            logits, _ = model.stateless_call(values, non_trainable, x, training=False)
            return loss_fn(y_onehot, logits)

        all_grads = jax.grad(loss_of)([v.value for v in trainable])
        grads = [all_grads[positions[id(v)]] for v in variables]
    else:
        raise NotImplementedError(
            f"Gradients are not implemented for the {backend!r} backend; use tensorflow, "
            "jax or torch."
        )
    return [
        np.zeros(v.shape, "float32") if g is None else np.asarray(keras.ops.convert_to_numpy(g))
        for v, g in zip(variables, grads)
    ]
