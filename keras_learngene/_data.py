"""Users' data in every place data goes.

The library's functions take labelled image data in any of these kinds:

- NumPy arrays, as a tuple `(x, y)` (or anything with a shape that
  `np.asarray` converts: JAX / PyTorch / TensorFlow tensors);
- a `tf.data.Dataset` of `(x, y)` batches or of single `(x, y)` examples;
- a `keras.utils.PyDataset` of `(x, y)` batches;
- a Python generator or other iterable of `(x, y)` batches (a list of
  batches, a PyTorch `DataLoader`, ...).

`iter_batches` streams any of them as numpy `(x, y)` batches, and
`to_arrays` collects them (or their first `limit` examples) into two arrays.
Either way `y` comes back as 1-D int64 labels (one-hot labels are converted
with `argmax`) and uint8 images as float32 in `[0, 1]`, as the library's own
loaders give them. TensorFlow is never imported here: a `tf.data.Dataset` is
recognised by its type's module and its `as_numpy_iterator` method.
"""

import itertools
import os

import numpy as np

_KINDS = (
    "a tuple (x, y) of arrays, a tf.data.Dataset or keras.utils.PyDataset of (x, y) batches, "
    "or a generator / iterable of (x, y) batches"
)


_ENDLESS_FIX = "Make it end, e.g. itertools.islice(generator, n_batches)."


def _has_shape(obj):
    return isinstance(obj, np.ndarray) or (hasattr(obj, "shape") and hasattr(obj, "__len__"))


def _is_arrays(data):
    """`(x, y)` of two array-likes of the same length."""
    return (isinstance(data, tuple | list) and len(data) == 2
            and all(_has_shape(a) and not isinstance(a, tuple | list) for a in data))


def _is_tf_dataset(data):
    module = type(data).__module__ or ""
    return module.startswith("tensorflow") and hasattr(data, "as_numpy_iterator")


def _is_py_dataset(data):
    try:
        from keras.utils import PyDataset
    except ImportError:  # pragma: no cover - keras is a dependency
        return False
    return isinstance(data, PyDataset)


def kind_of(data, name="data"):
    """The kind of `data`: `"arrays"`, `"tf.data"`, `"py_dataset"` or
    `"iterable"`; raises `TypeError` for anything else (naming it `name`)."""
    if _is_arrays(data):
        return "arrays"
    if _is_tf_dataset(data):
        return "tf.data"
    if _is_py_dataset(data):
        return "py_dataset"
    if _has_shape(data):  # images without labels
        raise ValueError(_unlabelled_or_unknown(data, name))
    if isinstance(data, str | bytes | dict):
        raise TypeError(_unlabelled_or_unknown(data, name))
    if hasattr(data, "__iter__") or hasattr(data, "__next__"):
        return "iterable"
    raise TypeError(_unlabelled_or_unknown(data, name))


def _unlabelled_or_unknown(data, name="data"):
    if _has_shape(data):
        return (f"{name} is a single array of shape {tuple(data.shape)}: labelled data is "
                f"needed. Pass {name}=(x, y), or {_KINDS}.")
    return f"{name} must be {_KINDS}; got {type(data).__name__}."


