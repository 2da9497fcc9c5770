"""Fashion-MNIST from local IDX files, and the small subset shipped in the package.

Nothing here downloads anything. The four IDX files are looked for, in order, in an explicit
`path`, the folder named by the environment variable `KLG_DATA_DIR`, the Keras cache
(`$KERAS_HOME/datasets/fashion-mnist` or `~/.keras/datasets/fashion-mnist`) and Debian's
`/usr/share/datasets/fashion-mnist/` (package `dataset-fashion-mnist`).
"""

import functools
import gzip
import importlib.resources
import os
import pathlib

import numpy as np

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
# Ancestry classes (Trouser, Dress, Sandal, Sneaker, Bag, Ankle boot) and the novel "tops"
# (T-shirt/top, Pullover, Coat, Shirt) that the ancestry never sees; see BENCHMARK.md.
BASE_CLASSES = (1, 3, 5, 7, 8, 9)
NOVEL_CLASSES = (0, 2, 4, 6)

# The same names Keras' own loader caches; each may also be stored uncompressed.
FASHION_MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
FASHION_MNIST_DEBIAN_DIR = pathlib.Path("/usr/share/datasets/fashion-mnist")
DATA_DIR_ENV = "KLG_DATA_DIR"

_IMAGES_MAGIC = 0x00000803  # IDX: unsigned bytes, 3 dimensions
_LABELS_MAGIC = 0x00000801  # IDX: unsigned bytes, 1 dimension


class DataNotFoundError(FileNotFoundError):
    """Raised when the Fashion-MNIST files are in none of the places searched."""


