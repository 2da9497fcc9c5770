"""Inheriting: build a descendant model from a learngene.

A descendant is `stem -> units -> new head`, where the units are laid out by
an inheritance strategy from the learngene's units and new ones. Its size is
given one of two ways, the same for every strategy: `n_layers` new units (the
units that are not a learngene unit taken as it is), or `depth`, all its
units (`keras_learngene.strategies`).
Inherited layers are copies (training a descendant never changes its
learngene) and their names say where they came from:

- `inherited_stem`, `inherited_<ancestry unit>`: the learngene's stem and units;
- `copy<n>_<ancestry unit>`: new units initialised with a unit's weights;
- `fresh_<n>`: randomly initialised units; `head_*`: the new head;
- `bridge_<n>`: fresh layers where the learngene has bridges between units
  of different stages (CNNs); they come on top of the `n_layers` new units.
"""

from __future__ import annotations

import os

import keras

from keras_learngene import _names as names
from keras_learngene import plugins
from keras_learngene.learngene import Learngene
from keras_learngene.strategies import FRESH_INITS, takes_fresh_init

MAX_NEW_LAYERS = 64
MAX_DEPTH = 128


def _as_learngene(model, data, condense_kwargs):
    if isinstance(model, Learngene):
        return model
    if isinstance(model, str | os.PathLike):
        return Learngene.load(model)
    if isinstance(model, keras.Model):
        if data is None:
            raise ValueError(
                f"inherit() got the model {model.name!r}, not a learngene, and no probe data to "
                "condense it with. Condense it first: "
                "`learngene = keras_learngene.condense(model, (x, y), num_units=3)`, or pass "
                "data=(x, y) to condense it here with the default method."
            )
        from keras_learngene._condense import condense

        return condense(model, data, **(condense_kwargs or {}))
    raise TypeError(
        f"inherit() takes a Learngene, a path to a learngene file or a keras.Model, got "
        f"{type(model).__name__}."
    )


def inherit(
    model: Learngene | keras.Model | str | os.PathLike,
    n_layers: int | None = None,
    *,
    depth: int | None = None,
    num_classes: int,
    strategy: str | None = None,
    input_shape: tuple[int, int, int] | None = None,
    head: str = "linear",
    dropout: float = 0.0,
    freeze_learngene: bool = False,
    seed: int = 0,
    data: tuple | None = None,
    condense_kwargs: dict | None = None,
    name: str = "descendant",
    fresh_init: str = "random",
) -> keras.Model:
    """Builds a descendant: the learngene's units plus new units and a new
    classification head. Give its size as `n_layers` or as `depth`.

    Args:
        model: a `Learngene`, a path to a learngene `.keras` file, or a plain
            ancestry `keras.Model`. An ancestry is condensed first with the
            default method (Auto Learngene) on `data`; without `data` this
            raises, so a descendant never silently starts from random or
            unselected weights.
        n_layers: number of new units (0 or more), laid out by `strategy`:
            every unit that is not a learngene unit taken as it is (fresh
            units and copies). `stack` puts them on the learngene's units, so
            the descendant has `len(learngene.learngene_units) + n_layers`;
            TLEG's `linear_expansion` builds every unit anew from `theta_A`
            and `theta_B`, so its descendant has `n_layers`.
        depth: instead of `n_layers`, the descendant's number of units in
            all, learngene units included (the stem, the head and the bridges
            a CNN learngene carries are not counted); the strategy says which
            new units that takes (`Strategy.new_units`).
        num_classes: logits of the new head (at least 2).
        strategy: a registered strategy; default: the one the learngene's
            method asks for (its provenance's `strategy`, `"stack"` for the
            built-ins). Built-ins: `"stack"` (new units after the learngene),
            `"prepend"` (before it), `"interleave"` (between its units),
            `"expand"` (copies of each learngene unit after it).
        input_shape: `(height, width, channels)` of the new task; default: the
            learngene's. The channels must match; a ViT's position embedding
            is resized for another image size.
        head: `"linear"` or `"mlp"`.
        dropout: dropout before the head's last layer.
        freeze_learngene: start with the inherited stem and units frozen.
        seed: seed of the new units and the head.
        data: probe data `(x, y)`, only used to condense a plain ancestry.
        condense_kwargs: arguments for `condense` when `model` is an ancestry.
        name: the descendant's name.
        fresh_init: how the new units start: `"random"` (the paper's
            inheritance: random units on the learngene, so the head first
            sees transformed features) or `"identity"` (each new unit starts
            as the identity, `Form.identity_unit`, so that before training
            the descendant computes exactly the learngene's features; then
            `keras_learngene.head_start` fits the head to them). Bridges
            between CNN stages change the shape and stay random.

    Returns:
        A Functional `keras.Model` that outputs logits.

    Raises:
        ValueError: both or neither of `n_layers` and `depth`, a negative or
            absurd one, a depth the strategy cannot build, unknown strategy,
            shapes or channels that do not fit, `fresh_init="identity"` with a form that
            has no identity unit for the learngene's units or a strategy that
            builds no fresh units.

    Example:
    ```python
    descendant = keras_learngene.inherit("learngene.keras", n_layers=2, num_classes=4)
    descendant.summary()
    # or by its depth: 5 units in all, whatever the strategy
    descendant = keras_learngene.inherit("learngene.keras", depth=5, num_classes=4)
    ```
    """
    _check_size(n_layers, depth)
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes={num_classes!r} must be an int of at least 2: a head "
                         "of one output cannot learn (the softmax of one logit is always 1).")
    if fresh_init not in FRESH_INITS:
        raise ValueError(f"fresh_init={fresh_init!r}: choose one of {', '.join(FRESH_INITS)}.")
    learngene = _as_learngene(model, data, condense_kwargs)
    form = plugins.get_form(learngene.form)
    own = learngene.provenance.get("strategy") or "stack"
    chosen = plugins.get_strategy(strategy or own)
    if strategy not in (None, own) and not plugins.get_strategy(own).generic:
        raise ValueError(
            f"A {learngene.provenance.get('method')!r} learngene is inherited by its own "
            f"strategy {own!r} (its units are not ancestry units to lay out), not "
            f"{strategy!r}; leave strategy unset."
        )
    build_kwargs = {}
    if fresh_init != "random":
        if not takes_fresh_init(chosen):
            raise ValueError(
                f"fresh_init={fresh_init!r} does not apply to strategy {chosen.name!r}: it "
                "builds its own units, none of them fresh random ones; leave fresh_init at "
                "'random' (head_start still fits a head to its descendants)."
            )
        build_kwargs["fresh_init"] = fresh_init
    num_units = len(learngene.learngene_units)
    if depth is not None:  # the strategy says what it builds at that depth
        chosen.layout_at_depth(num_units, depth)
        n_layers = chosen.new_units(num_units, depth)
    chosen.layout(num_units, n_layers)  # a bad plan fails before work
    input_shape = tuple(input_shape or learngene.image_shape)
    if len(input_shape) != len(learngene.image_shape):
        raise ValueError(
            f"input_shape={input_shape!r} has rank {len(input_shape)}; the learngene takes "
            f"inputs like {learngene.image_shape}."
        )
    if input_shape[-1] != learngene.image_shape[-1]:
        raise ValueError(
            f"The learngene takes {learngene.image_shape[-1]} channels, input_shape has "
            f"{input_shape[-1]}; convert the images to {learngene.image_shape[-1]} channels."
        )

    keras.utils.set_random_seed(seed)
    stem, shape = None, input_shape
    if learngene.stem_layer is not None:
        stem = form.adapt_stem(learngene.stem_layer, input_shape)
        stem = form.copy_unit(stem, input_shape, names.INHERITED_STEM)
        shape = tuple(stem.compute_output_shape((None,) + input_shape)[1:])
    units = chosen.build(form, learngene, n_layers, shape, **build_kwargs)
    descendant = form.assemble(input_shape, stem, units, num_classes, head=head,
                               dropout=dropout, name=name)
    if freeze_learngene:
        for layer in inherited_layers(descendant):
            descendant.get_layer(layer).trainable = False
    return descendant


