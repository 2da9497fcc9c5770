"""SWS: Stage-wise Weight Sharing (Xia et al., IJCAI 2024).

An *auxiliary model* of the ancestry's depth is cut into `S` contiguous
stages; all units of one stage share one set of weights (one Keras layer,
called at every position of its stage). It is distilled from the ancestry
(soft-label KD plus cross-entropy on the probe labels, `training.distill`).
The learngene is one unit per stage. A descendant of any depth `n >= S` maps
its units onto the stages with `stage_layout(n, S)` and starts each unit from
its stage's weights (the paper's Fig. 2: stages expanded to the depth a
descendant needs), then trains without sharing.
"""

import keras
import numpy as np

from keras_learngene import _names as names
from keras_learngene import distribute
from keras_learngene.methods._base import Condensed, Method
from keras_learngene.methods._tleg import (
    DISTILLATION_OPTIONS,
    check_distillation,
    copy_head,
    iso_units_problem,
    run_distillation,
)
from keras_learngene.strategies import Strategy


def stage_layout(n, stages):
    """The stage of each of `n` units: unit `j` (0-based) takes stage
    `floor((j + 1/2) * stages / n)`, the stage whose share of the depth holds
    the unit's centre. Stages are contiguous and in order, their sizes differ
    by at most one, every stage is used when `n >= stages`, and with fewer
    units than stages the units take stages spread over the depth (e.g.
    `stage_layout(2, 3) == [0, 2]`, `stage_layout(5, 3) == [0, 0, 1, 2, 2]`)."""
    if n < 1 or stages < 1:
        raise ValueError(f"stage_layout needs n >= 1 and stages >= 1, got {n} and {stages}.")
    return [int((2 * j + 1) * stages // (2 * n)) for j in range(n)]


def build_auxiliary(form, anatomy, stages, depth, num_classes, like, name="sws_auxiliary"):
    """The SWS auxiliary model: a copy of the ancestry's stem, `depth` units
    in `stages` stages (`stage_layout`), where every unit of stage `s` is the
    same layer `stage_<s>`, a copy of ancestry unit `like[s]`, and a new head.

    Returns:
        `(model, units)`: the model and its `depth` units in order (shared
        layers repeat).
    """
    shape = tuple(anatomy.stem_output.shape[1:])
    shared = [form.copy_unit(anatomy.units[i], shape, f"stage_{s}") for s, i in enumerate(like)]
    units = [shared[s] for s in stage_layout(depth, stages)]
    stem = None if anatomy.stem is None else form.copy_unit(anatomy.stem, anatomy.input_shape,
                                                            anatomy.stem.name)
    return form.assemble(anatomy.input_shape, stem, units, num_classes, name=name), units


class SWS(Method):
    """SWS (Xia et al., IJCAI 2024): stage-wise weight sharing.

    The auxiliary model has `depth` units (default: the ancestry's) in
    `stages` contiguous stages (`stage_layout`); the units of a stage share
    one layer, initialised from the ancestry unit at the centre (lower middle) of
    the stage's share of the ancestry (`stage_layout(L, stages)`). It is
    distilled from the ancestry's logits (stem copied from the ancestry,
    head copied where it fits). The learngene holds one unit per stage,
    `stage_0 .. stage_{S-1}`, and the trained stem. Descendants are built by
    the `"stage_sharing"` strategy: unit `j` of a descendant of depth `n`
    is a copy of stage `stage_layout(n, S)[j]`.

    Needs units of one shape (ViT blocks, an iso-width CNN such as
    `vgg_iso`); `check` refuses others before any work.

    Options:
        stages: number of stages `S` (default: `num_units`, so `klg condense
            --method sws` keeps 3).
        depth: units of the auxiliary model (default: the ancestry's).
        epochs, temperature, alpha, learning_rate, batch_size: distillation.
        probe_size: probe examples it is distilled on.
    """

    name = "sws"
    title = "SWS"
    description = "SWS: one shared unit per stage, distilled from the ancestry " \
                  "(Xia et al. 2024)"
    needs_data = True
    seeded = True
    strategy = "stage_sharing"
    options = {"stages": None, "depth": None, **DISTILLATION_OPTIONS}
    quick_options = {"epochs": 1, "probe_size": 64, "batch_size": 32}

    def supports(self, anatomy):
        return iso_units_problem(anatomy, "SWS")

    def check(self, job):
        problem = self.supports(job.anatomy)
        if problem:
            raise ValueError(problem)
        check_distillation(job, "SWS")
        stages, L = job.options["stages"], len(job.anatomy.units)
        depth = job.options["depth"] or L
        if stages is not None and (not isinstance(stages, int) or isinstance(stages, bool)
                                   or not 1 <= stages <= min(L, depth)):
            raise ValueError(
                f"stages={stages!r} must be an int from 1 to {min(L, depth)} (the ancestry has "
                f"{L} units, the auxiliary model {depth})."
            )
        if (stages or job.num_units) > depth:
            raise ValueError(f"depth={depth} is smaller than the {stages or job.num_units} "
                             "stages; every stage needs a unit.")

    def condense(self, job):
        o, form, anatomy = job.options, job.form, job.anatomy
        L = len(anatomy.units)
        stages = o["stages"] or min(job.num_units, L)
        depth = o["depth"] or L
        keras.utils.set_random_seed(job.seed)
        ancestry_stages = np.asarray(stage_layout(L, stages))
        like = [int(np.flatnonzero(ancestry_stages == s)[((ancestry_stages == s).sum() - 1) // 2])
                for s in range(stages)]
        model, units = build_auxiliary(form, anatomy, stages, depth,
                                       job.ancestry.output_shape[-1], like)
        copied = copy_head(job.ancestry, model)
        summary = run_distillation(job, model)
        shape = tuple(anatomy.stem_output.shape[1:])
        shared = list(dict.fromkeys(units))  # the stage layers, in order
        with distribute.local_scope():
            learngene_units = [form.copy_unit(unit, shape, unit.name) for unit in shared]
            stem = None if anatomy.stem is None else form.copy_unit(
                model.get_layer(anatomy.stem.name), anatomy.input_shape, anatomy.stem.name)
        return Condensed(like, {
            "selection": "stage_sharing", "scores": None, "stages": stages,
            "learngene_units": [u.name for u in learngene_units],
            "auxiliary": {"depth": depth, "stage_of_unit": stage_layout(depth, stages),
                          "init_from_units": like, "head_copied": copied},
            "distillation": summary, "probe_examples": summary["probe_examples"],
        }, units=learngene_units, stem=stem)

    def describe(self, provenance):
        aux, kd = provenance.get("auxiliary", {}), provenance.get("distillation", {})
        return [
            f"SWS: {provenance.get('stages')} stages over an auxiliary model of depth "
            f"{aux.get('depth')} (stage of each unit {aux.get('stage_of_unit')}), initialised "
            f"from ancestry units {provenance.get('source_units')}, distilled "
            f"{kd.get('epochs')} epoch(s) on {kd.get('probe_examples')} images: accuracy "
            f"{kd.get('accuracy', 0):.3f}, agreement with the ancestry "
            f"{kd.get('agreement', 0):.3f}",
            "descendant of depth n: unit j starts from stage stage_layout(n, S)[j] "
            "(strategy stage_sharing)",
        ]


class StageSharing(Strategy):
    """SWS's inheritance: unit `j` of a descendant of depth `n = S +
    n_layers` is a copy of stage `stage_layout(n, S)[j]`. A stage's first
    unit is the learngene's unit taken as it is, `inherited_stage_<s>`; the
    others are its new copies, `copy<n>_stage_<s>`."""

    def __init__(self):
        super().__init__("stage_sharing", None,
                         "each stage copied over its share of the depth, evenly (SWS)",
                         generic=False)

    def layout(self, num_units, n_layers):
        seen, slots = set(), []
        for s in stage_layout(num_units + n_layers, num_units):
            slots.append(("copy" if s in seen else "learngene", s))
            seen.add(s)
        return slots

    def build(self, form, learngene, n_layers, shape):
        sources = learngene.learngene_units
        units, copies = [], 0
        for source, s in self.layout(len(sources), n_layers):
            like = sources[s]
            expected = tuple(like.input.shape[1:])
            if len(expected) != len(shape) or expected[-1] != shape[-1]:
                raise ValueError(
                    f"Stage unit {like.name!r} takes inputs of shape {expected}; the stem "
                    f"gives {tuple(shape)}."
                )
            if source == "learngene":
                name = names.inherited(like.name)
            else:
                name, copies = names.copy(copies, like.name), copies + 1
            units.append(form.copy_unit(like, shape, name))
        return units
