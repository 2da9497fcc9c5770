"""The learngene artifact: the selected units (with the stem they need) as a
Keras model, plus the provenance of how and why they were selected.

A `Learngene` is a Functional `keras.Model` from images to the last
learngene unit's features. It saves as a normal `.keras` file that
`keras.saving.load_model` opens once `keras_learngene` is imported (safe
mode stays on), and its provenance travels in the model config.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile

import keras
import numpy as np

from keras_learngene import _names as names
from keras_learngene._io import load_keras

_PACKAGE = "keras_learngene"


def _to_json(value):
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    raise TypeError(f"Provenance values must be JSON-serialisable, got {type(value).__name__}.")


def _as_layer(obj):
    if isinstance(obj, dict):
        return keras.saving.deserialize_keras_object(obj)
    return obj


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Learngene(keras.Model):
    """A learngene: `images -> stem -> learngene units -> features`.

    Built by `keras_learngene.condense`; rebuilt from its config on load.

    Args:
        image_shape: input shape `(height, width, channels)`.
        stem: the stem layer (or its serialized config), or `None`.
        units: the learngene units in order (layers or serialized configs),
            including any fresh `bridge_<n>` layers where two selected units
            do not chain (their shapes differ across a downsampling stage).
        form: name of the form that cut the ancestry (used to inherit).
        provenance: a JSON-serialisable dict (see `Learngene.provenance`).
        **kwargs: `name`, `trainable`.

    Example:
    ```python
    learngene = keras_learngene.Learngene.load("learngene.keras")
    print(learngene.provenance["source_units"])
    ```
    """

    def __init__(self, image_shape: tuple[int, int, int], stem: keras.layers.Layer | dict | None,
                 units: list[keras.layers.Layer | dict], form: str,
                 provenance: dict | None = None, **kwargs):
        stem = _as_layer(stem)
        units = [_as_layer(u) for u in units]
        if not units:
            raise ValueError("A learngene needs at least one unit.")
        inputs = keras.Input(tuple(image_shape), name="images")
        x = inputs if stem is None else stem(inputs)
        for unit in units:
            x = unit(x)
        super().__init__(inputs=inputs, outputs=x, **kwargs)
        self.image_shape = tuple(image_shape)
        self.form = form
        self._stem_name = None if stem is None else stem.name
        self._body_names = [unit.name for unit in units]
        self._unit_names = [name for name in self._body_names if not names.is_bridge(name)]
        self.provenance = json.loads(json.dumps(provenance or {}, default=_to_json))

    @property
    def stem_layer(self):
        """The stem layer (`None` when the units take raw images)."""
        return None if self._stem_name is None else self.get_layer(self._stem_name)

    @property
    def learngene_units(self):
        """The learngene units (inherited from the ancestry), in order."""
        return [self.get_layer(name) for name in self._unit_names]

    def bridge_before(self, unit):
        """The fresh bridge layer in front of learngene unit `unit` (a name),
        or `None`. Bridges carry no ancestry weights: descendants get new ones."""
        position = self._body_names.index(unit)
        previous = self._body_names[position - 1] if position else ""
        return self.get_layer(previous) if names.is_bridge(previous) else None

    def get_config(self):
        stem = self.stem_layer
        return {
            "name": self.name,
            "trainable": self.trainable,
            "image_shape": list(self.image_shape),
            "stem": None if stem is None else keras.saving.serialize_keras_object(stem),
            "units": [keras.saving.serialize_keras_object(self.get_layer(name))
                      for name in self._body_names],
            "form": self.form,
            "provenance": self.provenance,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def save(self, filepath: str | os.PathLike, overwrite: bool = True,
             zipped: bool | None = None, **kwargs) -> None:
        """Writes the learngene to a `.keras` file, atomically.

        Takes the signature of Keras' own `Model.save`, so Keras callbacks
        (`ModelCheckpoint`) and user code call it the same way. The file is
        written next to its destination under a temporary name, then renamed,
        so a failure (a full disk, an interrupt) never leaves a partial file
        and keeps any existing one intact.

        Args:
            filepath: destination, ending in `.keras`.
            overwrite: replace an existing file (default, as in Keras); with
                `False` an existing file is an error (Keras would prompt).
            zipped: `None` or `True`: a zipped `.keras` archive. `False`
                (Keras' unzipped folder) is not supported.
            **kwargs: passed to `keras.Model.save` (e.g. `include_optimizer`).

        Raises:
            FileExistsError: `filepath` exists and `overwrite` is False.
            ValueError: `filepath` does not end in `.keras`, or `zipped=False`.
            SaveError: writing failed (e.g. no space left on device); the
                temporary file is removed and an existing file kept.
        """
        if zipped is not None and not zipped:
            raise ValueError(
                "Learngene.save() writes zipped .keras files only (atomically); "
                f"zipped={zipped!r} is not supported. Leave zipped at its default."
            )
        save_atomically(self, filepath, overwrite=overwrite, **kwargs)

    @classmethod
    def load(cls, filepath: str | os.PathLike) -> Learngene:
        """Loads a learngene from a `.keras` file (Keras safe mode on).

        Raises:
            FileNotFoundError: no file at `filepath`.
            ValueError: the file is damaged or not a `.keras` archive, Keras
                safe mode refused it, or it holds a model that is not a
                learngene (see `keras_learngene._io.load_keras`).
        """
        model = load_keras(filepath, what="learngene")
        if not isinstance(model, cls):
            raise ValueError(
                f"{os.fspath(filepath)!r} holds a {type(model).__name__}, not a learngene. "
                "Condense it first: `klg condense --ancestry "
                f"{os.fspath(filepath)} --out learngene.keras`."
            )
        return model

    def summary_rows(self) -> list[dict]:
        """One dict per learngene unit: its name, source index and score."""
        p = self.provenance
        rows = []
        for i, name in enumerate(self._unit_names):
            rows.append(
                {
                    "unit": name,
                    "source_index": (p.get("source_units") or [None] * len(self._unit_names))[i],
                    "score": (p.get("scores") or [None] * len(self._unit_names))[i],
                    "params": int(self.get_layer(name).count_params()),
                }
            )
        return rows


class SaveError(OSError):
    """Writing a `.keras` file failed; nothing at the destination was changed.

    An `OSError` with the original `errno` (e.g. `errno.ENOSPC`) and
    `filename`; the original error is its `__cause__`.
    """

    def __str__(self):
        return self.strerror or super().__str__()


_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


# the temporary files of the saves under way (`save_atomically`)
PENDING_TEMPORARY_FILES = set()


def save_atomically(model, filepath, overwrite=False, **kwargs):
    """Saves any Keras model to `filepath` through a temporary file + rename.

    The temporary file lives in the destination folder; on any failure it is
    removed and an existing `filepath` is left intact.

    Args:
        model: the `keras.Model`.
        filepath: destination ending in `.keras`.
        overwrite: replace an existing file.
        **kwargs: passed to `keras.Model.save` (e.g. `include_optimizer`).

    Raises:
        FileExistsError: `filepath` exists and `overwrite` is False.
        FileNotFoundError: the destination folder does not exist.
        ValueError: `filepath` does not end in `.keras`.
        SaveError: writing failed, e.g. `Could not write 'a.keras': no space
            left on device ...; the existing file was kept`.
    """
    filepath = os.fspath(filepath)
    if not filepath.endswith(".keras"):
        raise ValueError(f"The file name must end in '.keras', got {filepath!r}.")
    if os.path.exists(filepath) and not overwrite:
        raise FileExistsError(
            f"{filepath!r} already exists; pass overwrite=True (CLI: --overwrite) to replace it."
        )
    folder = os.path.dirname(os.path.abspath(filepath))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"The folder {folder!r} does not exist; create it first.")
    existed = os.path.exists(filepath)
    try:
        handle, tmp = tempfile.mkstemp(suffix=".keras", prefix=".klg-", dir=folder)
    except OSError as error:
        raise _save_error(filepath, error, existed) from error
    PENDING_TEMPORARY_FILES.add(tmp)  # removed by `klg` if an interrupt cannot unwind
    try:
        os.close(handle)
        keras.Model.save(model, tmp, overwrite=True, **kwargs)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; use the usual mode
        os.replace(tmp, filepath)
    except OSError as error:
        raise _save_error(filepath, error, existed) from error
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
        PENDING_TEMPORARY_FILES.discard(tmp)


def _save_error(filepath, error, existed):
    kept = "the existing file was kept" if existed else "nothing was written"
    if error.errno in _DISK_FULL:
        reason = (f"no space left on device in {os.path.dirname(os.path.abspath(filepath))!r}; "
                  "free some space or save elsewhere")
    else:
        reason = f"{error.strerror or error}"
    return SaveError(error.errno, f"Could not write {filepath!r}: {reason}; {kept}.", filepath)


def fingerprint_weights(model):
    """A short hash of a model's weights (values, shapes and order)."""
    digest = hashlib.sha256()
    for weight in model.weights:
        value = np.ascontiguousarray(keras.ops.convert_to_numpy(weight), dtype="<f4")
        digest.update(str(value.shape).encode())
        digest.update(value.tobytes())
    return digest.hexdigest()[:16]


def fingerprint_array(array):
    """A short hash of an array's shape, dtype and bytes."""
    array = np.ascontiguousarray(array)
    digest = hashlib.sha256(f"{array.shape}{array.dtype}".encode())
    digest.update(array.tobytes())
    return digest.hexdigest()[:16]
