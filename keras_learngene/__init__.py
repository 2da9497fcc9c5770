"""keras-learngene: condense an ancestry model into a learngene, and inherit
it into descendant models of any size, on TensorFlow, JAX or PyTorch.

The public API:

- `condense(ancestry, data, num_units=..., method=...)` -> `Learngene`
- `inherit(learngene, n_layers, num_classes=...)` -> descendant `keras.Model`
- `Learngene` (save / load / provenance), `inherited_layers(descendant)`
- `models` (ancestry builders), `datasets`, `training`, `forms`, `methods`,
  `similarity`, `strategies`, `distribute`, `plugins`, `weight_selection`
- `hookimpl` for plugin authors (see `keras_learngene.hookspecs`)

Importing the package registers its Keras objects (the learngene, the
ancestries' layers), so `keras.saving.load_model` opens their files.
"""

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
from keras_learngene._assets import load_default_ancestry
from keras_learngene._condense import condense
from keras_learngene._inherit import inherit, inherited_layers
from keras_learngene.hookspecs import hookimpl
from keras_learngene.learngene import Learngene
from keras_learngene.methods import select_units
from keras_learngene.plotting import plot_similarity
from keras_learngene.version import __version__

__all__ = [
    "Learngene",
    "__version__",
    "condense",
    "datasets",
    "distribute",
    "forms",
    "hookimpl",
    "inherit",
    "inherited_layers",
    "load_default_ancestry",
    "methods",
    "models",
    "plot_similarity",
    "plugins",
    "select_units",
    "similarity",
    "strategies",
    "training",
    "weight_selection",
]
