"""A head start for descendants: a head fitted to what they inherit.

A descendant's new head starts random, so before training it outputs noise
whatever its units compute, and the first steps of fine-tuning under that
head distort the inherited features (Kumar et al., ICLR 2022: linear probing
then fine-tuning). `head_start` gives it the head a linear probe would learn
on the descendant's own features, so a descendant starts where logistic
regression on its learngene's features ends:

1. `align_batchnorm`: every batch norm's moving statistics are moved to the
   new task's images while what the model computes in inference mode stays
   exactly the same (its scale and offset absorb the change). Training-mode
   batch norm then normalises by statistics close to the moving ones, so the
   first training steps start from the function the head was fitted to.
2. `fit_head`: multinomial logistic regression on the features that enter
   the head's last dense layer (inference mode), written into that layer.

With `inherit(..., fresh_init="identity")` the features are exactly the
learngene's, so the descendant starts as a linear probe on its learngene.
"""

import keras
import numpy as np

from keras_learngene._checks import check_dataset

__all__ = ["align_batchnorm", "fit_head", "head_start", "logistic_regression"]

# The regularisation of the fitted head, the same for every task and number of
# shots: scikit-learn's default (C = 1 on standardised features), so the head
# is the probe a user would fit with `LogisticRegression()`.
HEAD_C = 1.0


def _batchnorms(model):
    return [layer for layer in model._flatten_layers(include_self=False)
            if isinstance(layer, keras.layers.BatchNormalization)]


def align_batchnorm(model, x, batch_size=256):
    """Moves every batch norm's moving statistics to the statistics of its
    inputs on `x`, without changing what `model` computes in inference mode.

    A batch norm computes `gamma * (x - m) / sqrt(v + eps) + beta` in
    inference mode; with the statistics `(mu, s2)` of its inputs on `x`, it is
    re-parametrised to moving statistics `(mu, s2)`, scale
    `gamma * sqrt(s2 + eps) / sqrt(v + eps)` and offset
    `beta + gamma * (mu - m) / sqrt(v + eps)`: the same function, but
    training-mode normalisation by a batch of such images now gives about
    what inference mode does. The inputs are read in one inference-mode pass,
    so every batch norm sees what it sees in the unchanged model.

    Args:
        model: a `keras.Model` (its batch norms may sit inside its layers).
        x: images of the new task (any number; read in batches).
        batch_size: images per forward pass.

    Returns:
        The number of batch norms re-parametrised (those without a scale,
        `scale=False`, are left as they are).
    """
    norms = [n for n in _batchnorms(model) if n.gamma is not None]
    if not norms:
        return 0
    sums = {id(n): [0.0, 0.0, 0] for n in norms}
    originals = {}

    def recording(norm, call):
        def call_and_record(inputs, *args, **kwargs):
            values = np.asarray(keras.ops.convert_to_numpy(inputs), dtype=np.float64)
            values = np.moveaxis(values, norm.axis, -1).reshape(-1, values.shape[norm.axis])
            acc = sums[id(norm)]
            acc[0] = acc[0] + values.sum(0)
            acc[1] = acc[1] + (values * values).sum(0)
            acc[2] += len(values)
            return call(inputs, *args, **kwargs)
        return call_and_record

    for norm in norms:
        originals[id(norm)] = norm.__dict__.get("call")
        object.__setattr__(norm, "call", recording(norm, norm.call))
    try:
        for start in range(0, len(x), batch_size):
            model(x[start:start + batch_size], training=False)
    finally:
        for norm in norms:
            if originals[id(norm)] is None:
                object.__delattr__(norm, "call")
            else:
                object.__setattr__(norm, "call", originals[id(norm)])
    done = 0
    for norm in norms:
        total, squares, count = sums[id(norm)]
        if not count:
            continue  # not on the inference path (e.g. an unused layer)
        mu = total / count
        s2 = np.maximum(squares / count - mu * mu, 0.0)
        m = np.asarray(keras.ops.convert_to_numpy(norm.moving_mean), np.float64)
        v = np.asarray(keras.ops.convert_to_numpy(norm.moving_variance), np.float64)
        gamma = np.asarray(keras.ops.convert_to_numpy(norm.gamma), np.float64)
        beta = (np.zeros_like(gamma) if norm.beta is None
                else np.asarray(keras.ops.convert_to_numpy(norm.beta), np.float64))
        scale = gamma / np.sqrt(v + norm.epsilon)
        dtype = norm.moving_mean.dtype
        norm.moving_mean.assign(mu.astype(dtype))
        norm.moving_variance.assign(s2.astype(dtype))
        norm.gamma.assign((scale * np.sqrt(s2 + norm.epsilon)).astype(norm.gamma.dtype))
        if norm.beta is not None:
            norm.beta.assign((beta + scale * (mu - m)).astype(norm.beta.dtype))
        done += 1
    return done


