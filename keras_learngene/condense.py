"""Condensing: pick a few integral units of an ancestry as the learngene.

The core path, top to bottom:

1. a form cuts the ancestry into `stem -> units -> head`;
2. Auto Learngene trains a small *pseudo descendant* of the same form on the
   probe data, taps every ancestry unit and every pseudo-descendant unit on
   the same probe inputs and scores each pair with a similarity metric:
   a matrix `S` (ancestry units x pseudo-descendant units);
3. a selection rule turns `S` into unit indices; Heur Learngene instead
   scores units by how stable their gradients are over a sequence of tasks;
4. the stem and the selected units are copied into a `Learngene`, with the
   provenance of every choice.
"""

import datetime
import platform
import time
import warnings

import keras
import numpy as np

from keras_learngene import distribute, plugins
from keras_learngene.forms import feature_model
from keras_learngene.heur import heur_statistics
from keras_learngene.learngene import Learngene, fingerprint_array, fingerprint_weights
from keras_learngene.training import train
from keras_learngene.version import __version__

METHODS = ("auto", "heur", "front", "back")
SELECTIONS = ("align", "top_k", "window")
MIN_PROBE_EXAMPLES = 32


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


# ------------------------------------------------------------------------- selection
def chain_test(anatomy, form=None):
    """`ok(prev, nxt)`: whether unit `nxt` can follow unit `prev` (`None` is
    the stem): `prev`'s output shape is `nxt`'s input shape, or `form` can
    bridge the two with a fresh layer (`Form.bridge`)."""
    ins = [tuple(t.shape[1:]) for t in anatomy.unit_inputs]
    outs = [tuple(t.shape[1:]) for t in anatomy.unit_outputs]
    stem = tuple(anatomy.stem_output.shape[1:])
    bridgeable = {}

    def ok(prev, nxt):
        pair = (stem if prev is None else outs[prev], ins[nxt])
        if pair[0] == pair[1]:
            return True
        if form is not None and pair not in bridgeable:
            bridgeable[pair] = form.bridge(*pair, "bridge_probe") is not None
        return bridgeable.get(pair, False)

    return ok


def select_units(S, k, rule="align", compatible=None):
    """Chooses `k` ancestry units from a similarity matrix.

    Every rule returns increasing indices that chain (each unit's input shape
    is the previous one's output shape), so the learngene runs as one model.

    Args:
        S: `(L, D)` similarity of ancestry unit `i` and pseudo-descendant unit `j`.
        k: number of units to select.
        rule: `"align"` (default): the order-preserving alignment of `k`
            ancestry units to `k` pseudo-descendant units with the highest
            summed similarity, so each learngene unit plays the role of one
            descendant layer, in order; `"top_k"`: the `k` units with the
            highest best-match similarity; `"window"`: the contiguous run of
            `k` units with the highest summed best-match similarity.
        compatible: junction test `ok(prev, nxt)` (`prev=None`: the stem);
            default: every chain fits.

    Returns:
        `(indices, matches)`: the selected ancestry units in order, and for
        each the pseudo-descendant unit it matches.

    Raises:
        ValueError: unknown rule, impossible `k`, or no chain of `k` units.
    """
    S = np.asarray(S, dtype="float64")
    L, D = S.shape
    ok = compatible or (lambda prev, nxt: True)
    if rule not in SELECTIONS:
        raise ValueError(f"Unknown selection rule {rule!r}; one of {', '.join(SELECTIONS)}.")
    if not 1 <= k <= L:
        raise ValueError(f"Cannot select k={k} units out of {L}; choose 1 <= k <= {L}.")
    if rule == "align" and k > D:
        raise ValueError(
            f"selection='align' matches each learngene unit to one of the pseudo descendant's "
            f"{D} units, so k={k} needs a pseudo descendant of depth >= {k}."
        )
    best = S.max(axis=1)
    if rule == "window":
        starts = [i for i in range(L - k + 1)
                  if ok(None, i) and all(ok(j, j + 1) for j in range(i, i + k - 1))]
        if not starts:
            raise ValueError(_no_chain(k))
        start = max(starts, key=lambda i: best[i:i + k].sum())  # ties: the earliest
        path = [(i, int(np.argmax(S[i]))) for i in range(start, start + k)]
    else:
        # Dynamic programme over increasing chains; a state is (ancestry unit,
        # matched pseudo unit) and keeps its best path. For top_k the pseudo
        # index is free, so each unit is worth its best match.
        align = rule == "align"
        states = {}
        for i in range(L):
            if ok(None, i):
                for j in (range(D) if align else [int(np.argmax(S[i]))]):
                    states[(i, j)] = (S[i, j], [(i, j)])
        for _ in range(k - 1):
            grown = {}
            for (i, j), (value, path) in states.items():
                for i2 in range(i + 1, L):
                    if not ok(i, i2):
                        continue
                    for j2 in (range(j + 1, D) if align else [int(np.argmax(S[i2]))]):
                        candidate = value + S[i2, j2]
                        if (i2, j2) not in grown or candidate > grown[(i2, j2)][0] + 1e-12:
                            grown[(i2, j2)] = (candidate, path + [(i2, j2)])
            states = grown
        if not states:
            raise ValueError(_no_chain(k))
        path = max(states.values(), key=lambda entry: entry[0] + 1e-9 * -entry[1][0][0])[1]
    return [int(i) for i, _ in path], [int(j) for _, j in path]


