"""Built-in inheritance strategies: stack, prepend, interleave, expand, and
the strategies of TLEG (linear_expansion) and SWS (stage_sharing)."""

from keras_learngene.hookspecs import hookimpl
from keras_learngene.strategies import BUILTIN_STRATEGIES


@hookimpl
def register_strategies(register):
    for name, strategy in BUILTIN_STRATEGIES.items():
        register(name, strategy)
    # by reference: TLEG's and SWS's modules import Keras (see `Registry`)
    register("linear_expansion", "keras_learngene.methods:LinearExpansion")
    register("stage_sharing", "keras_learngene.methods:StageSharing")