def logistic_regression(features, labels, num_classes, c=HEAD_C, max_iter=500, tol=1e-8):
    """Multinomial logistic regression with an L2 penalty, by L-BFGS in NumPy.

    Minimises `0.5 * ||W||^2 + c * sum_i CE(softmax(f_i W + b), y_i)` (the
    bias is not penalised: scikit-learn's `LogisticRegression(C=c)`), on the
    features as given (standardise them first, as `fit_head` does).

    Args:
        features: `(N, D)` floats.
        labels: `(N,)` ints in `[0, num_classes)`.
        num_classes: number of classes (columns of `W`).
        c: inverse regularisation strength (positive).
        max_iter: L-BFGS iterations at most.
        tol: stop when the gradient's largest entry is below `tol` times the
            number of examples.

    Returns:
        `(W, b, iterations)`: `W` `(D, num_classes)` and `b` `(num_classes,)`.
    """
    f = np.asarray(features, np.float64)
    n, d = f.shape
    onehot = np.eye(num_classes)[np.asarray(labels)]

    def loss_grad(theta):
        w, b = theta[:d * num_classes].reshape(d, num_classes), theta[d * num_classes:]
        z = f @ w + b
        z = z - z.max(1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(1, keepdims=True))
        loss = 0.5 * np.sum(w * w) - c * np.sum(onehot * logp)
        r = c * (np.exp(logp) - onehot)
        return loss, np.concatenate([(w + f.T @ r).ravel(), r.sum(0)])

    theta = np.zeros(d * num_classes + num_classes)
    loss, grad = loss_grad(theta)
    history, iterations = [], 0
    while iterations < max_iter and np.abs(grad).max() > tol * max(n, 1):
        iterations += 1
        q = grad.copy()  # two-loop recursion over the last 10 pairs
        alphas = []
        for s, y, rho in reversed(history):
            a = rho * s @ q
            alphas.append(a)
            q -= a * y
        if history:
            s, y, _ = history[-1]
            q *= (s @ y) / (y @ y)
        for (s, y, rho), a in zip(history, reversed(alphas)):
            q += s * (a - rho * y @ q)
        direction = -q
        slope = grad @ direction
        if slope >= 0:  # not a descent direction: restart from the gradient
            history, direction, slope = [], -grad, -grad @ grad
        step = 1.0
        while True:  # backtracking (Armijo)
            new_theta = theta + step * direction
            new_loss, new_grad = loss_grad(new_theta)
            if new_loss <= loss + 1e-4 * step * slope or step < 1e-12:
                break
            step *= 0.5
        s, y = new_theta - theta, new_grad - grad
        if s @ y > 1e-12:
            history = (history + [(s, y, 1.0 / (s @ y))])[-10:]
        theta, loss, grad = new_theta, new_loss, new_grad
    return theta[:d * num_classes].reshape(d, num_classes), theta[d * num_classes:], iterations


def _head_layer(model):
    """The head's last dense layer: `head_dense` (the library's heads), else
    the model's last layer if it is a `Dense`."""
    try:
        return model.get_layer("head_dense")
    except ValueError:
        pass
    last = model.layers[-1] if model.layers else None
    if isinstance(last, keras.layers.Dense) and last.activation in (
            keras.activations.linear, None):
        return last
    raise ValueError(
        f"fit_head needs a model whose logits come from a linear Dense layer (a descendant's "
        f"'head_dense'); {model.name!r} ends in {type(last).__name__} {last and last.name!r}."
    )


