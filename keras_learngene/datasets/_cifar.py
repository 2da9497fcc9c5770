"""CIFAR-100 from a local copy, and its CIFAR-FS class split (64 base / 16 val / 20 novel).

Nothing here downloads anything. The data is CIFAR-100's "python version": the archive
`cifar-100-python.tar.gz` or the folder `cifar-100-python/` it unpacks to (pickled dicts
`train`, `test` and `meta`), as Keras' own `keras.datasets.cifar100.load_data` leaves it in
its cache. It is looked for in an explicit `path`, the folder named by `KLG_DATA_DIR`, then
the Keras cache (`$KERAS_HOME/datasets` or `~/.keras/datasets`).

The CIFAR-FS split is the one of Bertinetto et al., "Meta-learning with differentiable
closed-form solvers" (ICLR 2019): the 16 validation and 20 test ("novel") class names below,
and the other 64 classes as base. The names are checked against the file's
`fine_label_names`.
"""

import functools
import os
import pathlib
import pickle
import tarfile

import numpy as np

from keras_learngene.datasets._fashion_mnist import DATA_DIR_ENV, DataNotFoundError

CIFAR100_ARCHIVE = "cifar-100-python.tar.gz"
CIFAR100_FOLDER = "cifar-100-python"

# CIFAR-100's fine labels, in label order (alphabetical).
CIFAR100_CLASSES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle",
    "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle",
    "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch",
    "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox",
    "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom",
    "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road",
    "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake",
    "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank",
    "telephone", "television", "tiger", "tractor", "train", "trout", "tulip", "turtle",
    "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
)  # fmt: skip

CIFAR_FS_VAL = (
    "beaver", "beetle", "butterfly", "camel", "cattle", "crab", "crocodile", "flatfish", "lamp",
    "maple_tree", "motorcycle", "otter", "sea", "shark", "television", "tractor",
)  # fmt: skip
CIFAR_FS_NOVEL = (
    "baby", "bed", "bicycle", "chimpanzee", "fox", "leopard", "man", "pickup_truck", "plain",
    "poppy", "rocket", "rose", "snail", "sweet_pepper", "table", "telephone", "wardrobe",
    "whale", "woman", "worm",
)  # fmt: skip
CIFAR_FS_BASE = tuple(
    c for c in CIFAR100_CLASSES if c not in CIFAR_FS_VAL and c not in CIFAR_FS_NOVEL
)


def _keras_datasets_dir():
    keras_home = os.environ.get("KERAS_HOME") or pathlib.Path.home() / ".keras"
    return pathlib.Path(keras_home) / "datasets"


def _source_in(folder):
    """The CIFAR-100 folder or archive in `folder` (or `folder` itself), or None."""
    folder = pathlib.Path(folder).expanduser()
    if folder.is_file() and folder.name.endswith((".tar.gz", ".tgz", ".tar")):
        return folder
    for candidate in (folder, folder / CIFAR100_FOLDER):
        if all((candidate / name).is_file() for name in ("train", "test", "meta")):
            return candidate
    archive = folder / CIFAR100_ARCHIVE
    return archive if archive.is_file() else None


def find_cifar100(path=None):
    """Finds the local CIFAR-100 (python version): a `cifar-100-python/` folder or archive.

    The places searched, in order: `path`; `$KLG_DATA_DIR`; the Keras cache
    (`$KERAS_HOME/datasets` or `~/.keras/datasets`). A `path` or `KLG_DATA_DIR` without the
    data stops the search there.

    Returns:
        The `pathlib.Path` of the folder (holding `train`, `test`, `meta`) or the archive.

    Raises:
        DataNotFoundError: if none of the places holds it.
    """
    for given, origin in ((path, "path"), (os.environ.get(DATA_DIR_ENV), DATA_DIR_ENV)):
        if given is None or given == "":
            continue
        found = _source_in(given)
        if found is not None:
            return found
        raise _not_found([given], f"{origin}={str(given)!r} does not hold CIFAR-100")
    cache = _keras_datasets_dir()
    found = _source_in(cache)
    if found is not None:
        return found
    raise _not_found([f"{DATA_DIR_ENV} (not set)", cache], "no place searched holds it")


