"""keras-learngene: condense an ancestry model into a learngene, and inherit
it into descendant models of any size, on TensorFlow, JAX or PyTorch.

The public API:

- `condense(ancestry, data, num_units=..., method=...)` -> `Learngene`
- `inherit(learngene, n_layers, num_classes=...)` -> descendant `keras.Model`
- `head_start(descendant, x, y)`: a head fitted to the descendant's features
  (and its batch norms aligned to the task) before training
- `Learngene` (save / load / provenance), `inherited_layers(descendant)`
- `scratch_twin(descendant)`: the same architecture with fresh weights
- `models` (ancestry builders), `datasets`, `training`, `forms`, `methods`,
  `similarity`, `strategies`, `distribute`, `plugins`, `weight_selection`
- `hookimpl` for plugin authors (see `keras_learngene.hookspecs`)

Importing the package registers its Keras objects (the learngene, the
ancestries' layers), so `keras.saving.load_model` opens their files.

The one exception is the `klg` command line: it starts through the `_klg`
launcher, which asks the package to defer that import so that `klg --help`
starts no backend. The deferred import completes (everything imported and
registered, exactly as above) the first time anything below is used or any
`.keras` file is loaded through the library.
"""

import importlib
import os
import sys
from typing import TYPE_CHECKING

from keras_learngene.hookspecs import hookimpl
from keras_learngene.version import __version__

# What `import keras_learngene` imports, in this order. Submodules are
# imported one by one on attribute access; an object (a function or class)
# loads the whole package first.
_SUBMODULES = (
    "datasets",
    "distribute",
    "forms",
    "methods",
    "models",
    "plugins",
    "similarity",
    "strategies",
    "training",
    "weight_selection",
)
_OBJECTS = {
    "load_default_ancestry": "keras_learngene._assets",
    "load_shipped_ancestry": "keras_learngene._assets",
    "shipped_ancestries": "keras_learngene._assets",
    "condense": "keras_learngene._condense",
    "inherit": "keras_learngene._inherit",
    "inherited_layers": "keras_learngene._inherit",
    "scratch_twin": "keras_learngene._inherit",
    "head_start": "keras_learngene._headstart",
    "fit_head": "keras_learngene._headstart",
    "align_batchnorm": "keras_learngene._headstart",
    "Learngene": "keras_learngene.learngene",
    "select_units": "keras_learngene.methods",
    "plot_similarity": "keras_learngene.plotting",
}

if TYPE_CHECKING:  # the same names, for type checkers and the API docs (griffe)
    from keras_learngene import (
        datasets,
        distribute,
        forms,
        methods,
        models,
        plugins,
        similarity,
        strategies,
        training,
        weight_selection,
    )
    from keras_learngene._assets import (
        load_default_ancestry,
        load_shipped_ancestry,
        shipped_ancestries,
    )
    from keras_learngene._condense import condense
    from keras_learngene._headstart import align_batchnorm, fit_head, head_start
    from keras_learngene._inherit import inherit, inherited_layers, scratch_twin
    from keras_learngene.learngene import Learngene
    from keras_learngene.methods import select_units
    from keras_learngene.plotting import plot_similarity

__all__ = [
    "Learngene",
    "__version__",
    "align_batchnorm",
    "condense",
    "datasets",
    "distribute",
    "fit_head",
    "forms",
    "head_start",
    "hookimpl",
    "inherit",
    "inherited_layers",
    "load_default_ancestry",
    "load_shipped_ancestry",
    "methods",
    "models",
    "plot_similarity",
    "plugins",
    "scratch_twin",
    "select_units",
    "shipped_ancestries",
    "similarity",
    "strategies",
    "training",
    "weight_selection",
]

_loading = {"started": False}
_BACKENDS = ("tensorflow", "jax", "torch")


def _check_backend_setting():
    """Raises ImportError, listing the backends, when `KERAS_BACKEND` names none
    (Keras says only "Unable to import backend : <name>")."""
    name = os.environ.get("KERAS_BACKEND")
    if name and name not in _BACKENDS + ("numpy", "openvino"):  # Keras' other two
        raise ImportError(f"KERAS_BACKEND={name!r} is not a Keras backend; set it to one of "
                          f"{', '.join(_BACKENDS)} (or unset it).")


def _load():
    """Imports everything the package exports, which registers its Keras
    serializables (idempotent; a no-op after the first call)."""
    if _loading["started"]:
        return
    _loading["started"] = True
    for name in _SUBMODULES:
        importlib.import_module(f"{__name__}.{name}")  # binds the attribute
    for name, module in _OBJECTS.items():
        globals()[name] = getattr(importlib.import_module(module), name)


def __getattr__(name):  # PEP 562: only for names not loaded yet (the deferred import)
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _OBJECTS:
        _load()
        if name not in globals():  # asked for while `_load` is under way
            globals()[name] = getattr(importlib.import_module(_OBJECTS[name]), name)
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))


if not getattr(sys.modules.get("_klg"), "DEFER_IMPORT", False):
    _check_backend_setting()
    _load()