def fit_head(model, x, y, *, c=HEAD_C, batch_size=256):
    """Fits the model's head to its own features: logistic regression on the
    inputs of its last dense layer, in inference mode, written into that layer.

    The features are standardised (mean 0, variance 1 per feature on `x`)
    before the regression and the standardisation is folded into the
    layer's kernel and bias, so the head computes exactly the fitted probe's
    logits. The regularisation is the same for every task (`HEAD_C`: C = 1),
    chosen without any test data.

    Args:
        model: a descendant (or any Functional model whose logits come from a
            linear `Dense`).
        x: float32 training images `(N, H, W, C)`.
        y: int labels `(N,)`; at least two classes.
        c: inverse L2 strength of the regression.
        batch_size: images per forward pass.

    Returns:
        A dict: `train_accuracy` of the fitted head on `x`, `iterations` of
        L-BFGS, `features` (their number) and `c`.

    Raises:
        ValueError: no images, a single class, labels the head cannot hold,
            or a model without a linear last `Dense`.
    """
    head = _head_layer(model)
    if not head.use_bias:
        raise ValueError(f"fit_head needs a head layer with a bias; {head.name!r} has none.")
    num_classes = int(head.units)
    if x is None or len(x) == 0:
        raise ValueError("fit_head needs training images; got none.")
    x, y = check_dataset(x, y, num_classes, input_shape=model.input_shape)
    if len(np.unique(y)) < 2:
        raise ValueError(
            f"fit_head needs images of at least two classes to fit a head; y holds only class "
            f"{int(y[0])}."
        )
    if not c > 0:
        raise ValueError(f"c={c!r} must be positive.")
    extractor = keras.Model(model.inputs, head.input)
    features = np.asarray(keras.ops.convert_to_numpy(
        extractor.predict(x, batch_size=batch_size, verbose=0)), np.float64)
    features = features.reshape(len(features), -1)
    mean, std = features.mean(0), features.std(0)
    std = np.where(std > 1e-6, std, 1.0)  # constant features carry nothing
    w, b, iterations = logistic_regression((features - mean) / std, y, num_classes, c)
    kernel, bias = w / std[:, None], b - (mean / std) @ w
    head.set_weights([np.asarray(a, dtype=head.kernel.dtype) for a in (kernel, bias)])
    predicted = np.argmax(features @ kernel + bias, axis=1)
    return {"train_accuracy": float(np.mean(predicted == y)), "iterations": int(iterations),
            "features": int(features.shape[1]), "c": float(c)}


def head_start(model, x, y, *, c=HEAD_C, align=True, batch_size=256):
    """Prepares a descendant to fine-tune from what it inherits: aligns its
    batch norms to the task's images (`align_batchnorm`) and fits its head to
    its features (`fit_head`). Call it after `inherit` and before `train`.

    Args:
        model: a descendant built by `inherit` (any strategy, any method).
        x: the task's training images.
        y: their int labels (at least two classes).
        c: inverse L2 strength of the head's regression.
        align: re-parametrise the batch norms first (no change in inference).
        batch_size: images per forward pass.

    Returns:
        `fit_head`'s dict, plus `batchnorms`: how many were aligned.

    Example:
    ```python
    descendant = keras_learngene.inherit(learngene, 3, num_classes=5, fresh_init="identity")
    keras_learngene.head_start(descendant, x_train, y_train)   # a linear probe, before any step
    keras_learngene.training.train(descendant, x_train, y_train, warmup_fraction=0.0)
    ```
    """
    if x is None or len(x) == 0:
        raise ValueError("head_start needs training images; got none.")
    head = _head_layer(model)  # checked before the batch norms change
    x, y = check_dataset(x, y, int(head.units), input_shape=model.input_shape)
    if len(np.unique(y)) < 2:
        raise ValueError(
            f"head_start needs images of at least two classes to fit a head; y holds only "
            f"class {int(y[0])}."
        )
    aligned = align_batchnorm(model, x, batch_size) if align else 0
    return {**fit_head(model, x, y, c=c, batch_size=batch_size), "batchnorms": aligned}
