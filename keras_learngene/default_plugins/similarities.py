"""Built-in similarity metrics: linear CKA (default), RBF CKA, cosine."""

from keras_learngene.hookspecs import hookimpl
from keras_learngene.similarity import BUILTIN_SIMILARITIES


@hookimpl
def register_similarities(register):
    for name, metric in BUILTIN_SIMILARITIES.items():
        register(name, metric)
