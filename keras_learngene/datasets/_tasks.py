"""Tasks: class splits, K-shot sampling and preprocessing, in pure numpy.

Sampling uses `np.random.default_rng(seed)` only, so a task drawn with a given seed holds the
same images on every Keras backend.
"""

import dataclasses
import operator

import numpy as np

from keras_learngene.datasets import _cifar, _digits, _fashion_mnist, _glyphs

DATASETS = ("fashion_mnist", "embedded", "digits", "glyphs", "cifar_fs")
# the data sets whose images may be flipped horizontally (`Task.flip`): clothes and
# CIFAR's objects; a mirrored character or digit is another shape
FLIPPED = ("fashion_mnist", "embedded", "cifar_fs")


def _check_classes(classes, y):
    """Returns `classes` as a tuple of ints after checking them against the labels `y`."""
    y = np.asarray(y)
    if y.size == 0:
        raise ValueError("Received no labels: y is empty.")
    try:
        classes = tuple(operator.index(c) for c in classes)
    except TypeError as error:
        raise ValueError(f"Classes must be integers, received classes={classes!r}.") from error
    if not classes:
        raise ValueError("Received classes=(): pass at least one class.")
    if len(set(classes)) != len(classes):
        raise ValueError(f"Received duplicate classes in classes={classes}.")
    low, high = int(y.min()), int(y.max())
    if low < 0:
        raise ValueError(f"Labels must be non-negative integers, y holds {low}.")
    present = set(np.unique(y).tolist())
    for c in classes:
        if not low <= c <= high:
            raise ValueError(f"Class {c} is out of range: labels in y run from {low} to {high}.")
        if c not in present:
            raise ValueError(f"Class {c} has no examples in y (labels present: {sorted(present)}).")
    return classes


def class_split(x, y, classes):
    """Keeps the examples of some classes and relabels them `0..len(classes) - 1`.

    Args:
        x: array of examples, first axis aligned with `y`.
        y: integer labels, shape `(N,)`.
        classes: sequence of distinct labels to keep; `classes[i]` becomes label `i`.

    Returns:
        `(x_sub, y_sub)`: the kept examples in their original order and their new int64
        labels.

    Raises:
        ValueError: if `classes` is empty, has duplicates or a label that is out of range or
            absent from `y`, or if `x` and `y` differ in length.

    Example:

    >>> y = np.array([5, 0, 9, 5])
    >>> x_sub, y_sub = class_split(np.arange(4), y, classes=(5, 9))
    >>> x_sub.tolist(), y_sub.tolist()
    ([0, 2, 3], [0, 1, 0])
    """
    x, y = np.asarray(x), np.asarray(y)
    if len(x) != len(y):
        raise ValueError(f"x and y differ in length: {len(x)} examples, {len(y)} labels.")
    classes = _check_classes(classes, y)
    keep = np.isin(y, classes)
    relabel = np.full(int(y.max()) + 1, -1, dtype=np.int64)
    relabel[list(classes)] = np.arange(len(classes))
    return x[keep], relabel[y[keep]]


def sample_shots(y, shots, seed, classes=None):
    """Draws `shots` examples of each class without replacement (K-shot sampling).

    Args:
        y: integer labels, shape `(N,)`.
        shots: number of examples per class (K), a positive int.
        seed: seed of `np.random.default_rng`; the same seed gives the same indices.
        classes: the classes to sample; all labels present in `y` if None.

    Returns:
        A sorted int64 array of `shots * len(classes)` indices into `y`.

    Raises:
        ValueError: if `shots <= 0`, the classes are invalid (see `class_split`), or a class
            has fewer than `shots` examples.

    Example:

    >>> y = np.array([0, 1, 0, 1, 0, 1])
    >>> idx = sample_shots(y, shots=2, seed=0)
    >>> np.bincount(y[idx]).tolist()
    [2, 2]
    """
    y = np.asarray(y)
    shots = operator.index(shots)
    if shots <= 0:
        raise ValueError(f"shots must be a positive number of examples per class, got {shots}.")
    classes = _check_classes(np.unique(y) if classes is None else classes, y)
    rng = np.random.default_rng(seed)
    picks = []
    for c in classes:
        members = np.flatnonzero(y == c)
        if len(members) < shots:
            raise ValueError(
                f"Class {c} has only {len(members)} examples, fewer than shots={shots}."
            )
        picks.append(rng.choice(members, size=shots, replace=False))
    return np.sort(np.concatenate(picks)).astype(np.int64)