def _not_found(searched, reason):
    places = "\n".join(f"  - {place}" for place in searched)
    return DataNotFoundError(
        f"CIFAR-100 not found: {reason}. Searched:\n{places}\n"
        f"Put {CIFAR100_ARCHIVE} (or the {CIFAR100_FOLDER}/ folder it unpacks to) in "
        "~/.keras/datasets/, for example by running keras.datasets.cifar100.load_data() once "
        f"on a machine with internet access, or pass path=<folder> or set {DATA_DIR_ENV}. "
        "Nothing is downloaded here."
    )


def _read_pickles(source):
    names = ("train", "test", "meta")
    if source.is_dir():
        blobs = {name: (source / name).read_bytes() for name in names}
    else:
        blobs = {}
        with tarfile.open(source) as archive:
            for member in archive.getmembers():
                base = member.name.rsplit("/", 1)[-1]
                if base in names and member.isfile():
                    blobs[base] = archive.extractfile(member).read()
        missing = [n for n in names if n not in blobs]
        if missing:
            raise ValueError(f"Corrupt CIFAR-100 archive {source}: no {', '.join(missing)}.")
    return {name: pickle.loads(blob, encoding="bytes") for name, blob in blobs.items()}


def _split(batch, name, source):
    try:
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"fine_labels"], dtype=np.int64)
    except KeyError as error:
        raise ValueError(f"Corrupt CIFAR-100 {name} in {source}: no {error}.") from error
    if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(labels):
        raise ValueError(
            f"Corrupt CIFAR-100 {name} in {source}: data {data.shape}, {len(labels)} labels."
        )
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


@functools.lru_cache(maxsize=2)
def _load_source(source, _stamp):
    pickles = _read_pickles(source)
    names = tuple(
        n.decode() if isinstance(n, bytes) else str(n)
        for n in pickles["meta"].get(b"fine_label_names", ())
    )
    if len(names) != 100:
        raise ValueError(f"Corrupt CIFAR-100 meta in {source}: {len(names)} fine label names.")
    train = _split(pickles["train"], "train", source)
    test = _split(pickles["test"], "test", source)
    return (train, test), names


def load_cifar100(path=None):
    """Loads CIFAR-100 from a local copy (see `find_cifar100`); nothing is downloaded.

    Returns:
        `((x_train, y_train), (x_test, y_test)), class_names`: uint8 images `(N, 32, 32, 3)`,
        int64 fine labels `0..99` and the 100 fine label names of the file. Arrays are
        cached in-process and read-only.

    Raises:
        DataNotFoundError: if no local copy is found.
        ValueError: if the files are not CIFAR-100's python version.
    """
    source = find_cifar100(path).resolve()
    files = [source] if source.is_file() else [source / n for n in ("train", "test", "meta")]
    stamp = tuple((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    return _load_source(source, stamp)


def cifar_fs_classes(class_names):
    """The CIFAR-FS split as label tuples for the file's `class_names`.

    Returns:
        `{"base": 64 labels, "val": 16 labels, "novel": 20 labels}`.

    Raises:
        ValueError: if a CIFAR-FS class name is missing from `class_names`.
    """
    index = {name: i for i, name in enumerate(class_names)}
    split = {"base": CIFAR_FS_BASE, "val": CIFAR_FS_VAL, "novel": CIFAR_FS_NOVEL}
    missing = sorted(n for names in split.values() for n in names if n not in index)
    if missing:
        raise ValueError(f"CIFAR-100 fine label names lack the CIFAR-FS classes {missing}.")
    return {key: tuple(index[n] for n in names) for key, names in split.items()}
