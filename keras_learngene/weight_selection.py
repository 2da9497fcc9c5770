"""Weight selection: a baseline that initialises a smaller model from a larger
one (Xu et al., "Initializing Models with Larger Ones", ICLR 2024).

Layer selection is "first-N": the descendant's i-th weighted layer (head
excluded) takes its weights from the ancestry's i-th. Element selection is
uniform: along each axis of size `d` in the descendant and `a` in the
ancestry, the elements at `floor(arange(d) * a / d)` are kept, which is the
identity when `d == a`. The selection runs in numpy, so it is identical on
every backend.
"""

import keras
import numpy as np

from keras_learngene import _names as names


def _body_layers(model):
    """The weighted layers of `model` in graph order, without the head."""
    return [
        layer for layer in model.layers
        if layer.weights and not isinstance(layer, keras.layers.InputLayer)
        and not names.is_head(layer.name)
    ]


def _select(value, shape, where):
    """The uniformly selected elements of `value` that fill `shape`."""
    if value.ndim != len(shape):
        raise ValueError(f"{where}: the descendant's weight has shape {shape}, the "
                         f"ancestry's {value.shape}; their ranks differ.")
    if any(d > a for d, a in zip(shape, value.shape)):
        raise ValueError(f"{where}: the descendant's weight has shape {shape}, wider than "
                         f"the ancestry's {value.shape}; weight selection only shrinks.")
    index = tuple(np.floor(np.arange(d) * a / d).astype(int)
                  for d, a in zip(shape, value.shape))
    return value[np.ix_(*index)] if index else value


def select_weights(ancestry, descendant):
    """Initialises `descendant` in place from `ancestry` by weight selection.

    The descendant's weighted non-head layers take, in order, the weights of
    the ancestry's first ones (every weight, trainable or not, e.g. batch norm
    statistics too), each weight cut to the descendant's shape by uniform
    element selection. Layers named `head_*` are skipped on both sides: the
    descendant's head keeps its own initialisation.

    Args:
        ancestry: the larger `keras.Model` to select from; it is not changed.
        descendant: a Functional `keras.Model` of the same family, as deep or
            shallower and as wide or narrower (e.g. a descendant of `inherit`,
            or a smaller ancestry model).

    Returns:
        `descendant`, the same object, with its weights set.

    Raises:
        ValueError: the descendant has more layers to initialise than the
            ancestry, a layer pair differs in class or number of weights, or a
            weight differs in rank or is wider than the ancestry's.

    Example:
    ```python
    small = keras_learngene.models.VisionTransformer((28, 28, 1), 4, num_layers=4,
                                                      hidden_dim=32, mlp_dim=64)
    keras_learngene.weight_selection.select_weights(ancestry, small)
    ```
    """
    sources, targets = _body_layers(ancestry), _body_layers(descendant)
    if len(targets) > len(sources):
        raise ValueError(
            f"The descendant has {len(targets)} layers to initialise, the ancestry only "
            f"{len(sources)}; weight selection takes the first {len(targets)}.")
    for source, target in zip(sources, targets):
        if type(source) is not type(target) or len(source.weights) != len(target.weights):
            raise ValueError(
                f"Descendant layer {target.name!r} ({type(target).__name__}, "
                f"{len(target.weights)} weights) does not match ancestry layer "
                f"{source.name!r} ({type(source).__name__}, {len(source.weights)} weights): "
                "weight selection needs the descendant to be a same-family, "
                "same-depth-or-shallower model.")
        for weight, variable in zip(source.weights, target.weights):
            value = keras.ops.convert_to_numpy(weight)
            where = f"Layer {target.name!r}, weight {variable.path!r}"
            variable.assign(_select(value, tuple(variable.shape), where))
    return descendant
