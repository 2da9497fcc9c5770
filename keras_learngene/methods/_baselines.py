"""Baseline methods: the first / last k units, and weight selection.

They need no probe data and make no random choice, so the benchmark
condenses each once; they are what a condensing method must beat.
"""

import keras

from keras_learngene.methods._base import Condensed, Method
from keras_learngene.weight_selection import select_weights


class _Fixed(Method):
    """Keeps a fixed run of units, given by `indices(num_units, total)`."""

    def indices(self, k, total):
        raise NotImplementedError

    def condense(self, job):
        # units that do not chain get a fresh bridge, or fail, when copied
        return Condensed(self.indices(job.num_units, len(job.anatomy.units)),
                         {"selection": self.name, "scores": None})


class Front(_Fixed):
    """The first k units (a baseline: no measurement)."""

    name = "front"
    title = "front-k"
    description = "the first k units (baseline)"

    def indices(self, k, total):
        return list(range(k))


class Back(_Fixed):
    """The last k units (a baseline: no measurement)."""

    name = "back"
    title = "back-k"
    description = "the last k units (baseline)"

    def indices(self, k, total):
        return list(range(total - k, total))


class WeightSelection(Method):
    """Weight selection (Xu et al., ICLR 2024) as a condensing method: the
    learngene's i-th unit is a unit the form builds at the shape the chain
    needs, filled by uniform element selection from the ancestry's i-th unit
    (first-N layer selection, see `keras_learngene.weight_selection`).

    Where the fresh unit has the ancestry unit's shape, element selection is
    the identity and the learngene equals front-k's; it differs where a
    plugin form builds narrower units. The provenance says which it was.
    """

    name = "weight_selection"
    title = "weight selection"
    description = "first-k units by uniform element selection (Xu et al. 2024)"

    def condense(self, job):
        k, anatomy, form = job.num_units, job.anatomy, job.form
        keras.utils.set_random_seed(job.seed)
        units, identity = [], []
        for i in range(k):
            source, shape = anatomy.units[i], tuple(anatomy.unit_inputs[i].shape[1:])
            unit = form.fresh_unit(source, shape, source.name, preserve_shape=False)
            select_weights(_as_model(source, shape), _as_model(unit, shape))
            units.append(unit)
            identity.append([tuple(w.shape) for w in unit.weights]
                            == [tuple(w.shape) for w in source.weights])
        return Condensed(list(range(k)), {"selection": "first_k", "scores": None,
                                          "element_selection": ["identity" if same else
                                                                "uniform" for same in identity]},
                         units=units)


def _as_model(layer, shape):
    """A one-layer model around `layer`, so `select_weights` sees its weights
    in graph order."""
    inputs = keras.Input(shape)
    return keras.Model(inputs, layer(inputs))
