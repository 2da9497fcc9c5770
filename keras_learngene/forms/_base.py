"""The `Form` interface: how a family of models is cut into units and put
back together.

A form sees a model as `stem -> unit_0 .. unit_{L-1} -> head`, where every
unit is one Keras layer (a block layer, or a Functional sub-model) with a
single input and a single output. Everything else in the library (condense,
inherit, the benchmark) talks to models only through a form.
"""

import dataclasses

import keras
from keras import layers, ops

from keras_learngene.distribute import with_float_policy
from keras_learngene.models import TokenPooling


@dataclasses.dataclass
class Anatomy:
    """A model cut into stem, units and head.

    Attributes:
        input_shape: input shape without the batch axis.
        stem: the layer that maps inputs to the first unit's input (`None`
            when the first unit takes the raw input).
        units: the units in order; each is a single-input single-output layer.
        unit_outputs: each unit's output tensor in the original model's graph
            (used to tap features).
        stem_output: the stem's output tensor in that graph (the model's
            input when there is no stem).
        head: the layers after the last unit (informational: descendants get
            a new head).
    """

    input_shape: tuple
    stem: object
    units: list
    unit_outputs: list
    stem_output: object
    head: list = dataclasses.field(default_factory=list)

    @property
    def unit_inputs(self):
        """Each unit's input tensor in the original graph."""
        return [self.stem_output] + list(self.unit_outputs[:-1])


def shape_of(x):
    """Static shape of a tensor or KerasTensor, as a tuple."""
    return tuple(x.shape)


def pool_features(x):
    """Pools a unit's output to `(batch, features)`: the mean over every axis
    between the batch axis and the last (tokens, or height and width)."""
    if len(x.shape) <= 2:
        return x
    return ops.mean(x, axis=tuple(range(1, len(x.shape) - 1)))


def feature_model(model, outputs):
    """A model from `model`'s input to each tensor of `outputs` (tensors of
    `model`'s graph), pooled to `(batch, features)` by `pool_features`, in
    float32 (similarities stay float32 under mixed precision)."""
    def pooled(t):
        return pool_features(t if t.dtype == "float32" else ops.cast(t, "float32"))

    return keras.Model(model.inputs[0], [pooled(t) for t in outputs],
                       name=f"{model.name}_features")


def clone_layer(layer, name, input_shape, copy_weights=False):
    """A new layer of the same config as `layer`, named `name`, built for
    `input_shape` (without batch axis); weights copied or freshly initialised.

    Functional sub-models are cloned with `keras.models.clone_model` on a new
    input of `input_shape`.

    A clone computes in the precision in force where it is made (the global
    dtype policy: float32, or a mixed policy inside
    `keras_learngene.distribute.scope`), not in the one its source was trained
    under: a learngene copied from a mixed-precision ancestry is float32, and
    a descendant inherited under `mixed_bfloat16` is mixed. Non-float policies
    (e.g. quantized ones) are kept.
    """
    if _is_functional(layer):
        new = keras.models.clone_model(layer, input_tensors=keras.Input(input_shape),
                                       clone_function=_clone_in_global_precision)
        new.name = name
    else:
        config = _in_global_precision(layer.get_config())
        config["name"] = name
        new = type(layer).from_config(config)
        new.build((None,) + tuple(input_shape))
    if copy_weights:
        new.set_weights(layer.get_weights())
    return new


def _in_global_precision(config):
    return with_float_policy(config)


def _clone_in_global_precision(layer):
    return type(layer).from_config(_in_global_precision(layer.get_config()))


def _is_functional(layer):
    return isinstance(layer, keras.Model) and hasattr(layer, "_nodes_by_depth")


