"""Loading `.keras` files with messages that say what is wrong with them.

Keras reports a truncated or non-zip `.keras` file as "File not found", and a
file it refuses in safe mode with advice to turn safe mode off. `load_keras`
checks the file first (it exists, it is a zip archive with a `config.json`,
its members are intact) and turns Keras' refusals into errors that say why
and what to do. Safe mode always stays on.

Every loader of the library goes through it:
`from keras_learngene._io import load_keras`.
"""

import os
import re
import zipfile

import keras

__all__ = ["load_keras"]


def _not_keras(path, detail):
    return ValueError(
        f"{path!r} is not a valid .keras file (truncated, or not a Keras archive): {detail}; "
        "re-save or re-download it."
    )


def _check_archive(path):
    """Raises ValueError unless `path` is an intact zip archive holding `config.json`."""
    size = os.path.getsize(path)
    if not size:
        raise _not_keras(path, "the file is empty (0 bytes)")
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            head = f.read(8)
        if head.startswith(b"PK\x03\x04"):
            detail = (f"it starts like a zip archive but its end is missing ({size} bytes): "
                      "the file is truncated")
        elif head.startswith(b"\x89HDF"):
            detail = "it is an HDF5 file (the legacy .h5 format), not a zip archive"
        else:
            detail = f"it is not a zip archive ({size} bytes, starting with {head!r})"
        raise _not_keras(path, detail)
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if "config.json" not in names:
                shown = ", ".join(names[:5]) or "nothing"
                raise _not_keras(path, f"the zip archive has no config.json (it holds {shown})")
            broken = archive.testzip()  # reads every member and checks its CRC
    except (zipfile.BadZipFile, EOFError, OSError, RuntimeError) as error:
        raise _not_keras(path, f"its zip archive cannot be read ({error})") from error
    if broken is not None:
        raise _not_keras(path, f"the member {broken!r} of its zip archive is corrupt")


def _register_serializables():
    """Completes a deferred package import (the `klg` command line defers it):
    every class a file of the library can hold is then registered with Keras."""
    import keras_learngene

    keras_learngene._load()


def load_keras(path, what="model", **kwargs):
    """Loads a `.keras` file with `keras.saving.load_model`, safe mode on.

    Args:
        path: the `.keras` file (str or path-like).
        what: what the file should hold, for the messages (`"model"`,
            `"learngene"`, `"ancestry"`).
        **kwargs: passed to `keras.saving.load_model` (`custom_objects`,
            `compile`); `safe_mode` is not accepted: it is always on.

    Returns:
        The loaded object.

    Raises:
        FileNotFoundError: no file at `path`.
        ValueError: the file is not an intact `.keras` archive (empty,
            truncated, not a zip, no `config.json`, a corrupt member); or Keras
            safe mode refused it because it carries Python code (a `Lambda`
            layer); or it uses a custom class or function that is not
            registered with Keras.
        TypeError: `safe_mode` was passed.

    Example:
    ```python
    from keras_learngene._io import load_keras

    ancestry = load_keras("ancestry.keras", what="ancestry")
    ```
    """
    if "safe_mode" in kwargs:
        raise TypeError(
            "load_keras() always loads with Keras safe mode on; to load a file you trust with "
            "safe mode off, call keras.saving.load_model(path, safe_mode=False) yourself."
        )
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No {what} file at {path!r}.")
    _register_serializables()
    if os.path.isdir(path):
        raise _not_keras(path, "it is a folder; keras_learngene reads zipped .keras files "
                               "(Model.save(path) with the default zipped=True)")
    _check_archive(path)
    try:
        return keras.saving.load_model(path, safe_mode=True, **kwargs)
    except (ValueError, TypeError) as error:
        text = str(error)
        if "safe_mode" in text:
            raise ValueError(
                f"Keras safe mode refused to load {path!r}: the {what} carries Python code "
                "(a `Lambda` layer or a Python function in its config), which would run "
                "arbitrary code when loaded. keras_learngene never disables safe mode. If you "
                "trust the file's source, load it yourself with "
                f"keras.saving.load_model({path!r}, safe_mode=False) and pass the model "
                "object instead of the path."
            ) from error
        missing = re.search(r"Could not locate (class|function) '([^']+)'", text)
        if missing:
            kind, name = missing.groups()
            raise ValueError(
                f"Cannot load {path!r}: the {what} uses the custom {kind} {name!r}, which is "
                "not registered with Keras, so safe loading cannot rebuild it. Import the "
                f"package that defines {name!r} (registered with "
                "@keras.saving.register_keras_serializable()) before loading, or load it "
                f"yourself with keras.saving.load_model({path!r}, custom_objects="
                f"{{{name!r}: ...}}) and pass the model object. keras_learngene never disables "
                "safe mode."
            ) from error
        raise
