"""Built-in inheritance strategies: stack, prepend, interleave, expand."""

from keras_learngene.hookspecs import hookimpl
from keras_learngene.strategies import BUILTIN_STRATEGIES


@hookimpl
def register_strategies(register):
    for name, strategy in BUILTIN_STRATEGIES.items():
        register(name, strategy)
