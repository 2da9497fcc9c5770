"""Condensing methods: how a learngene is made from an ancestry.

A method is a `Method` registered through the `register_methods` hook (the
built-ins below are registered the same way, by
`keras_learngene.default_plugins.methods`). `keras_learngene.condense(...,
method=NAME)` runs any registered method; its options are the keyword
arguments `condense` passes on.

Built-ins: `AutoLearngene` (`"auto"`), `DistilledAutoLearngene`
(`"auto_distill"`), `HeurLearngene` (`"heur"`), `Front` (`"front"`),
`Back` (`"back"`), `WeightSelection` (`"weight_selection"`), `TLEG` (`"tleg"`),
`SWS` (`"sws"`).
Selection rules (`select_units`, `chain_test`, `most_stable_chain`) serve any
method that scores units.
"""

from keras_learngene.default_plugins.methods import METHODS as _BUILTIN_NAMES
from keras_learngene.methods._auto import AutoLearngene, build_pseudo_descendant, unit_similarities
from keras_learngene.methods._base import Condensed, Job, Method, as_method, heatmap
from keras_learngene.methods._baselines import Back, Front, WeightSelection
from keras_learngene.methods._distill import DistilledAutoLearngene, PairMatching
from keras_learngene.methods._heur import (
    GradientStability,
    HeurLearngene,
    heur_statistics,
    make_tasks,
)
from keras_learngene.methods._selection import (
    SELECTIONS,
    chain_test,
    check_selection,
    most_stable_chain,
    no_chain,
    select_units,
)
from keras_learngene.methods._sws import SWS, StageSharing, stage_layout
from keras_learngene.methods._tleg import TLEG, LinearExpansion, LinearExpansionUnit

# the one table of the built-ins' names (`default_plugins.methods` registers them by
# reference, without importing this module)
BUILTIN_METHODS = {name: globals()[cls] for name, cls in _BUILTIN_NAMES.items()}

__all__ = [
    "BUILTIN_METHODS",
    "SELECTIONS",
    "AutoLearngene",
    "Back",
    "Condensed",
    "DistilledAutoLearngene",
    "Front",
    "GradientStability",
    "HeurLearngene",
    "Job",
    "LinearExpansion",
    "LinearExpansionUnit",
    "Method",
    "PairMatching",
    "SWS",
    "StageSharing",
    "TLEG",
    "WeightSelection",
    "as_method",
    "build_pseudo_descendant",
    "chain_test",
    "check_selection",
    "heatmap",
    "heur_statistics",
    "make_tasks",
    "most_stable_chain",
    "no_chain",
    "select_units",
    "stage_layout",
    "unit_similarities",
]