def _labels(y, name):
    """1-D int64 labels from int labels or one-hot rows."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    elif y.ndim == 2:
        y = np.argmax(y, axis=-1)
    if y.ndim != 1:
        raise ValueError(
            f"{name}: labels must be 1-D ints or 2-D one-hot rows, got labels of shape "
            f"{tuple(y.shape)}."
        )
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise ValueError(f"{name}: labels must be whole numbers, got {y[:5].tolist()}...")
    elif y.dtype.kind not in "iub":
        raise ValueError(f"{name}: labels must be integers, got dtype {y.dtype}.")
    return y.astype("int64")


def _images(x, name, x_rank):
    x = np.asarray(x)
    if x.dtype == np.uint8:
        x = x.astype("float32") / np.float32(255)
    elif x.dtype.kind not in "fiub":
        raise ValueError(f"{name}: images must be numbers, got dtype {x.dtype}.")
    if x_rank is not None and x.ndim != x_rank + 1:
        raise ValueError(
            f"{name}: a batch of images must have rank {x_rank + 1} (batch, "
            f"{'x'.join(['...'] * x_rank)}), the model's inputs with a batch axis; got a "
            f"batch of shape {tuple(x.shape)}."
        )
    if x.ndim < 2:
        raise ValueError(f"{name}: a batch of images needs a batch axis, got shape {x.shape}.")
    return x


def _split_element(element, name):
    """`(x, y)` of one element a data source yields."""
    if isinstance(element, dict) or not isinstance(element, tuple | list):
        shape = getattr(element, "shape", None)
        what = f"an array of shape {tuple(shape)}" if shape is not None else \
            type(element).__name__
        raise ValueError(
            f"{name} yields {what}, not (x, y) pairs: labelled data is needed (a "
            "tf.data.Dataset of images only, for instance, has no labels; build it from "
            "(images, labels), or use image_dataset_from_directory's default labels)."
        )
    if len(element) == 3:
        raise ValueError(
            f"{name} yields (x, y, sample_weight) triples; sample weights are not used here, "
            "so yield (x, y) pairs."
        )
    if len(element) != 2:
        raise ValueError(f"{name} yields tuples of {len(element)} items, not (x, y) pairs.")
    return element


def _batch(element, name, x_rank, batched):
    """`(x, y, is_batch)` from a yielded element: a numpy batch, and whether
    the element was a batch (True) or one example (False, given a batch
    axis). `batched` says what the source yields, or None for unknown (then
    the shapes decide: an element with a scalar label is one example, and so
    is, given `x_rank`, an `x` of that rank whose labels are not one per row:
    a one-hot label)."""
    x, y = _split_element(element, name)
    x, y = np.asarray(x), np.asarray(y)
    if batched is None:
        if x_rank is not None:  # one example: its rank, and no label per row of it
            batched = not (x.ndim == x_rank and (y.ndim == 0 or len(y) != len(x)))
        else:  # without x_rank, only a scalar label says "one example"
            batched = y.ndim != 0
    if not batched:
        x, y = x[None], y[None]
    x, y = _images(x, name, x_rank), _labels(y, name)
    if len(x) != len(y):
        raise ValueError(
            f"{name} yields a batch of {len(x)} images with {len(y)} labels; they must match."
        )
    return x, y, batched


def _tf_batched(data):
    """Whether a tf.data.Dataset yields batches, from its element spec:
    `None` (unknown) unless the label spec is a scalar (single examples)."""
    spec = getattr(data, "element_spec", None)
    if isinstance(spec, tuple | list) and len(spec) == 2:
        shape = getattr(spec[1], "shape", None)
        if shape is not None and len(shape) == 0:
            return False
        x_shape = getattr(spec[0], "shape", None)
        if x_shape is not None and len(x_shape) and x_shape[0] is None:
            return True
    return None


def _tf_infinite(data):
    try:
        return int(data.cardinality()) == -1  # tf.data.INFINITE_CARDINALITY
    except Exception:  # noqa: BLE001 - not a dataset after all
        return False


def _raw_elements(data, name):
    """`(elements, batched)`: an iterator over what `data` yields."""
    kind = kind_of(data, name)
    if kind == "tf.data":
        return data.as_numpy_iterator(), _tf_batched(data)
    if kind == "py_dataset":
        count = getattr(data, "num_batches", None)
        if count is None and hasattr(data, "__len__"):
            count = len(data)
        indices = range(count) if count is not None else itertools.count()
        return (data[i] for i in indices), True
    return iter(data), None


def iter_batches(data, batch_size=256, *, x_rank=None, name="data", same_shape=False,
                 max_batches=None):
    """Streams `data` as numpy `(x, y)` batches.

    Args:
        data: any of the kinds in this module's docstring.
        batch_size: batch size for arrays and for sources of single examples;
            sources of batches are passed on batch by batch as they come.
        x_rank: the rank of one example (3 for `(H, W, C)` images); given,
            batches of another rank are refused, and a source yielding
            examples of that rank is batched.
        name: the argument's name, for error messages.
        same_shape: refuse a batch whose images differ in shape from the
            first batch's (single examples gathered into a batch must agree
            anyway), naming both batches.
        max_batches: read at most this many elements of a source (Keras'
            `steps_per_epoch`); arrays are read whole.

    Yields:
        `(x, y)`: float images (uint8 scaled to `[0, 1]`) and int64 labels.

    Raises:
        TypeError: `data` is none of the kinds.
        ValueError: unlabelled data (a single array, or a source yielding
            images only), mis-shaped elements, or no example at all.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size!r}.")
    if kind_of(data, name) == "arrays":
        x, y = data
        if len(x) != len(y):
            raise ValueError(f"{name}: x has {len(x)} examples but y has {len(y)}.")
        if not len(x):
            raise ValueError(f"{name} is empty: it holds no examples.")
        x = np.asarray(x)
        _images(x[:1], name, x_rank)
        _labels(np.asarray(y)[:1], name)
        for start in range(0, len(x), batch_size):
            yield (_images(x[start:start + batch_size], name, x_rank),
                   _labels(np.asarray(y[start:start + batch_size]), name))
        return
    elements, batched = _raw_elements(data, name)
    pending, count, first = [], 0, None
    for index, element in enumerate(itertools.islice(elements, max_batches)):
        x, y, is_batch = _batch(element, name, x_rank, batched)
        if first is None:
            first = (index, x.shape[1:])
        elif (same_shape or not is_batch) and x.shape[1:] != first[1]:
            what = "batch" if is_batch else "example"
            raise ValueError(
                f"{name} yields images of different shapes: {what} {index} holds images of "
                f"shape {x.shape[1:]}, but {what} {first[0]} held {first[1]} (counting from 0). "
                "Every batch must hold images of one shape: resize them to one size."
            )
        count += len(x)
        if not is_batch:  # single examples: gather them into batches
            pending.append((x, y))
            if len(pending) == batch_size:
                yield _concat(pending)
                pending = []
            continue
        if not len(x):
            continue
        if pending:
            yield _concat(pending)
            pending = []
        yield x, y
    if pending:
        yield _concat(pending)
    if not count:
        raise ValueError(f"{name} is empty: it yielded no examples.")