class Form:
    """Base class of learngene forms.

    A subclass implements `matches` and `split`; the defaults of the other
    methods suit most families.

    Attributes:
        name: the name the form is registered under.
        description: one line for `klg plugins` and the docs.
    """

    name = ""
    description = ""

    def matches(self, model):
        """Whether this form can cut `model` (used to pick a form
        automatically; the generic Functional form matches last)."""
        raise NotImplementedError

    def split(self, model):
        """Cuts `model` into an `Anatomy`."""
        raise NotImplementedError

    # ---- describing ----------------------------------------------------------------
    def describe_units(self, model):
        """One dict per unit: index, name, class, input/output shape, params."""
        anatomy = self.split(model)
        rows = []
        for i, unit in enumerate(anatomy.units):
            rows.append(
                {
                    "index": i,
                    "name": unit.name,
                    "kind": type(unit).__name__,
                    "input_shape": _shape_list(anatomy.unit_inputs[i].shape),
                    "output_shape": _shape_list(anatomy.unit_outputs[i].shape),
                    "params": int(unit.count_params()),
                }
            )
        return rows

    def feature_model(self, model, anatomy=None):
        """A model from `model`'s input to the pooled output of every unit."""
        return feature_model(model, (anatomy or self.split(model)).unit_outputs)

    # ---- building ------------------------------------------------------------------
    def fresh_unit(self, like, input_shape, name, preserve_shape=True):
        """A randomly initialised unit of the same kind as `like`.

        Args:
            like: the unit to imitate.
            input_shape: the input shape it will get (no batch axis).
            name: its layer name.
            preserve_shape: when True the unit must map `input_shape` to
                itself (so it can be stacked anywhere); forms adjust the
                config (e.g. no downsampling) where they can.
        """
        unit = clone_layer(like, name, input_shape)
        if preserve_shape:
            out = tuple(unit.compute_output_shape((None,) + tuple(input_shape)))[1:]
            if out != tuple(input_shape):
                raise ValueError(
                    f"A fresh unit like {like.name!r} maps {tuple(input_shape)} to {out}, so "
                    "it cannot be stacked at this junction; choose a strategy that puts fresh "
                    "units where the shapes match, or n_layers=0."
                )
        return unit

    def identity_unit(self, like, input_shape, name):
        """A new unit of the same kind as `like` that starts as the identity:
        in inference mode it returns its input unchanged (to float rounding),
        so a descendant whose new units are all identity units computes, before
        training, exactly the features of its learngene (Net2DeeperNet; zero
        residual branches as in Fixup / ReZero).

        A form offers it where an exact identity exists for its units and
        raises `ValueError` naming the unit's class otherwise (the default).

        Args:
            like: the unit to imitate.
            input_shape: the input shape it will get (no batch axis); the
                unit maps it to itself.
            name: its layer name.
        """
        raise ValueError(
            f"Form {self.name or type(self).__name__!r} has no identity unit for "
            f"{type(like).__name__} units (unit {like.name!r}): no exact identity is known "
            "for it. Use fresh_init='random' (the paper's initialisation), or a form whose "
            "units have one."
        )

    def copy_unit(self, unit, input_shape, name):
        """A new unit with the config and a copy of the weights of `unit`."""
        return clone_layer(unit, name, input_shape, copy_weights=True)

    def bridge(self, input_shape, output_shape, name, like=None):
        """A fresh layer mapping `input_shape` to `output_shape`, placed where
        two learngene units (or the stem and a unit) do not chain, or `None`
        when this form cannot bridge them (the default).

        Args:
            input_shape: shape it receives (no batch axis).
            output_shape: shape the next unit needs.
            name: its layer name (the library names bridges `bridge_<n>`).
            like: the unit after the bridge, to imitate its kind.
        """
        return None

    def adapt_stem(self, stem, input_shape):
        """The stem to use for inputs of `input_shape` (default: the same
        layer, which must accept it)."""
        return stem

    def new_head(self, x, num_classes, head="linear", dropout=0.0, pooling="mean"):
        """Adds a new, randomly initialised classification head on `x`.

        Args:
            x: the last unit's output tensor.
            num_classes: number of logits.
            head: `"linear"` (pool + dense) or `"mlp"` (pool + dense-GELU + dense).
            dropout: dropout rate before the last dense layer.
            pooling: how tokens are pooled (`"mean"` or `"class"`), see
                `token_pooling`.
        """
        if head not in ("linear", "mlp"):
            raise ValueError(f"head must be 'linear' or 'mlp', got {head!r}.")
        if len(x.shape) == 3:
            x = layers.LayerNormalization(epsilon=1e-6, name="head_norm")(x)
            x = TokenPooling(pooling, name="head_pool")(x)
        elif len(x.shape) > 3:
            x = layers.Lambda(pool_features, name="head_pool")(x) if len(x.shape) != 4 \
                else layers.GlobalAveragePooling2D(name="head_pool")(x)
        if head == "mlp":
            x = layers.Dense(x.shape[-1], activation="gelu", name="head_hidden")(x)
        if dropout:
            x = layers.Dropout(dropout, name="head_dropout")(x)
        return layers.Dense(num_classes, name="head_dense")(x)

    def token_pooling(self, stem):
        """How the head after `stem` pools tokens: `"mean"` (forms whose stem
        adds a class token override this)."""
        return "mean"

    def assemble(self, input_shape, stem, units, num_classes=None, head="linear", dropout=0.0,
                 name=None, return_unit_outputs=False):
        """Builds `Input -> stem -> units -> new head` as a Functional model.

        With `num_classes=None` no head is added: the model outputs the last
        unit's features. With `return_unit_outputs=True` it returns
        `(model, unit_outputs)`, the units' output tensors in the new graph
        (to tap features).
        """
        inputs = keras.Input(tuple(input_shape), name="images")
        x = inputs if stem is None else stem(inputs)
        outputs = []
        for unit in units:
            x = _call_unit(unit, x)
            outputs.append(x)
        if num_classes is not None:
            x = self.new_head(x, num_classes, head=head, dropout=dropout,
                              pooling=self.token_pooling(stem))
        model = keras.Model(inputs, x, name=name)
        return (model, outputs) if return_unit_outputs else model


def _call_unit(unit, x):
    try:
        return unit(x)
    except Exception as exc:  # re-raise with the junction named
        raise ValueError(
            f"Unit {unit.name!r} cannot take an input of shape {shape_of(x)}: {exc}"
        ) from exc


def _shape_list(shape):
    return [None if d is None else int(d) for d in shape]


def as_form(obj, name=None):
    """Normalises what a plugin registers as a form: a `Form` instance, or a
    `Form` subclass (instantiated)."""
    if isinstance(obj, type) and issubclass(obj, Form):
        obj = obj()
    if not isinstance(obj, Form):
        raise TypeError(
            f"A form must be a keras_learngene.forms.Form instance or subclass, got {obj!r}."
        )
    if name and not obj.name:
        obj.name = name
    return obj