def _file_in(folder, name):
    """Returns `folder/name` (gzip) or `folder/name` without `.gz`, or None."""
    for candidate in (folder / name, folder / name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def _has_all_files(folder):
    return all(_file_in(folder, name) is not None for name in FASHION_MNIST_FILES)


def _candidates(folder):
    """A user-given folder may hold the files itself or in a `fashion-mnist` subfolder."""
    folder = pathlib.Path(folder).expanduser()
    return [folder, folder / "fashion-mnist"]


def _keras_cache_dir():
    keras_home = os.environ.get("KERAS_HOME") or pathlib.Path.home() / ".keras"
    return pathlib.Path(keras_home) / "datasets" / "fashion-mnist"


def _not_found(searched, reason):
    places = "\n".join(f"  - {place}" for place in searched)
    files = ", ".join(FASHION_MNIST_FILES)
    return DataNotFoundError(
        f"Fashion-MNIST not found: {reason}. Searched:\n{places}\n"
        "To get the files without internet access at run time, either:\n"
        "  - on Debian/Ubuntu: sudo apt-get install dataset-fashion-mnist "
        "(installs them in /usr/share/datasets/fashion-mnist/), or\n"
        f"  - put the four files ({files}; gzipped or not) in a folder and pass "
        f"path=<folder> or set the environment variable {DATA_DIR_ENV}=<folder>."
    )


def find_fashion_mnist(path=None):
    """Finds the folder that holds the four Fashion-MNIST IDX files.

    The places searched, in order: `path`; the folder in the environment variable
    `KLG_DATA_DIR`; the Keras cache `$KERAS_HOME/datasets/fashion-mnist` (or
    `~/.keras/datasets/fashion-mnist`); `FASHION_MNIST_DEBIAN_DIR`. A folder given by `path`
    or `KLG_DATA_DIR` may hold the files directly or in a `fashion-mnist` subfolder, and if
    it holds neither, the search stops there rather than silently using other data.

    Args:
        path: optional folder (str or `os.PathLike`) to use instead of searching.

    Returns:
        The `pathlib.Path` of the folder holding all four files.

    Raises:
        DataNotFoundError: (a `FileNotFoundError`) if `path` or `KLG_DATA_DIR` lacks the
            files, or no place searched has all four. The message lists every place
            searched and how to get the files.

    Example:

    >>> find_fashion_mnist()  # doctest: +SKIP
    PosixPath('/usr/share/datasets/fashion-mnist')
    """
    for given, origin in ((path, "path"), (os.environ.get(DATA_DIR_ENV), DATA_DIR_ENV)):
        if given is None or given == "":
            continue
        folders = _candidates(given)
        for folder in folders:
            if _has_all_files(folder):
                return folder
        raise _not_found(folders, f"{origin}={str(given)!r} does not hold all four files")
    searched = [_keras_cache_dir(), FASHION_MNIST_DEBIAN_DIR]
    for folder in searched:
        if _has_all_files(folder):
            return folder
    searched = [f"{DATA_DIR_ENV} (not set)", *searched]
    raise _not_found(searched, "no folder searched holds all four files")


def _read_idx(file, magic):
    """Parses one IDX file of unsigned bytes, checking its magic number and size."""
    raw = file.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as error:
            raise ValueError(f"Corrupt gzip file {file}: {error}") from error
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"Corrupt IDX file {file}: {len(raw)} bytes, shorter than its header.")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise ValueError(
            f"Corrupt IDX file {file}: magic number 0x{found:08x}, expected 0x{magic:08x}."
        )
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape))
    if len(raw) != expected:
        raise ValueError(
            f"Corrupt IDX file {file}: {len(raw)} bytes, expected {expected} for shape {shape}."
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _read_split(folder, images_name, labels_name):
    images = _read_idx(_file_in(folder, images_name), _IMAGES_MAGIC)
    labels = _read_idx(_file_in(folder, labels_name), _LABELS_MAGIC).astype(np.int64)
    if len(images) != len(labels):
        raise ValueError(
            f"Corrupt Fashion-MNIST in {folder}: {len(images)} images in {images_name} "
            f"but {len(labels)} labels in {labels_name}."
        )
    if labels.size and labels.max() >= len(FASHION_MNIST_CLASSES):
        raise ValueError(f"Corrupt {labels_name} in {folder}: label {labels.max()} > 9.")
    labels.setflags(write=False)
    return images, labels


@functools.lru_cache(maxsize=4)
def _load_folder(folder, _stamp):
    # `_stamp` (sizes and mtimes) is part of the cache key so rewritten files are re-read.
    train = _read_split(folder, *FASHION_MNIST_FILES[:2])
    test = _read_split(folder, *FASHION_MNIST_FILES[2:])
    return train, test


def load_fashion_mnist(path=None):
    """Loads the full Fashion-MNIST data set from local IDX files.

    The folder is found by `find_fashion_mnist(path)`. Parsed arrays are cached in-process per
    folder and are returned read-only: copy them before writing to them.

    Args:
        path: optional folder holding the four IDX files; see `find_fashion_mnist`.

    Returns:
        `((x_train, y_train), (x_test, y_test))`: uint8 images of shape `(N, 28, 28)` and
        int64 labels in `0..9`, with N = 60000 for train and 10000 for test.

    Raises:
        DataNotFoundError: if the files are not found (the message says how to get them).
        ValueError: if a file is corrupt (bad gzip, magic number or size).

    Example:

    >>> (x_train, y_train), (x_test, y_test) = load_fashion_mnist()  # doctest: +SKIP
    >>> x_train.shape, y_test.shape  # doctest: +SKIP
    ((60000, 28, 28), (10000,))
    """
    folder = find_fashion_mnist(path).resolve()
    files = [_file_in(folder, name) for name in FASHION_MNIST_FILES]
    stamp = tuple((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    return _load_folder(folder, stamp)


@functools.lru_cache(maxsize=1)
def load_embedded():
    """Loads the small Fashion-MNIST subset shipped inside the package.

    A deterministic, class-balanced sample of the real data (seed 0): 500 training images per
    class (5,000) drawn from the training file and 150 test images per class (1,500) drawn
    from the test file, in their original order. `scripts/make_embedded_subset.py`
    regenerates it. It needs no files outside the package, so it is the default data of the
    first command a new user runs. Arrays are cached and read-only.

    Returns:
        `((x_train, y_train), (x_test, y_test))`: uint8 images `(N, 28, 28)` and int64
        labels in `0..9`.

    Example:

    >>> (x_train, y_train), (x_test, y_test) = load_embedded()
    >>> x_train.shape, x_test.shape
    ((5000, 28, 28), (1500, 28, 28))
    """
    resource = importlib.resources.files(__package__) / "data" / "fashion_mnist_subset.npz"
    with resource.open("rb") as f, np.load(f) as npz:
        arrays = {key: npz[key] for key in ("x_train", "y_train", "x_test", "y_test")}
    for key in ("y_train", "y_test"):
        arrays[key] = arrays[key].astype(np.int64)
    for array in arrays.values():
        array.setflags(write=False)
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])
