"""Built-in forms: the library's ViT and CNNs, keras-hub backbones (when keras-hub is
installed), and any Keras Functional model."""

import importlib.util

from keras_learngene.hookspecs import hookimpl


@hookimpl
def register_forms(register):
    # by reference ("module:class", imported when first used): the forms import Keras, and
    # loading the plugins (`klg --help`, `klg plugins`) must start no backend
    register("vit", "keras_learngene.forms:ViTForm")
    register("cnn", "keras_learngene.forms:CNNForm")
    # keras-hub is an optional extra; its forms import it only when a keras-hub model shows
    # up (importing it takes seconds), so look for it without importing it
    if importlib.util.find_spec("keras_hub") is not None:
        for name, cls in (("keras_hub_vit", "HubViTForm"), ("keras_hub_resnet", "HubResNetForm"),
                          ("keras_hub_vgg", "HubVGGForm")):
            register(name, f"keras_learngene.forms._hub:{cls}")
    register("functional", "keras_learngene.forms:FunctionalForm")  # last: specific ones first
