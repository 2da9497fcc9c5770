"""Users' data from files: image folders (one sub-folder per class) and `.npz` files.

Both give a `Task` (float32 NHWC images in `[0, 1]`, int64 labels, class names), split into
train and test images in pure numpy, so a given seed gives the same split on every backend.
Image folders are read with Pillow (`pip install pillow`), not with TensorFlow.
"""

import os
import re
import zipfile

import numpy as np

from keras_learngene.datasets._tasks import Task

# the extensions keras.utils.image_dataset_from_directory reads
IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
COLOR_MODES = {"grayscale": ("L", 1), "rgb": ("RGB", 3), "rgba": ("RGBA", 4)}
_CHANNELS_TO_MODE = {channels: mode for mode, (_, channels) in COLOR_MODES.items()}


def parse_image_size(text):
    """`"32x32"` (or `"32"`, or `(32, 32)`) -> `(32, 32)`, as `(height, width)`.

    Raises:
        ValueError: for anything else, quoting it.
    """
    if text is None:
        return None
    if isinstance(text, int):
        text = (text, text)
    if isinstance(text, str):
        match = re.fullmatch(r"\s*(\d+)\s*(?:[xX,]\s*(\d+)\s*)?", text)
        if not match:
            raise ValueError(f"Image size {text!r} must be HxW, e.g. '32x32', or one number.")
        height = int(match.group(1))
        text = (height, int(match.group(2) or height))
    size = tuple(int(v) for v in text)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"Image size {text!r} must be two positive ints (height, width).")
    return size


def _check_color_mode(color_mode):
    if color_mode is not None and color_mode not in COLOR_MODES:
        raise ValueError(
            f"color_mode={color_mode!r}; valid values: {', '.join(COLOR_MODES)} (or None to "
            "keep the images' own: grayscale when every image is grey, else rgb)."
        )


def _require_pillow():
    try:
        from PIL import Image
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Reading image folders needs Pillow: pip install pillow "
            "(or pip install 'keras-learngene[images]')."
        ) from error
    return Image


