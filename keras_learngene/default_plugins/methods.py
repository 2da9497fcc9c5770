"""Built-in condensing methods: auto, heur, front, back, weight_selection."""

from keras_learngene.hookspecs import hookimpl


@hookimpl
def register_methods(register):
    from keras_learngene.methods import BUILTIN_METHODS

    for name, method in BUILTIN_METHODS.items():
        register(name, method)
