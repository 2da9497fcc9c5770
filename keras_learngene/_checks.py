"""Checks of the data users hand the library: images and int labels.

Each check raises a `ValueError` (or `TypeError` for a wrong kind of object) that
names the argument the user passed (`where`), quotes the offending value and says
what to do. They are vectorised numpy and cheap: the finiteness check of float
images is one float64 sum (NaN and inf propagate through it), and only when that
sum is not finite does it locate the bad values.

Used by `keras_learngene.training.train` / `evaluate` and by condensing's probe
data; other modules call them as `from keras_learngene._checks import check_images`.
"""

import numpy as np

__all__ = ["check_dataset", "check_images", "check_labels"]


def _describe_position(index):
    return "[" + ", ".join(str(int(i)) for i in index) + "]"


def _first_nonfinite(arr):
    """(count, index tuple of the first non-finite value) of a float array."""
    bad = ~np.isfinite(arr)
    count = int(np.count_nonzero(bad))
    first = np.unravel_index(int(np.argmax(bad)), arr.shape)
    return count, first


def check_images(x, where="x", input_shape=None):
    """Checks a batch of images (or any model inputs) and returns it as a numpy array.

    Args:
        x: array-like `(N, ...)`, e.g. float32 images `(N, H, W, C)`.
        where: the name of the argument, for the messages (`"x"`,
            `"validation_data[0]"`, `"data[0]"`, ...).
        input_shape: the model's input shape including the batch axis, e.g.
            `(None, 28, 28, 1)`; `None` entries are free. When given, the rank
            of `x` and every known size must match.

    Returns:
        `x` as a numpy array (not copied when it already is one).

    Raises:
        TypeError: `x` is not numeric.
        ValueError: `x` has no example axis, the wrong rank or size, or holds
            NaN / inf values (the message gives how many, and the first one's
            position).
    """
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"`{where}` must be a numeric array of images, got dtype {arr.dtype} "
            f"(from {type(x).__name__}); convert it with np.asarray({where}, dtype='float32')."
        )
    if arr.ndim < 2:
        raise ValueError(
            f"`{where}` must be a batch of images (examples, height, width, channels), got "
            f"shape {arr.shape}. A single image needs a batch axis: {where}[None]."
        )
    if input_shape is not None:
        expected = tuple(input_shape)
        if arr.ndim != len(expected):
            hint = (" Add a channel axis: x[..., None]."
                    if arr.ndim + 1 == len(expected) and expected[-1] == 1 else "")
            raise ValueError(
                f"`{where}` has shape {arr.shape} (rank {arr.ndim}) but the model takes inputs "
                f"of shape {expected} (rank {len(expected)}).{hint}"
            )
        if any(e is not None and e != s for e, s in zip(expected[1:], arr.shape[1:])):
            raise ValueError(
                f"`{where}` holds examples of shape {arr.shape[1:]} but the model takes "
                f"{tuple(expected[1:])}; resize or convert the images."
            )
    if arr.dtype.kind == "f" and arr.size:
        # One float64 reduction, no temporary of x's size: finite iff every value is
        # (a finite float32 sum cannot overflow float64; a float64 one rarely might, and
        # is then re-checked exactly below).
        with np.errstate(over="ignore", invalid="ignore"):
            total = np.sum(arr, dtype=np.float64)
        if not np.isfinite(total):
            count, first = _first_nonfinite(arr)
            if count:
                raise ValueError(
                    f"`{where}` contains {count} NaN/inf value(s) out of {arr.size} "
                    f"(shape {arr.shape}); the first is {float(arr[first])!r} at "
                    f"{where}{_describe_position(first)} (example {int(first[0])}). Images must "
                    "be finite: fix or drop those examples, e.g. "
                    f"keep = np.isfinite({where}).reshape(len({where}), -1).all(axis=1)."
                )
    return arr


def check_labels(y, num_classes=None, where="y"):
    """Checks int class labels and returns them as an int64 array of shape `(N,)`.

    Accepts integer arrays, and float arrays whose values are all whole numbers
    (`2.0`); shape `(N,)` or `(N, 1)`.

    Args:
        y: array-like of class indices.
        num_classes: when given, every label must lie in `[0, num_classes)`.
        where: the name of the argument, for the messages.

    Returns:
        The labels, int64, shape `(N,)`.

    Raises:
        TypeError: `y` is not numeric.
        ValueError: one-hot or otherwise shaped labels, non-integer values
            (including NaN / inf), or labels out of range.
    """
    arr = np.asarray(y)
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"`{where}` must hold integer class labels, got dtype {arr.dtype} "
            f"(from {type(y).__name__})."
        )
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        hint = (f" They look one-hot; pass np.argmax({where}, axis=-1)."
                if arr.ndim == 2 else "")
        raise ValueError(
            f"`{where}` must be int class labels of shape (N,), got shape {arr.shape}.{hint}"
        )
    if arr.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            bad = ~(np.isfinite(arr) & (arr == np.round(arr)))
        count = int(np.count_nonzero(bad))
        if count:
            first = int(np.argmax(bad))
            raise ValueError(
                f"`{where}` must hold integer class labels, but {count} of {arr.size} are not "
                f"whole numbers; the first is {float(arr[first])!r} at {where}[{first}]. Pass "
                "class indices 0, 1, 2, ..., not probabilities or scores."
            )
    arr = arr.astype(np.int64, copy=False)
    _check_range(arr, num_classes, where)
    return arr


def _check_range(labels, num_classes, where):
    if num_classes is None or not labels.size:
        return
    low, high = labels.min(), labels.max()
    if low < 0 or high >= num_classes:
        first = int(np.argmax((labels < 0) | (labels >= num_classes)))
        raise ValueError(
            f"Labels must be in [0, {num_classes}) for a model with {num_classes} outputs; "
            f"got labels from {low} to {high} in `{where}` (the first out of range is "
            f"{labels[first]} at {where}[{first}]). Renumber the classes 0..n-1, or build "
            "the model with one output per class."
        )


def check_dataset(x, y, num_classes=None, where=("x", "y"), input_shape=None):
    """`check_images(x)`, `check_labels(y)` and their lengths; returns `(x, y)`.

    Args:
        x: images, see `check_images`.
        y: labels, see `check_labels`.
        num_classes: the model's number of outputs, or `None`.
        where: the names of the two arguments, for the messages.
        input_shape: the model's input shape (see `check_images`), or `None`.

    Raises:
        ValueError: as `check_images` / `check_labels`, or `x` and `y` hold
            different numbers of examples.
    """
    x_name, y_name = where
    x = check_images(x, x_name, input_shape=input_shape)
    y = check_labels(y, None, y_name)
    if len(x) != len(y):
        raise ValueError(
            f"{x_name} has {len(x)} examples but {y_name} has {len(y)}; they must match."
        )
    _check_range(y, num_classes, y_name)
    return x, y
