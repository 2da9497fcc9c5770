"""keras-learngene: condense an ancestry model into a learngene, and inherit
it into descendant models of any size, on TensorFlow, JAX or PyTorch.

The public API:

- `condense(ancestry, data, n_layers=...)` -> `Learngene`
- `inherit(learngene, n_layers, num_classes=...)` -> descendant `keras.Model`
- `Learngene` (save / load / provenance), `inherited_layers(descendant)`
- `models` (ancestry builders), `datasets`, `training`, `forms`, `similarity`
- `hookimpl` for plugin authors (see `keras_learngene.hookspecs`)
"""

from keras_learngene import datasets, forms, models, similarity, training, weight_selection
from keras_learngene._assets import load_default_ancestry
from keras_learngene.condense import condense, select_units
from keras_learngene.hookspecs import hookimpl
from keras_learngene.inherit import inherit, inherited_layers
from keras_learngene.learngene import Learngene
from keras_learngene.plotting import plot_similarity
from keras_learngene.version import __version__

__all__ = [
    "Learngene",
    "__version__",
    "condense",
    "datasets",
    "forms",
    "hookimpl",
    "inherit",
    "inherited_layers",
    "load_default_ancestry",
    "models",
    "plot_similarity",
    "select_units",
    "similarity",
    "training",
    "weight_selection",
]
