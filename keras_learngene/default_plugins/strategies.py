"""Built-in inheritance strategies: stack, prepend, interleave, expand, and
the strategies of TLEG (linear_expansion) and SWS (stage_sharing)."""

from keras_learngene.hookspecs import hookimpl
from keras_learngene.strategies import BUILTIN_STRATEGIES


@hookimpl
def register_strategies(register):
    from keras_learngene.methods import LinearExpansion, StageSharing

    for name, strategy in BUILTIN_STRATEGIES.items():
        register(name, strategy)
    register("linear_expansion", LinearExpansion())
    register("stage_sharing", StageSharing())