def to_float_images(x):
    """Converts uint8 images to float32 NHWC images in `[0, 1]`.

    Args:
        x: uint8 array of shape `(N, H, W)` (grey) or `(N, H, W, C)`.

    Returns:
        A float32 array of shape `(N, H, W, C)` (C = 1 for grey input), equal to `x / 255`.

    Raises:
        ValueError: if `x` is not uint8 or not of rank 3 or 4.

    Example:

    >>> to_float_images(np.full((2, 28, 28), 255, np.uint8)).shape
    (2, 28, 28, 1)
    """
    x = np.asarray(x)
    if x.dtype != np.uint8:
        raise ValueError(f"Expected uint8 images, received dtype {x.dtype}.")
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise ValueError(f"Expected images of shape (N, H, W) or (N, H, W, C), got {x.shape}.")
    return x.astype(np.float32) / np.float32(255)


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Task:
    """One classification task: float32 NHWC images in `[0, 1]` and int64 labels.

    Attributes:
        name: short description, e.g. `"embedded/novel/10-shot/seed=0"`.
        x_train, y_train: training images `(N, H, W, C)` and labels in `0..num_classes - 1`.
        x_test, y_test: test images and labels.
        class_names: one name per label, in label order.
        flip: whether horizontal flips suit the images (`train`'s default):
            True for Fashion-MNIST and CIFAR, False for characters and digits,
            whose mirror image is another shape, and for the user's own data.

    Example:

    >>> task = load_task("embedded", classes="novel", shots=10)
    >>> task.num_classes, task.input_shape, len(task.x_train)
    (4, (28, 28, 1), 40)
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple
    flip: bool = False

    @property
    def num_classes(self):
        """Number of classes (the size of the head a model for this task needs)."""
        return len(self.class_names)

    @property
    def input_shape(self):
        """Shape of one image, `(H, W, C)`."""
        return tuple(self.x_train.shape[1:])

    def __repr__(self):
        names = self.class_names
        if len(names) > 6:  # a glyph task has hundreds
            names = f"{len(names)}: {', '.join(map(repr, names[:3]))}, ..., {names[-1]!r}"
        return (
            f"Task({self.name!r}, train={self.x_train.shape}, test={self.x_test.shape}, "
            f"classes={names})"
        )


def _load(dataset, path, split, options):
    """`(((x_train, y_train), (x_test, y_test)), class_names, named class sets)`."""
    if path is not None and dataset not in ("fashion_mnist", "cifar_fs"):
        raise ValueError(
            f"path= is only used by dataset='fashion_mnist' or 'cifar_fs', not {dataset!r}."
        )
    if options and dataset != "glyphs":
        raise TypeError(f"Options {sorted(options)} are only used by dataset='glyphs'.")
    if split != 0 and dataset != "glyphs":
        raise ValueError(f"split= is only used by dataset='glyphs', not {dataset!r}.")
    fashion_sets = dict(base=_fashion_mnist.BASE_CLASSES, novel=_fashion_mnist.NOVEL_CLASSES)
    if dataset == "fashion_mnist":
        data = _fashion_mnist.load_fashion_mnist(path)
        return data, _fashion_mnist.FASHION_MNIST_CLASSES, fashion_sets
    if dataset == "embedded":
        return _fashion_mnist.load_embedded(), _fashion_mnist.FASHION_MNIST_CLASSES, fashion_sets
    if dataset == "glyphs":
        glyphs = _glyphs.load_glyphs(**options)
        data = (glyphs.x_train, glyphs.y_train), (glyphs.x_test, glyphs.y_test)
        sets = dict(base=glyphs.base_classes(split), novel=glyphs.novel_classes(split))
        for script in glyphs.scripts:
            sets[f"script:{script}"] = glyphs.classes_of(script)
        return data, glyphs.class_names, sets
    if dataset == "cifar_fs":
        data, names = _cifar.load_cifar100(path)
        return data, names, _cifar.cifar_fs_classes(names)
    return _digits.load_digits(), tuple(str(d) for d in range(10)), {}


def load_task(
    dataset="fashion_mnist", classes=None, shots=None, seed=0, path=None, split=0, **options
):
    """Builds a task: some classes of a data set, optionally K training images per class.

    Args:
        dataset: one of `DATASETS`: `"fashion_mnist"` (the full data, see
            `load_fashion_mnist`), `"embedded"` (the subset shipped in the package),
            `"digits"` (scikit-learn's 8x8 digits, needs scikit-learn), `"glyphs"`
            (characters rendered from the installed fonts, see `load_glyphs`; needs Pillow)
            or `"cifar_fs"` (CIFAR-100 from a local copy with the CIFAR-FS split, see
            `load_cifar100`).
        classes: a sequence of original labels, or a name: `"all"` for every class (also
            None); `"base"` and `"novel"` for the Fashion-MNIST data sets (`BASE_CLASSES`,
            `NOVEL_CLASSES`), for glyphs (the scripts outside and inside fold `split`) and
            for CIFAR-FS (64 and 20 classes), `"val"` for CIFAR-FS (16 classes) and
            `"script:<name>"` for the classes of one glyph script. Labels are renumbered
            `0..len(classes) - 1` in this order.
        shots: None keeps every training image of those classes; an int K keeps K per class,
            drawn by `sample_shots` with `seed`. The test set always keeps all test images
            of those classes (for glyphs: the images in the held-out font families).
        seed: seed of the K-shot draw (unused when `shots` is None).
        path: folder of the IDX files for `"fashion_mnist"` (see `find_fashion_mnist`) or of
            CIFAR-100 for `"cifar_fs"` (see `find_cifar100`).
        split: which glyph scripts are novel, `0..NUM_SPLITS - 1` (glyphs only).
        **options: passed to `load_glyphs` (glyphs only), e.g. `scripts=[...]`.

    Returns:
        A `Task` with float32 NHWC images in `[0, 1]` and int64 labels.

    Raises:
        ValueError: for an unknown dataset or class name, invalid classes or shots.
        DataNotFoundError: if the files of `"fashion_mnist"` or `"cifar_fs"`, or the fonts
            of `"glyphs"`, are not found.
        ImportError: if `"digits"` is asked for without scikit-learn, or `"glyphs"` without
            Pillow.

    Example:

    >>> task = load_task("embedded", classes="novel", shots=10, seed=1)
    >>> task
    Task('embedded/novel/10-shot/seed=1', train=(40, 28, 28, 1), test=(600, 28, 28, 1), \
classes=('T-shirt/top', 'Pullover', 'Coat', 'Shirt'))
    """
    if dataset not in DATASETS:
        raise ValueError(f"Unknown dataset {dataset!r}; valid names: {', '.join(DATASETS)}.")
    ((x_train, y_train), (x_test, y_test)), names, sets = _load(dataset, path, split, options)
    named = {"all": tuple(range(len(names))), **sets}
    label = "all" if classes is None else classes
    if isinstance(label, str):
        if label not in named:
            valid = [n for n in named if not n.startswith("script:")]
            if any(n.startswith("script:") for n in named):
                valid.append("script:<name>")
            raise ValueError(
                f"Unknown classes={label!r} for dataset {dataset!r}; valid names: "
                f"{', '.join(valid)}, or a sequence of labels."
            )
        classes = named[label]
        if not classes:
            raise ValueError(f"classes={label!r} of dataset {dataset!r} holds no class.")
    else:
        label = "-".join(str(c) for c in classes)
    x_train, y_train = class_split(x_train, y_train, classes)
    x_test, y_test = class_split(x_test, y_test, classes)
    name = f"{dataset}/{label}"
    if dataset == "glyphs" and split != 0:
        name += f"/split={split}"
    if shots is not None:
        keep = sample_shots(y_train, shots, seed)
        x_train, y_train = x_train[keep], y_train[keep]
        name += f"/{shots}-shot/seed={seed}"
    return Task(
        name=name,
        x_train=to_float_images(x_train),
        y_train=y_train,
        x_test=to_float_images(x_test),
        y_test=y_test,
        class_names=tuple(names[c] for c in classes),
        flip=dataset in FLIPPED,
    )
