"""Built-in condensing methods: auto, auto_distill, heur, front, back,
weight_selection, tleg, sws."""

from keras_learngene.hookspecs import hookimpl

# name -> class in `keras_learngene.methods`, the one table of the built-ins (the source of
# `keras_learngene.methods.BUILTIN_METHODS`). Registered by reference: the methods' modules
# import Keras, and `klg plugins` lists names only.
METHODS = {
    "auto": "AutoLearngene",
    "auto_distill": "DistilledAutoLearngene",
    "heur": "HeurLearngene",
    "front": "Front",
    "back": "Back",
    "weight_selection": "WeightSelection",
    "tleg": "TLEG",
    "sws": "SWS",
}


@hookimpl
def register_methods(register):
    for name, cls in METHODS.items():
        register(name, f"keras_learngene.methods:{cls}")