def _no_chain(k):
    return (
        f"No chain of {k} units fits together after the stem (their shapes change between "
        "downsampling stages); choose a smaller n_layers or another method."
    )


# --------------------------------------------------------------------- probe data
def _check_probe(data, anatomy, need_labels):
    if data is None:
        raise ValueError(
            "This method needs probe data: pass data=(x, y) with images shaped like the "
            f"ancestry's input {anatomy.input_shape} and int labels."
        )
    if isinstance(data, tuple | list) and len(data) == 2:
        x, y = data
    elif need_labels:
        raise ValueError("Probe data must be a tuple (x, y) of images and int labels.")
    else:
        x, y = data, None
    x = np.asarray(x, dtype="float32")
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
    if y is not None:
        y = np.asarray(y).astype("int64")
        if len(y) != len(x):
            raise ValueError(f"Probe data has {len(x)} images but {len(y)} labels.")
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


# ----------------------------------------------------------------- auto learngene
def build_pseudo_descendant(form, anatomy, depth, num_classes, name="pseudo_descendant"):
    """A small, randomly initialised model of the ancestry's form: a fresh
    stem and `depth` fresh units shaped like ancestry units spread evenly over
    its depth (the first `depth` units when those do not chain), and a new head.

    Returns:
        `(model, unit_outputs, like)`: the model, its units' output tensors,
        and the indices of the ancestry units they imitate.
    """
    L = len(anatomy.units)
    spread = sorted(set(np.linspace(0, L - 1, depth).round().astype(int).tolist()))
    candidates = [spread] if len(spread) == depth else []
    candidates.append(list(range(min(depth, L))))
    stem = None if anatomy.stem is None else form.fresh_unit(
        anatomy.stem, anatomy.input_shape, "stem", preserve_shape=False)
    error = None
    for like in candidates:
        try:
            units, shape = [], tuple(anatomy.stem_output.shape[1:])
            for n, i in enumerate(like):
                unit = form.fresh_unit(anatomy.units[i], shape, f"pseudo_unit_{n}",
                                       preserve_shape=False)
                units.append(unit)
                shape = tuple(unit.compute_output_shape((None,) + shape)[1:])
            model, outputs = form.assemble(anatomy.input_shape, stem, units, num_classes,
                                           name=name, return_unit_outputs=True)
            return model, outputs, like
        except ValueError as exc:  # shapes do not chain; try the next layout
            error = exc
    raise ValueError(f"Cannot build a pseudo descendant of depth {depth}: {error}")


def similarity_matrix(ancestry, unit_outputs, pseudo, pseudo_outputs, x, metric,
                      batch_size=256):
    """`S[i, j]`: similarity of ancestry unit `i` and pseudo-descendant unit
    `j` (their output tensors in each model's graph) on the probe images `x`,
    streamed in mini-batches."""
    tap_a = feature_model(ancestry, unit_outputs)
    tap_p = feature_model(pseudo, pseudo_outputs)
    acc = metric.accumulator(len(unit_outputs), len(pseudo_outputs))
    for start in range(0, len(x), batch_size):
        batch = x[start:start + batch_size]
        if len(batch) < 4:  # the unbiased estimators need 4 examples; drop a tiny tail
            break
        xs = [np.asarray(f) for f in _as_list(tap_a.predict_on_batch(batch))]
        ys = [np.asarray(f) for f in _as_list(tap_p.predict_on_batch(batch))]
        acc.update(xs, ys)
    return acc.result()