def _concat(batches):
    return (np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches]))


def to_arrays(data, limit=None, *, x_rank=None, name="data", max_batches=None,
              endless_fix=_ENDLESS_FIX):
    """Collects `data` (or its first `limit` examples, or `max_batches`
    batches) into numpy arrays.

    A finite data set is needed when neither bounds it: an infinite
    `tf.data.Dataset` (`.repeat()`) or `PyDataset` is refused; a generator
    that never ends (Keras' `while True` idiom) cannot be told from a long
    one, so it is refused once its images fill half the machine's memory
    (`collect_limit()`; concatenating them would need the other half).

    Args:
        data: any of the kinds in this module's docstring.
        limit: the most examples to collect; None for all of them.
        x_rank: the rank of one example (see `iter_batches`).
        name: the argument's name, for error messages.
        max_batches: the most elements of a source to read (see
            `iter_batches`); None for all of them.
        endless_fix: what the endless-source message tells the user to do.

    Returns:
        `(x, y)`: float images (uint8 scaled to `[0, 1]`) and int64 labels.

    Raises:
        TypeError: `data` is none of the kinds.
        ValueError: unlabelled, mis-shaped, empty or infinite data.

    Example:
    ```python
    x, y = to_arrays(tf.data.Dataset.from_tensor_slices((images, labels)).batch(32))
    ```
    """
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive int or None, got {limit!r}.")
    if limit is None and max_batches is None:
        if _is_tf_dataset(data) and _tf_infinite(data):
            raise ValueError(f"{name} is an infinite tf.data.Dataset (repeated); pass a "
                             "finite one, e.g. without .repeat() or with .take(n).")
        if _is_py_dataset(data) and getattr(data, "num_batches", 0) is None:
            raise ValueError(f"{name} is a PyDataset without a length (num_batches is None); "
                             "give it a __len__ so that it ends.")
    if _is_arrays(data):
        x, y = data
        if len(x) != len(y):
            raise ValueError(f"{name}: x has {len(x)} examples but y has {len(y)}.")
        if not len(x):
            raise ValueError(f"{name} is empty: it holds no examples.")
        stop = len(x) if limit is None else min(limit, len(x))
        return _images(np.asarray(x[:stop]), name, x_rank), _labels(np.asarray(y[:stop]), name)
    xs, ys, count, held = [], [], 0, 0
    most = collect_limit() if limit is None and max_batches is None else None
    for x, y in iter_batches(data, batch_size=256 if limit is None else min(limit, 256),
                             x_rank=x_rank, name=name, same_shape=True,
                             max_batches=max_batches):
        if limit is not None and count + len(x) > limit:
            x, y = x[:limit - count], y[:limit - count]
        xs.append(x)
        ys.append(y)
        count += len(x)
        held += x.nbytes
        if limit is not None and count >= limit:
            break
        if most is not None and held > most:
            raise ValueError(
                f"{name} has yielded {count:,} images ({held / 2**30:.3g} GiB, more than half "
                "this machine's memory) and has not ended: is it an endless generator (Keras' "
                f"`while True` idiom)? {endless_fix}"
            )
    return np.concatenate(xs), np.concatenate(ys)


def collect_limit():
    """The most bytes of images `to_arrays` collects from a source of unknown
    length: half the machine's memory (8 GiB where that is unknown)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (AttributeError, ValueError, OSError):  # not on Windows
        return 8 * 2**30


def resolve(x, y=None, *, x_rank=None, name="x"):
    """`(x, y)` arrays for a function taking `x, y=None`: `x` and `y` as
    they are when `y` is given, otherwise `to_arrays(x)`."""
    if y is not None:
        return x, y
    return to_arrays(x, x_rank=x_rank, name=name)


def is_arrays(data):
    """Whether `data` is a tuple `(x, y)` of two arrays."""
    return _is_arrays(data)


def example_rank(model):
    """The rank of one input example of `model` (3 for `(H, W, C)` images),
    or None when it has several inputs or is not built."""
    try:
        shape = model.input_shape
    except (AttributeError, ValueError):
        return None
    return len(shape) - 1 if isinstance(shape, tuple) else None
