"""Built-in forms: the library's ViT and CNNs, and any Keras Functional model."""

from keras_learngene.forms import CNNForm, FunctionalForm, ViTForm
from keras_learngene.hookspecs import hookimpl


@hookimpl
def register_forms(register):
    register("vit", ViTForm())
    register("cnn", CNNForm())
    register("functional", FunctionalForm())  # last: the specific forms match first
