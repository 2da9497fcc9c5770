"""Condensing: turn an ancestry into a learngene with a registered method.

The core path, top to bottom:

1. a form cuts the ancestry into `stem -> units -> head`;
2. the method's options and the probe data are checked, before any work;
3. the method (`keras_learngene.methods`) measures what it measures and
   returns the units the learngene is made of, with its own provenance;
4. the stem and those units are copied into a `Learngene` (float32, on no
   device mesh), with the provenance of every choice.
"""

from __future__ import annotations

import datetime
import os
import platform
import time
import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING

import keras
import numpy as np

from keras_learngene import distribute, plugins
from keras_learngene.learngene import Learngene, fingerprint_array, fingerprint_weights
from keras_learngene.methods import Job, chain_test, no_chain
from keras_learngene.version import __version__

if TYPE_CHECKING:
    from keras_learngene.forms import Form

MIN_PROBE_EXAMPLES = 32
# condense()'s keyword arguments of 0.1 that became options of a method
_RENAMED_OPTIONS = {"heur_tasks": ("heur", "tasks")}


def resolve_form(model, form=None):
    """The form to cut `model` with: the one given (name or `Form`), or the
    first registered form that matches (the generic Functional form is last)."""
    if form is not None:
        return plugins.get_form(form) if isinstance(form, str) else form
    names = plugins.registry("forms").in_order()
    # the generic Functional form cuts almost anything: every other form first
    for name in [n for n in names if n != "functional"] + ["functional"] * ("functional" in names):
        candidate = plugins.get_form(name)
        if candidate.matches(model):
            return candidate
    raise ValueError(
        f"No registered form can cut model {getattr(model, 'name', model)!r} "
        f"({type(model).__name__}); registered forms: "
        f"{', '.join(plugins.registry('forms').names())}. A model needs one input, one "
        "output and a Functional graph."
    )


