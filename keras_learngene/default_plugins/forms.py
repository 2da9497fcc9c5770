"""Built-in forms: the library's ViT and CNNs, keras-hub backbones (when keras-hub is
installed), and any Keras Functional model."""

import importlib.util

from keras_learngene.hookspecs import hookimpl


@hookimpl
def register_forms(register):
    # the forms import Keras: imported here, when a registry is built, so that loading the
    # plugins (as `klg --help` does, for their commands) starts no backend
    from keras_learngene.forms import CNNForm, FunctionalForm, ViTForm

    register("vit", ViTForm())
    register("cnn", CNNForm())
    # keras-hub is an optional extra; its forms import it only when a keras-hub model shows
    # up (importing it takes seconds), so look for it without importing it
    if importlib.util.find_spec("keras_hub") is not None:
        from keras_learngene.forms._hub import HubResNetForm, HubVGGForm, HubViTForm

        register("keras_hub_vit", HubViTForm())
        register("keras_hub_resnet", HubResNetForm())
        register("keras_hub_vgg", HubVGGForm())
    register("functional", FunctionalForm())  # last: the specific forms match first