def _check_size(n_layers, depth):
    """Exactly one of `n_layers` and `depth`, each an int in its range."""
    def is_int(value):
        return isinstance(value, int) and not isinstance(value, bool)

    if (n_layers is None) == (depth is None):
        raise ValueError(
            "inherit() takes the descendant's size as n_layers (its new units: those that are "
            "not a learngene unit taken as it is) or as depth= (all its units, learngene units "
            f"included); got {'both' if depth is not None else 'neither'}."
        )
    if n_layers is not None and not (is_int(n_layers) and 0 <= n_layers <= MAX_NEW_LAYERS):
        raise ValueError(
            f"n_layers={n_layers!r}: the number of new units (those that are not a learngene "
            f"unit taken as it is) must be an int from 0 to {MAX_NEW_LAYERS}."
        )
    if depth is not None and not (is_int(depth) and 1 <= depth <= MAX_DEPTH):
        raise ValueError(
            f"depth={depth!r}: the number of all the descendant's units (learngene units "
            f"included; not the stem, head or bridges) must be an int from 1 to {MAX_DEPTH}."
        )


def inherited_layers(model: keras.Model) -> dict[str, str]:
    """Which layers of a descendant came from the learngene, read from their
    names (so it survives `.keras` save and load).

    Args:
        model: a descendant built by `inherit`.

    Returns:
        `{layer name: ancestry unit name}` for the inherited stem (`"stem"`),
        the inherited units and the copies; fresh units and the head are absent.

    Example:
    ```python
    for name in keras_learngene.inherited_layers(descendant):
        descendant.get_layer(name).trainable = False
    ```
    """
    return {layer.name: names.source_of(layer.name) for layer in model.layers
            if names.source_of(layer.name) is not None}


def scratch_twin(descendant: keras.Model, seed: int | None = None) -> keras.Model:
    """The descendant's architecture with fresh weights: the model to train
    from scratch beside it, as every comparison of the docs and the benchmark
    does ("against scratch").

    Every layer is rebuilt from its config (`keras.models.clone_model`), so
    its weights are drawn by its initialisers, inherited ones included, and
    batch-norm statistics start at zero mean and unit variance. Inherited
    layers are renamed `scratch_<name>`, so `inherited_layers` finds none and
    `train(inherited_lr_scale=...)` does not apply to the twin.

    Args:
        descendant: a `keras.Model` (a descendant built by `inherit`, or any
            Functional or Sequential model).
        seed: seeds Keras' random state before the weights are drawn (`None`:
            the current state).

    Returns:
        A new `keras.Model` with the same layers, shapes and parameter
        count (compile it, or pass it to `training.train`).

    Example:
    ```python
    descendant = keras_learngene.inherit(learngene, 2, num_classes=10)
    scratch = keras_learngene.scratch_twin(descendant, seed=0)
    ```
    """
    if seed is not None:
        keras.utils.set_random_seed(seed)

    def fresh(layer):
        config = layer.get_config()
        if names.source_of(layer.name) is not None:
            config["name"] = f"scratch_{layer.name}"
        return layer.__class__.from_config(config)

    return keras.models.clone_model(descendant, clone_function=fresh)