def _split(y, test_fraction, seed):
    """Train and test indices: `round(n * test_fraction)` of each class's `n`
    examples go to the test set (at least one stays for training)."""
    if not 0 <= test_fraction < 1:
        raise ValueError(f"test_fraction={test_fraction!r} must be in [0, 1).")
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        n_test = min(int(round(len(members) * test_fraction)), len(members) - 1)
        test.append(members[:n_test])
        train.append(members[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def _task(name, x, y, class_names, test_fraction, seed, x_test=None, y_test=None):
    if x_test is None:
        train, test = _split(y, test_fraction, seed)
        x, y, x_test, y_test = x[train], y[train], x[test], y[test]
    return Task(name=name, x_train=x, y_train=y.astype(np.int64), x_test=x_test,
                y_test=y_test.astype(np.int64), class_names=tuple(class_names))


def load_image_folder(path, image_size=None, color_mode=None, test_fraction=0.2, seed=0):
    """Loads a folder of images, one sub-folder per class, as a `Task`.

    The layout `keras.utils.image_dataset_from_directory` reads:
    `path/<class name>/<image>.png`; classes are the sub-folders in
    alphabetical order (label `i` is the `i`-th name), images are `.png`,
    `.jpg`, `.jpeg`, `.bmp` or `.gif` (first frame); other files, hidden files
    and files directly in `path` are ignored.

    Args:
        path: the folder.
        image_size: `(height, width)` (or `"HxW"`) to resize every image to
            (bilinear); default: keep the images' size, which must then be the
            same for all of them.
        color_mode: `"grayscale"`, `"rgb"` or `"rgba"`; default: grayscale
            when every image is grey, else rgb.
        test_fraction: fraction of each class's images held out as the test
            set (at least one image per class is kept for training); 0 for none.
        seed: seed of the split.

    Returns:
        A `Task` named `"folder:<name>"` with float32 images in `[0, 1]`.

    Raises:
        FileNotFoundError: `path` is not a folder.
        ValueError: no class sub-folder, a class without images, an image
            that cannot be read, or images of different sizes without
            `image_size`.
        ImportError: Pillow is not installed.

    Example:
    ```python
    task = load_image_folder("flowers/", image_size=(32, 32), color_mode="rgb")
    task.class_names, task.x_train.shape
    ```
    """
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"No image folder at {path!r}.")
    _check_color_mode(color_mode)
    image_size = parse_image_size(image_size)
    image_module = _require_pillow()
    classes = sorted(entry.name for entry in os.scandir(path)
                     if entry.is_dir() and not entry.name.startswith("."))
    if not classes:
        raise ValueError(
            f"Image folder {path!r} has no sub-folders: put the images of each class in a "
            "sub-folder named after the class (path/<class>/<image>.png)."
        )
    files, labels = [], []
    for label, name in enumerate(classes):
        found = sorted(
            os.path.join(root, file)
            for root, dirs, names in os.walk(os.path.join(path, name))
            for file in names
            if not file.startswith(".") and file.lower().endswith(IMAGE_EXTENSIONS)
        )
        if not found:
            raise ValueError(
                f"Class folder {os.path.join(path, name)!r} holds no images "
                f"({', '.join(IMAGE_EXTENSIONS)})."
            )
        files += found
        labels += [label] * len(found)
    images = []
    for file in files:
        try:
            with image_module.open(file) as image:
                image.load()
                images.append(image.copy())
        except Exception as error:  # noqa: BLE001 - any unreadable file
            raise ValueError(f"Cannot read image {file!r}: {error}") from error
    if color_mode is None:
        grey = all(image.mode in ("1", "L", "LA", "I", "I;16", "F") for image in images)
        color_mode = "grayscale" if grey else "rgb"
    mode, channels = COLOR_MODES[color_mode]
    arrays = []
    for image in images:
        image = image.convert(mode)
        if image_size is not None and image.size != (image_size[1], image_size[0]):
            image = image.resize((image_size[1], image_size[0]), image_module.BILINEAR)
        arrays.append(np.asarray(image, dtype=np.uint8).reshape(image.size[1], image.size[0],
                                                                channels))
    sizes = sorted({a.shape[:2] for a in arrays})
    if len(sizes) > 1:
        listed = ", ".join(f"{h}x{w}" for h, w in sizes[:4]) + (", ..." if len(sizes) > 4 else "")
        raise ValueError(
            f"Images in {path!r} have different sizes ({listed}); pass "
            "image_size=(height, width) to resize them to one."
        )
    x = np.stack(arrays).astype(np.float32) / np.float32(255)
    name = f"folder:{os.path.basename(os.path.normpath(path))}"
    return _task(name, x, np.asarray(labels, dtype=np.int64), classes, test_fraction, seed)


def _npz_images(x, file, key):
    x = np.asarray(x)
    if x.dtype.kind not in "fiu" and x.dtype != np.bool_:
        raise ValueError(f"{file!r}: {key!r} must hold numbers, got dtype {x.dtype}.")
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise ValueError(
            f"{file!r}: {key!r} must be images (N, H, W) or (N, H, W, C), got shape {x.shape}."
        )
    if x.dtype == np.uint8:
        return x.astype(np.float32) / np.float32(255)
    x = x.astype(np.float32)
    if x.size and (not np.all(np.isfinite(x)) or x.min() < -1e-6 or x.max() > 1 + 1e-6):
        raise ValueError(
            f"{file!r}: {key!r} holds float values outside [0, 1] (from {np.nanmin(x):g} to "
            f"{np.nanmax(x):g}, or NaN / inf); store uint8 images, or floats scaled to [0, 1]."
        )
    return x


def _npz_labels(y, file, key, count):
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        y = np.argmax(y, axis=-1)  # one-hot
    elif y.ndim == 2:
        y = y[:, 0]
    if y.ndim != 1 or y.dtype.kind not in "iuf":
        raise ValueError(
            f"{file!r}: {key!r} must be int labels (N,) or one-hot (N, classes), got shape "
            f"{y.shape} and dtype {y.dtype}."
        )
    if y.dtype.kind == "f" and not np.all(y == np.round(y)):
        raise ValueError(f"{file!r}: {key!r} must hold whole numbers.")
    if len(y) != count:
        raise ValueError(f"{file!r}: {key!r} has {len(y)} labels for {count} images.")
    y = y.astype(np.int64)
    if y.size and y.min() < 0:
        raise ValueError(f"{file!r}: {key!r} holds negative labels ({y.min()}).")
    return y


_SAVE_HINT = "write it with np.savez(path, x=images, y=labels)"


def _open_npz(path):
    """`np.load(path)` of an .npz file, or a ValueError that says what the file is instead."""
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(np.lib.format.MAGIC_PREFIX):
        raise ValueError(f"{path!r} is a single .npy array, not an .npz archive of 'x' and 'y'; "
                         f"{_SAVE_HINT}.")
    if not zipfile.is_zipfile(path):
        size = os.path.getsize(path)
        what = ("it starts like a zip archive but its end is missing: the file is truncated"
                if head.startswith(b"PK\x03\x04") else
                f"it is not a zip archive ({size} bytes, starting with {head!r})")
        raise ValueError(f"{path!r} is not a NumPy .npz file: {what}; {_SAVE_HINT}.")
    try:
        return np.load(path, allow_pickle=False)
    except Exception as error:  # noqa: BLE001 - a damaged zip archive
        raise ValueError(f"{path!r} is not a readable .npz file ({error}); "
                         f"{_SAVE_HINT}.") from error


def _npz_array(archive, path, key):
    """`archive[key]`, once its header is known to fit the file: a damaged or forged header
    (a claim of a terabyte in a few bytes) must not make numpy allocate what it claims."""
    name = f"{key}.npy"
    if name in archive.zip.namelist():
        info = archive.zip.getinfo(name)
        try:
            with archive.zip.open(info) as member:
                version = np.lib.format.read_magic(member)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, _, dtype = read_header(member)
                header = member.tell()
        except Exception as error:  # noqa: BLE001 - a damaged member
            raise ValueError(f"{path!r}: {key!r} is not a readable array ({error}); "
                             f"{_SAVE_HINT}.") from error
        if dtype.hasobject:
            raise ValueError(
                f"{path!r}: {key!r} holds Python objects (dtype object, e.g. images of different "
                "sizes), which are not loaded: unpickling them could run code. Store one numeric "
                "array: resize the images to one size, np.stack them as uint8 and "
                f"{_SAVE_HINT}."
            )
        claimed = int(np.prod(shape, dtype=object)) * dtype.itemsize  # a Python int: no overflow
        held = info.file_size - header
        if info.compress_type == zipfile.ZIP_STORED:
            held = min(held, os.path.getsize(path))
        elif info.compress_type == zipfile.ZIP_DEFLATED:
            held = min(held, 1032 * info.compress_size)  # deflate expands 1032-fold at most
        if claimed > held:
            raise ValueError(
                f"{path!r}: the header of {key!r} claims {_size(claimed)} (shape {shape}, "
                f"{dtype}) but the file holds at most {_size(max(held, 0))} of it: the file is "
                f"truncated or damaged; {_SAVE_HINT}."
            )
    try:
        return archive[key]
    except Exception as error:  # noqa: BLE001 - corrupt data, or too large for memory
        raise ValueError(f"{path!r}: cannot read {key!r} ({type(error).__name__}: {error}); "
                         f"{_SAVE_HINT}.") from error


def _size(count):
    """A byte count in words: 64 -> '64 bytes', 2.2e9 -> '2.2 GB'."""
    if count < 1000:
        return f"{count} bytes"
    for unit in ("kB", "MB", "GB", "TB"):
        count /= 1000
        if count < 1000 or unit == "TB":
            return f"{count:.3g} {unit}"


def load_npz(path, test_fraction=0.2, seed=0):
    """Loads images and labels from a NumPy `.npz` file as a `Task`.

    Keys: `x` (images `(N, H, W)` or `(N, H, W, C)`, uint8 or floats in
    `[0, 1]`) and `y` (int labels `(N,)` or one-hot `(N, classes)`);
    optionally `x_test` / `y_test` (then no split is made) and
    `class_names` (one string per label). Loaded with `allow_pickle=False`.

    Args:
        path: the `.npz` file (as written by `np.savez(path, x=..., y=...)`).
        test_fraction: without `x_test`, the fraction of each class held out
            for testing (see `load_image_folder`).
        seed: seed of that split.

    Returns:
        A `Task` named `"npz:<file name>"` with float32 images in `[0, 1]`.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a missing key, shapes or values that do not fit, an
            object array, a file that is no .npz archive, or an array whose
            header claims more bytes than the file holds (checked before
            anything is allocated), naming the file and the key.

    Example:
    ```python
    np.savez("mine.npz", x=images_uint8, y=labels)
    task = load_npz("mine.npz")
    ```
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No .npz file at {path!r}.")
    archive = _open_npz(path)
    with archive:
        keys = set(archive.files)
        for key in ("x", "y"):
            if key not in keys:
                raise ValueError(
                    f"{path!r} has no key {key!r} (it has: {', '.join(sorted(keys)) or 'none'}); "
                    "an .npz of images needs 'x' (images) and 'y' (labels), optionally "
                    "'x_test' and 'y_test'."
                )
        if ("x_test" in keys) != ("y_test" in keys):
            missing = "y_test" if "x_test" in keys else "x_test"
            raise ValueError(f"{path!r} has no key {missing!r}: give x_test and y_test together.")
        x = _npz_images(_npz_array(archive, path, "x"), path, "x")
        y = _npz_labels(_npz_array(archive, path, "y"), path, "y", len(x))
        if not len(x):
            raise ValueError(f"{path!r}: 'x' holds no images.")
        x_test = y_test = None
        if "x_test" in keys:
            x_test = _npz_images(_npz_array(archive, path, "x_test"), path, "x_test")
            y_test = _npz_labels(_npz_array(archive, path, "y_test"), path, "y_test",
                                 len(x_test))
            if x_test.shape[1:] != x.shape[1:]:
                raise ValueError(
                    f"{path!r}: 'x_test' images have shape {x_test.shape[1:]}, 'x' images "
                    f"{x.shape[1:]}; they must match."
                )
        high = int(max(y.max(), y_test.max() if y_test is not None and y_test.size else 0))
        if "class_names" in keys:
            names = np.asarray(_npz_array(archive, path, "class_names")).ravel()
            names = tuple(str(n) for n in names)
            if len(names) <= high:
                raise ValueError(
                    f"{path!r}: 'class_names' has {len(names)} names, but labels go up to {high}."
                )
        else:
            names = tuple(str(c) for c in range(high + 1))
    name = f"npz:{os.path.basename(path)}"
    return _task(name, x, y, names, test_fraction, seed, x_test, y_test)


def fit_images(x, image_size=None, channels=None):
    """Resizes float images `(N, H, W, C)` to `image_size` (bilinear) and
    converts them to `channels` channels (grey -> RGB repeats, RGB -> grey
    takes the luma `0.299 R + 0.587 G + 0.114 B`, as Pillow does).

    Returns:
        A float32 array; `x` itself when nothing changes.

    Raises:
        ValueError: for a channel conversion other than 1 <-> 3 or 4 -> 3.
    """
    x = np.asarray(x, dtype=np.float32)
    if not len(x):
        size = tuple(image_size or x.shape[1:3])
        return np.zeros((0,) + size + (channels or x.shape[-1],), np.float32)
    if channels is not None and channels != x.shape[-1]:
        have = x.shape[-1]
        if have == 1 and channels in (3, 4):
            x = np.repeat(x, 3, axis=-1)
            if channels == 4:
                x = np.concatenate([x, np.ones_like(x[..., :1])], axis=-1)
        elif have in (3, 4) and channels == 1:
            x = x[..., :3] @ np.array([[0.299], [0.587], [0.114]], dtype=np.float32)
        elif have == 4 and channels == 3:
            x = x[..., :3]
        else:
            raise ValueError(f"Cannot convert images with {have} channels to {channels}.")
    if image_size is not None and tuple(x.shape[1:3]) != tuple(image_size):
        from keras import ops

        x = np.asarray(ops.convert_to_numpy(
            ops.image.resize(x, tuple(image_size), interpolation="bilinear")), dtype=np.float32)
        x = np.clip(x, 0.0, 1.0)
    return x


def load_data(path, image_size=None, color_mode=None, input_shape=None, test_fraction=0.2,
              seed=0):
    """Loads a folder of images or an `.npz` file as a `Task` (what `--data PATH` reads).

    Args:
        path: a folder (one sub-folder per class, see `load_image_folder`) or
            a `.npz` file (see `load_npz`).
        image_size: `(height, width)` or `"HxW"`; default: from `input_shape`,
            else the images' own.
        color_mode: `"grayscale"`, `"rgb"` or `"rgba"`; default: from the
            channels of `input_shape`, else the images' own.
        input_shape: the model's input shape `(H, W, C)` (with or without a
            leading batch axis), to default `image_size` and `color_mode` to:
            the images come out shaped as the model takes them. `.npz`
            images are resized and converted too.
        test_fraction: fraction of each class held out for testing when the
            data has no test split of its own.
        seed: seed of that split.

    Returns:
        A `Task`.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: a file that is neither a folder nor `.npz`, or bad data.

    Example:
    ```python
    model = keras.saving.load_model("descendant.keras")
    task = load_data("novel_images/", input_shape=model.input_shape)
    ```
    """
    path = os.fspath(path)
    _check_color_mode(color_mode)
    image_size = parse_image_size(image_size)
    if input_shape is not None:
        shape = tuple(input_shape)
        shape = shape[1:] if len(shape) == 4 else shape
        if len(shape) != 3:
            raise ValueError(f"input_shape={input_shape!r} is no image shape (H, W, C).")
        if image_size is None and shape[0] and shape[1]:
            image_size = (int(shape[0]), int(shape[1]))
        if color_mode is None and shape[2] in _CHANNELS_TO_MODE:
            color_mode = _CHANNELS_TO_MODE[shape[2]]
    if os.path.isdir(path):
        return load_image_folder(path, image_size=image_size, color_mode=color_mode,
                                 test_fraction=test_fraction, seed=seed)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No data at {path!r}: give a folder of images or an .npz file.")
    if not path.lower().endswith(".npz"):
        raise ValueError(
            f"Cannot read {path!r}: --data takes a folder of images (one sub-folder per class) "
            "or a NumPy .npz file with 'x' and 'y'."
        )
    task = load_npz(path, test_fraction=test_fraction, seed=seed)
    channels = None if color_mode is None else COLOR_MODES[color_mode][1]
    if image_size is None and channels is None:
        return task
    return Task(
        name=task.name,
        x_train=fit_images(task.x_train, image_size, channels),
        y_train=task.y_train,
        x_test=fit_images(task.x_test, image_size, channels),
        y_test=task.y_test,
        class_names=task.class_names,
    )