def _as_list(outputs):
    return [keras.ops.convert_to_numpy(o) for o in
            (outputs if isinstance(outputs, list | tuple) else [outputs])]


# ------------------------------------------------------------------------ condense
def condense(
    ancestry,
    data=None,
    *,
    n_layers=3,
    method="auto",
    form=None,
    similarity="linear_cka",
    selection="align",
    pseudo_depth=None,
    pseudo_epochs=2,
    probe_size=1024,
    heur_tasks=3,
    seed=0,
    verbose=0,
):
    """Condenses an ancestry model into a learngene of `n_layers` units.

    Args:
        ancestry: a trained Functional `keras.Model` (or a path to a `.keras` file).
        data: probe data `(x, y)`: images shaped like the ancestry's input and
            int labels. Auto Learngene trains its pseudo descendant on them and
            compares representations on up to `probe_size` of them; Heur
            Learngene trains on a sequence of tasks drawn from their classes.
            Not needed by `"front"` and `"back"`.
        n_layers: number of ancestry units in the learngene (k).
        method: `"auto"` (Auto Learngene: similarity to a pseudo descendant),
            `"heur"` (Heur Learngene: gradient stability over tasks),
            `"front"` / `"back"` (the first / last k units; baselines).
        form: a form name or `Form`; default: detected from the model.
        similarity: registered similarity metric name (Auto Learngene).
        selection: `"align"`, `"top_k"` or `"window"` (see `select_units`).
        pseudo_depth: units of the pseudo descendant (default: `n_layers`).
        pseudo_epochs: epochs of pseudo-descendant training.
        probe_size: probe examples used to compare representations.
        heur_tasks: number of tasks in Heur Learngene's sequence.
        seed: seeds the pseudo descendant, the probe subset and the tasks.
        verbose: Keras verbosity of the pseudo-descendant training.

    Returns:
        A `Learngene` (not yet saved: call `.save(path)`).

    Raises:
        ValueError: bad `n_layers`, method, selection, form, or probe data.

    Example:
    ```python
    ancestry = keras_learngene.load_default_ancestry()
    task = keras_learngene.datasets.load_task("embedded", classes="base")
    learngene = keras_learngene.condense(ancestry, (task.x_train, task.y_train), n_layers=3)
    learngene.save("learngene.keras")
    ```

    References:
        - Wang et al., Learngene: Inheriting Condensed Knowledge from the
          Ancestry Model to Descendant Models, [arXiv 2305.02279](https://arxiv.org/abs/2305.02279).
        - Wang et al., Learngene: From Open-World to Your Learning Task (Heur
          Learngene), [arXiv 2106.06788](https://arxiv.org/abs/2106.06788).
    """
    start = time.perf_counter()
    if isinstance(ancestry, str):
        ancestry = keras.saving.load_model(ancestry)
    if method not in METHODS:
        raise ValueError(f"Unknown method {method!r}; one of {', '.join(METHODS)}.")
    form = resolve_form(ancestry, form)
    anatomy = form.split(ancestry)
    L = len(anatomy.units)
    if not isinstance(n_layers, int | np.integer) or not 1 <= n_layers <= L:
        raise ValueError(
            f"n_layers={n_layers!r}: a learngene keeps 1 to {L} of this ancestry's {L} units."
        )
    if looks_untrained(ancestry):
        warnings.warn(
            f"Ancestry {ancestry.name!r} looks untrained (every bias/beta/gamma is still at its "
            "initial value): its learngene would carry no knowledge. Train it first.",
            stacklevel=2,
        )
    ok = chain_test(anatomy, form)
    provenance = {"method": method, "form": form.name, "seed": seed}
    if method in ("front", "back"):
        indices = list(range(n_layers)) if method == "front" else list(range(L - n_layers, L))
        provenance.update(selection=method, scores=None, matrix=None)
        if data is not None:
            provenance["probe_fingerprint"] = fingerprint_array(np.asarray(data[0]))
    elif method == "auto":
        x, y = _check_probe(data, anatomy, need_labels=True)
        metric = plugins.get_similarity(similarity)
        depth = pseudo_depth or n_layers
        keras.utils.set_random_seed(seed)
        classes, y_task = np.unique(y, return_inverse=True)
        pseudo, pseudo_outputs, like = build_pseudo_descendant(form, anatomy, depth,
                                                               len(classes))
        train(pseudo, x, y_task, epochs=pseudo_epochs, batch_size=64, seed=seed,
              verbose=verbose)
        probe = x[np.sort(np.random.default_rng(seed).permutation(len(x))[:probe_size])]
        S = similarity_matrix(ancestry, anatomy.unit_outputs, pseudo,
                              pseudo_outputs, probe, metric)
        indices, matches = select_units(S, n_layers, selection, ok)
        provenance.update(
            selection=selection, similarity=metric.name, matrix=S.round(6).tolist(),
            matches=matches, scores=[round(float(S[i, j]), 6) for i, j in zip(indices, matches)],
            pseudo_descendant={"depth": depth, "like_units": like, "epochs": pseudo_epochs},
            probe_fingerprint=fingerprint_array(x), probe_examples=len(probe),
        )
    else:  # heur
        x, y = _check_probe(data, anatomy, need_labels=True)
        stats, instability, tasks = heur_statistics(form, anatomy, x, y, heur_tasks, seed)
        order = np.argsort(instability, kind="stable")
        indices = _most_stable_chain(order, instability, n_layers, ok)
        provenance.update(
            selection="most_stable", matrix=np.asarray(stats).round(6).tolist(),
            instability=np.round(instability, 6).tolist(), tasks=tasks,
            scores=[round(float(instability[i]), 6) for i in indices],
            probe_fingerprint=fingerprint_array(x),
        )
    provenance.update(
        source_units=indices,
        source_names=[anatomy.units[i].name for i in indices],
        ancestry={"name": ancestry.name, "class": type(ancestry).__name__,
                  "fingerprint": fingerprint_weights(ancestry), "units": L},
        backend=keras.backend.backend(),
        versions={"keras_learngene": __version__, "keras": keras.__version__,
                  "python": platform.python_version(), "numpy": np.__version__},
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        seconds=round(time.perf_counter() - start, 3),
    )
    return make_learngene(form, anatomy, indices, provenance)


