"""Learngene forms: how models are cut into units and put back together."""

from keras_learngene.forms._base import (
    Anatomy,
    Form,
    as_form,
    clone_layer,
    feature_model,
    pool_features,
)
from keras_learngene.forms._functional import FunctionalForm
from keras_learngene.forms._library import BlocksForm, CNNForm, ViTForm

__all__ = [
    "Anatomy",
    "BlocksForm",
    "CNNForm",
    "Form",
    "FunctionalForm",
    "ViTForm",
    "as_form",
    "clone_layer",
    "feature_model",
    "pool_features",
]
