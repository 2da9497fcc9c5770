"""Auto Learngene (Wang et al., arXiv 2305.02279), the similarity variant.

A small *pseudo descendant* of the ancestry's form is trained briefly on the
probe data; every ancestry unit and every pseudo-descendant unit is tapped on
the same probe inputs and each pair is scored by a similarity metric (linear
CKA by default): a matrix `S` (ancestry units x pseudo-descendant units). A
selection rule turns `S` into the learngene's units.
"""

import warnings

import keras
import numpy as np

from keras_learngene import plugins
from keras_learngene.forms import feature_model
from keras_learngene.methods._base import Condensed, Method, heatmap
from keras_learngene.methods._selection import SELECTIONS, check_selection, select_units
from keras_learngene.similarity import separation, similarity_matrix
from keras_learngene.training import train

SIMILARITY_BATCH = 256


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


def unit_similarities(model_a, outputs_a, model_b, outputs_b, x, metric,
                      batch_size=SIMILARITY_BATCH, verbose=0):
    """`S[i, j]`: similarity of tensor `outputs_a[i]` of `model_a` and
    `outputs_b[j]` of `model_b` on the same images `x`, streamed in
    mini-batches (a tail smaller than the metric's `min_batch_size` joins the
    batch before it). `verbose` (Keras' 0, 1 or 2) shows a progress bar of the
    batches."""
    tap_a, tap_b = feature_model(model_a, outputs_a), feature_model(model_b, outputs_b)
    smallest = metric.accumulator(1, 1).min_batch_size
    starts = list(range(0, len(x), batch_size))
    if len(starts) > 1 and len(x) - starts[-1] < smallest:
        starts.pop()
    bounds = list(zip(starts, starts[1:] + [len(x)]))

    bar = keras.utils.Progbar(len(x), verbose=verbose, unit_name="probe image")  # 0: silent

    def taps(tap, progress=None):
        for lo, hi in bounds:
            yield [keras.ops.convert_to_numpy(f) for f in _as_list(tap.predict_on_batch(x[lo:hi]))]
            if progress:
                progress.update(hi)

    return similarity_matrix(metric, taps(tap_a, bar), taps(tap_b))


def _as_list(outputs):
    return list(outputs) if isinstance(outputs, list | tuple) else [outputs]


class AutoLearngene(Method):
    """Auto Learngene: the ancestry units most similar to a briefly trained
    pseudo descendant's units.

    Options:
        similarity: a registered similarity metric (default `"linear_cka"`).
        selection: `"align"`, `"top_k"` or `"window"` (see `select_units`).
        pseudo_depth: units of the pseudo descendant (default: `num_units`).
        pseudo_epochs: epochs of pseudo-descendant training.
        probe_size: probe examples the representations are compared on.
    """

    name = "auto"
    title = "Auto Learngene"
    description = "Auto Learngene: units most similar to a pseudo descendant's (CKA)"
    needs_data = True
    seeded = True
    options = {"similarity": "linear_cka", "selection": "align", "pseudo_depth": None,
               "pseudo_epochs": 2, "probe_size": 1024}
    quick_options = {"pseudo_epochs": 1}

    def check(self, job):
        o = job.options
        plugins.get_similarity(o["similarity"])
        depth = o["pseudo_depth"]
        if depth is not None and (not isinstance(depth, int) or depth < 1):
            raise ValueError(f"pseudo_depth={depth!r} must be a positive int (or None: "
                             "num_units).")
        _positive_int(o, "pseudo_epochs")
        _positive_int(o, "probe_size")
        if o["selection"] not in SELECTIONS:
            raise ValueError(f"Unknown selection rule {o['selection']!r}; one of "
                             f"{', '.join(SELECTIONS)}.")
        check_selection(o["selection"], job.num_units, depth or job.num_units)

    def condense(self, job):
        o = job.options
        metric = plugins.get_similarity(o["similarity"])
        depth = o["pseudo_depth"] or job.num_units
        keras.utils.set_random_seed(job.seed)
        classes, y_task = np.unique(job.y, return_inverse=True)
        pseudo, pseudo_outputs, like = build_pseudo_descendant(job.form, job.anatomy, depth,
                                                               len(classes))
        train(pseudo, job.x, y_task, epochs=o["pseudo_epochs"], batch_size=64, seed=job.seed,
              verbose=job.verbose, flip=True)  # train's old default: learngenes unchanged
        rng = np.random.default_rng(job.seed)
        probe = job.x[np.sort(rng.permutation(len(job.x))[:o["probe_size"]])]
        S = unit_similarities(job.ancestry, job.anatomy.unit_outputs, pseudo, pseudo_outputs,
                              probe, metric, verbose=job.verbose)
        indices, matches = select_units(S, job.num_units, o["selection"], job.chains)
        check = separation(S)
        if not check.separates:
            warnings.warn(_not_separating(check, metric.name, len(probe)), stacklevel=3)
        return Condensed(indices, {
            "selection": o["selection"], "similarity": metric.name,
            "matrix": S.round(6).tolist(), "matches": matches,
            "scores": [round(float(S[i, j]), 6) for i, j in zip(indices, matches)],
            "separation": {"separates": check.separates, "spread": round(check.spread, 6),
                           "threshold": check.threshold},
            "pseudo_descendant": {"depth": depth, "like_units": like,
                                  "epochs": o["pseudo_epochs"]},
            "probe_examples": len(probe),
            "heatmap": heatmap(S, xlabel="pseudo-descendant unit", ylabel="ancestry unit",
                               colorbar=metric.name, boxes=zip(indices, matches)),
        })

    def describe(self, provenance):
        return similarity_table(provenance, f"similarity ({provenance.get('similarity')}) of "
                                "ancestry units to pseudo-descendant units:", "pseudo")


def similarity_table(provenance, title, column):
    """Rows of ancestry units x columns of pseudo units, with the chosen units
    marked and why: the text of a method that records `matrix` and `matches`."""
    matrix, chosen = provenance["matrix"], set(provenance["source_units"])
    lines = [title, "unit " + "".join(f"{f'{column}{j}':>10}" for j in range(len(matrix[0])))]
    for i, row in enumerate(matrix):
        lines.append(f"{i:>4d} " + "".join(f"{v:10.3f}" for v in row)
                     + (" <- selected" if i in chosen else ""))
    why = ", ".join(f"unit {i} ~ {column} {j} ({s:.3f})" for i, j, s in
                    zip(provenance["source_units"], provenance["matches"], provenance["scores"]))
    lines.append(f"selected by {provenance.get('selection')}: {why}")
    sep = provenance.get("separation")
    if sep and not sep.get("separates", True):
        lines.append(f"warning: the units' best scores differ by only {sep['spread']:.4f} "
                     "(do not separate); the choice is close to arbitrary.")
    return lines


def _not_separating(check, metric, examples):
    return (
        f"The {metric} scores do not separate the ancestry units (their best scores differ "
        f"by {check.spread:.4f} < {check.threshold}), so the selection is close to arbitrary. "
        f"Use more probe examples (now {examples}) or a debiased metric "
        "(similarity='linear_cka_debiased')."
    )


def _positive_int(options, key):
    value = options[key]
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{key}={value!r} must be a positive int.")