def _most_stable_chain(order, instability, k, ok):
    """The `k` most stable units that chain, preferring lower instability."""
    for chosen in _greedy_chains(list(order), k, ok):
        return chosen
    raise ValueError(_no_chain(k))


def _greedy_chains(order, k, ok):
    chosen = []
    for i in order:
        candidate = sorted(chosen + [i])
        if all(ok(a, b) for a, b in zip([None] + candidate[:-1], candidate)):
            chosen = candidate
        if len(chosen) == k:
            yield chosen
            return


def make_learngene(form, anatomy, indices, provenance, name="learngene"):
    """Copies the stem and the units at `indices` into a `Learngene`, with a
    fresh bridge (`Form.bridge`) wherever two of them do not chain.

    The copies are float32 and laid out on no device mesh, whatever the
    ancestry was trained under (a distribution, mixed precision), so the
    learngene loads anywhere."""
    with distribute.local_scope():
        learngene = _copy_learngene(form, anatomy, indices, provenance, name)
    problems = distribute.float32_problems(learngene)
    if problems:
        raise ValueError(
            f"Form {form.name!r} copied units that are not float32: {', '.join(problems)}; "
            "its copy_unit must build copies in the dtype policy in force "
            "(keras_learngene.forms.clone_layer does)."
        )
    return learngene


def _copy_learngene(form, anatomy, indices, provenance, name):
    stem = None
    if anatomy.stem is not None:
        stem = form.copy_unit(anatomy.stem, anatomy.input_shape, anatomy.stem.name)
    body, shape, bridges = [], tuple(anatomy.stem_output.shape[1:]), []
    for i in indices:
        unit = anatomy.units[i]
        needed = tuple(anatomy.unit_inputs[i].shape[1:])
        if needed != shape:
            bridge = form.bridge(shape, needed, f"bridge_{len(bridges)}", like=unit)
            if bridge is None:
                raise ValueError(_no_chain(len(indices)))
            body.append(bridge)
            bridges.append(unit.name)
        body.append(form.copy_unit(unit, needed, unit.name))
        shape = tuple(anatomy.unit_outputs[i].shape[1:])
    provenance = {**provenance, "bridges_before": bridges}
    return Learngene(anatomy.input_shape, stem, body, form.name, provenance, name=name)