def condense(ancestry: keras.Model | str | os.PathLike, data: tuple | Iterable | None = None, *,
             num_units: int = 3, method: str = "auto", form: str | Form | None = None,
             seed: int = 0, verbose: int = 0, n_layers: int | None = None,
             **options) -> Learngene:
    """Condenses an ancestry model into a learngene of `num_units` units.

    Args:
        ancestry: a trained Functional `keras.Model` (or a path to a `.keras` file).
        data: probe data: `(x, y)` arrays of images shaped like the ancestry's
            input and int labels, or a `tf.data.Dataset`, `keras.utils.PyDataset`
            or generator of `(x, y)` batches (collected into arrays). Methods
            that measure something (Auto and Heur Learngene) need them;
            `front`, `back` and `weight_selection` do not.
        num_units: how many ancestry units the learngene keeps (k).
        method: a registered method (`klg plugins --all` lists them): `"auto"`
            (Auto Learngene: similarity to a pseudo descendant), `"heur"` (Heur
            Learngene: gradient stability), `"auto_distill"` (Auto Learngene
            with a distilled pseudo descendant), `"tleg"` and `"sws"` (TLEG's
            linear expansion, SWS's stage sharing: descendants of any depth),
            `"front"` / `"back"` (the first / last k units),
            `"weight_selection"`, or a plugin's; docs/family.md compares them.
        form: a form name or `Form`; default: detected from the model.
        seed: seeds every random choice of the method.
        verbose: Keras verbosity of any training the method runs.
        n_layers: deprecated name of `num_units` (0.1).
        **options: the method's options (`klg condense -o KEY=VALUE`). Every
            method's, with their defaults: `keras_learngene.plugins.get_method(
            name).options`; what they mean: the method's class docstring and its
            section of docs/family.md. An unknown name is refused with the list.

    Returns:
        A `Learngene` (not yet saved: call `.save(path)`).

    Raises:
        ValueError: bad `num_units`, an unknown method, option, form, or bad
            probe data; raised before any training starts.

    Example:
    ```python
    ancestry = keras_learngene.load_default_ancestry()
    task = keras_learngene.datasets.load_task("embedded", classes="base")
    learngene = keras_learngene.condense(ancestry, (task.x_train, task.y_train), num_units=3)
    learngene.save("learngene.keras")
    ```

    References:
        - Wang et al., Learngene: Inheriting Condensed Knowledge from the
          Ancestry Model to Descendant Models, [arXiv 2305.02279](https://arxiv.org/abs/2305.02279).
        - Wang et al., Learngene: From Open-World to Your Learning Task (Heur
          Learngene), [arXiv 2106.06788](https://arxiv.org/abs/2106.06788).
    """
    start = time.perf_counter()
    if n_layers is not None:
        warnings.warn("condense(n_layers=...) is now condense(num_units=...); n_layers is "
                      "deprecated and will be removed.", DeprecationWarning, stacklevel=2)
        num_units = n_layers
    if isinstance(ancestry, str):
        from keras_learngene._io import load_keras

        ancestry = load_keras(ancestry, what="ancestry")
    chosen = plugins.get_method(method)
    form = resolve_form(ancestry, form)
    anatomy = form.split(ancestry)
    L = len(anatomy.units)
    if not isinstance(num_units, int | np.integer) or isinstance(num_units, bool) or \
            not 1 <= num_units <= L:
        raise ValueError(
            f"num_units={num_units!r}: a learngene keeps 1 to {L} of this ancestry's {L} units."
        )
    x, y = _check_probe(data, anatomy) if chosen.needs_data else (None, None)
    job = Job(ancestry, form, anatomy, x, y, int(num_units), _method_options(chosen, options),
              seed=seed, verbose=verbose, chains=chain_test(anatomy, form))
    reason = chosen.supports(anatomy)
    if reason:
        raise ValueError(reason)
    chosen.check(job)
    if looks_untrained(ancestry):
        warnings.warn(
            f"Ancestry {ancestry.name!r} looks untrained (every bias/beta/gamma is still at its "
            "initial value): its learngene would carry no knowledge. Train it first.",
            stacklevel=2,
        )
    result = chosen.condense(job)
    indices = [int(i) for i in result.indices]
    provenance = {
        "method": chosen.name, "form": form.name, "seed": seed, "num_units": int(num_units),
        "options": job.options, "strategy": chosen.strategy, **result.record,
        "source_units": indices, "source_names": [anatomy.units[i].name for i in indices],
        "ancestry": {"name": ancestry.name, "class": type(ancestry).__name__,
                     "fingerprint": fingerprint_weights(ancestry), "units": L},
        "backend": keras.backend.backend(),
        "versions": {"keras_learngene": __version__, "keras": keras.__version__,
                     "python": platform.python_version(), "numpy": np.__version__},
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    if x is not None or data is not None:
        probe = x if x is not None else np.asarray(
            data[0] if isinstance(data, tuple | list) else data)
        provenance.setdefault("probe_examples", len(probe))
        provenance["probe_fingerprint"] = fingerprint_array(probe)
    provenance["seconds"] = round(time.perf_counter() - start, 3)
    keras.utils.set_random_seed(seed)  # bridges are fresh layers: seeded like the rest
    return make_learngene(form, anatomy, indices, provenance, units=result.units,
                          stem=result.stem)


def _method_options(method, options):
    """The method's options: its defaults, updated with `options`; unknown
    names are refused with the ones it takes."""
    for old, (owner, new) in _RENAMED_OPTIONS.items():
        if old in options and method.name == owner:
            warnings.warn(f"condense({old}=...) is now condense({new}=...).",
                          DeprecationWarning, stacklevel=3)
            options[new] = options.pop(old)
    unknown = sorted(set(options) - set(method.options))
    if unknown:
        takes = ", ".join(method.options) or "no options"
        raise ValueError(
            f"Method {method.name!r} takes no option {', '.join(map(repr, unknown))}; its "
            f"options: {takes}."
        )
    return {**method.options, **options}


def _check_probe(data, anatomy):
    """Probe data (arrays, `tf.data`, `PyDataset` or a generator of `(x, y)`
    batches) as float32 images and int64 labels, checked before any work."""
    from keras_learngene._checks import check_images
    from keras_learngene._data import to_arrays

    if data is None:
        raise ValueError(
            "This method needs probe data: pass data=(x, y) with images shaped like the "
            f"ancestry's input {anatomy.input_shape} and int labels."
        )
    x, y = to_arrays(data, x_rank=len(anatomy.input_shape), name="data")
    check_images(x, where="data", input_shape=None)
    if tuple(x.shape[1:]) != tuple(anatomy.input_shape):
        raise ValueError(
            f"Probe images have shape {tuple(x.shape[1:])} but the ancestry takes "
            f"{tuple(anatomy.input_shape)}; resize or convert the probe images."
        )
    if len(x) < MIN_PROBE_EXAMPLES:
        raise ValueError(
            f"Probe data has {len(x)} examples; condensing needs at least "
            f"{MIN_PROBE_EXAMPLES} to compare representations."
        )
    if len(np.unique(y)) < 2:
        raise ValueError("Probe labels must cover at least 2 classes to train on.")
    return x, y


def looks_untrained(model):
    """True when every bias, beta and gamma vector of `model` is still
    constant, as initialisers leave them (training moves them at once)."""
    vectors = [w for w in model.weights
               if w.path.rsplit("/", 1)[-1] in ("bias", "beta", "gamma") and len(w.shape) == 1]
    if not vectors:
        return False
    return all(np.ptp(keras.ops.convert_to_numpy(w)) == 0 for w in vectors)


def make_learngene(form, anatomy, indices, provenance, name="learngene", units=None, stem=None):
    """The `Learngene` of the ancestry units at `indices`: copies of the stem
    and of those units, with a fresh bridge (`Form.bridge`) wherever two of
    them do not chain; or the `units` (and `stem`) a method built itself.

    The learngene is float32 and laid out on no device mesh, whatever the
    ancestry was trained under (a distribution, mixed precision), so it loads
    anywhere."""
    with distribute.local_scope():
        learngene = _build(form, anatomy, indices, provenance, name, units, stem)
    problems = distribute.float32_problems(learngene)
    if problems:
        raise ValueError(
            f"Form {form.name!r} copied units that are not float32: {', '.join(problems)}; "
            "its copy_unit must build copies in the dtype policy in force "
            "(keras_learngene.forms.clone_layer does)."
        )
    return learngene


def _build(form, anatomy, indices, provenance, name, units, stem):
    if stem is None and anatomy.stem is not None:
        stem = form.copy_unit(anatomy.stem, anatomy.input_shape, anatomy.stem.name)
    bridges = []
    if units is None:
        units, shape = [], tuple(anatomy.stem_output.shape[1:])
        for i in indices:
            unit = anatomy.units[i]
            needed = tuple(anatomy.unit_inputs[i].shape[1:])
            if needed != shape:
                bridge = form.bridge(shape, needed, f"bridge_{len(bridges)}", like=unit)
                if bridge is None:
                    raise ValueError(no_chain(len(indices)))
                units.append(bridge)
                bridges.append(unit.name)
            units.append(form.copy_unit(unit, needed, unit.name))
            shape = tuple(anatomy.unit_outputs[i].shape[1:])
    provenance = {**provenance, "bridges_before": bridges}
    return Learngene(anatomy.input_shape, stem, units, form.name, provenance, name=name)
