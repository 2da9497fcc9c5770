"""TLEG: Transformer as Linear Expansion of learnGene (Xia et al., AAAI 2024).

The learngene is two parameter sets per unit type, `theta_A` and `theta_B`.
Layer `l` (1..L) of a model of depth `L` has the parameters
`theta_A + (l / L) * theta_B` (the paper's Eq. 1 and Fig. 2). An *auxiliary
model* of depth `depth` is trained under that constraint by distillation from
the ancestry (soft-label KD plus cross-entropy on the probe labels), so the
gradients reach only `theta_A` and `theta_B` (and the stem and head). A
descendant of any depth `n` is then initialised with unit
`l = theta_A + (l / n) * theta_B` and trained without the constraint.

The constraint is built from Keras layers only: a `LinearExpansionUnit`
holds the shared `ThetaPair` and calls a template unit statelessly
(`Layer.stateless_call`) with the expanded weights, so the auxiliary model
trains with `model.fit` on TensorFlow, JAX and PyTorch alike.
"""

import inspect

import keras
import numpy as np
from keras import layers, ops

from keras_learngene import _names as names
from keras_learngene import distribute
from keras_learngene.methods._base import Condensed, Method
from keras_learngene.strategies import Strategy
from keras_learngene.training import distill

THETA_A, THETA_B = "theta_A", "theta_B"


def iso_units_problem(anatomy, what="TLEG"):
    """Why the ancestry's units cannot share one parameter set, or `None`:
    every unit must be of one class and config, keep its input shape, and
    take the stem's output shape (a ViT's blocks, an iso-width CNN's blocks)."""
    units, shape = anatomy.units, tuple(anatomy.stem_output.shape[1:])
    first = units[0]
    for i, unit in enumerate(units):
        unit_in = tuple(anatomy.unit_inputs[i].shape[1:])
        unit_out = tuple(anatomy.unit_outputs[i].shape[1:])
        config = {k: v for k, v in unit.get_config().items() if k != "name"}
        reference = {k: v for k, v in first.get_config().items() if k != "name"}
        if unit_in != shape or unit_out != shape or type(unit) is not type(first) or \
                config != reference or [tuple(w.shape) for w in unit.weights] != \
                [tuple(w.shape) for w in first.weights]:
            return (
                f"{what} needs units of one shape (one class and config, each mapping "
                f"{shape} to itself), as a ViT's blocks or an iso-width CNN's (preset "
                f"'vgg_iso'); unit {i} ({unit.name!r}, {type(unit).__name__}) maps {unit_in} "
                f"to {unit_out}. Use another method (e.g. 'auto') for ancestries with stages."
            )
    return None


class _Ref:
    """Holds a layer without Keras tracking it (its variables are not trained)."""

    def __init__(self, layer):
        self.layer = layer


class ThetaPair(layers.Layer):
    """The shared parameters of TLEG: `theta_A` and `theta_B`, one pair of
    variables per trainable weight of the unit they expand.

    Args:
        a, b: lists of numpy arrays (the initial values), in the order of the
            unit's `trainable_variables`.
    """

    def __init__(self, a, b, **kwargs):
        super().__init__(**kwargs)
        self.a = [self._theta(v, f"{THETA_A}_{i}") for i, v in enumerate(a)]
        self.b = [self._theta(v, f"{THETA_B}_{i}") for i, v in enumerate(b)]
        self.built = True

    def _theta(self, value, name):
        value = np.asarray(value, dtype="float32")
        return self.add_weight(shape=value.shape, initializer=keras.initializers.Constant(value),
                               name=name, dtype="float32")

    def expanded(self, coefficient):
        """`theta_A + coefficient * theta_B`, one tensor per weight."""
        return [ops.add(a, ops.multiply(coefficient, b)) for a, b in zip(self.a, self.b)]

    def call(self, x):
        return x


class LinearExpansionUnit(layers.Layer):
    """Unit `l` of a TLEG model: `template`'s forward pass with the weights
    `theta_A + coefficient * theta_B` (gradients flow into the shared
    `ThetaPair` only). Its non-trainable state (BatchNorm statistics, seeds)
    is its own.

    Args:
        template: a built unit of the expanded kind (its own variables are
            never read or trained).
        theta: the shared `ThetaPair`.
        coefficient: `l / L`.
        state: initial values of the template's `non_trainable_variables`.
    """

    def __init__(self, template, theta, coefficient, state, **kwargs):
        super().__init__(**kwargs)
        self._template = _Ref(template)
        self.theta = theta
        self.coefficient = float(coefficient)
        self.state = [self.add_weight(shape=tuple(v.shape), dtype=v.dtype, trainable=False,
                                      name=f"state_{i}",
                                      initializer=keras.initializers.Constant(np.asarray(s)))
                      for i, (v, s) in enumerate(zip(template.non_trainable_variables, state))]
        self._pass_training = "training" in inspect.signature(template.call).parameters
        self.built = True

    def call(self, x, training=None):
        template = self._template.layer
        kwargs = {"training": training} if self._pass_training else {}
        out, state = template.stateless_call(self.theta.expanded(self.coefficient),
                                             [v.value for v in self.state], x, **kwargs)
        if training:
            for variable, value in zip(self.state, state):
                variable.assign(value)
        return out

    def compute_output_shape(self, input_shape):
        return self._template.layer.compute_output_shape(input_shape)

    def expanded_weights(self):
        """The unit's weights now, `theta_A + coefficient * theta_B` (numpy)."""
        return [np.asarray(ops.convert_to_numpy(w)) for w in self.theta.expanded(self.coefficient)]


def fit_line(stack, coefficients):
    """Least-squares line `W_l ~ A + c_l * B` through the weights `stack`
    (`(L, ...)`) at `coefficients` `c_l`, element by element; `(A, B)`.
    `A + mean(c) * B` is the mean of the units; one unit gives `B = 0`."""
    c = np.asarray(coefficients, dtype="float64")
    w = np.asarray(stack, dtype="float64").reshape(len(c), -1)
    dc = c - c.mean()
    var = float(np.sum(dc * dc))
    b = (dc @ (w - w.mean(0))) / var if var > 0 else np.zeros(w.shape[1])
    a = w.mean(0) - c.mean() * b
    shape = np.asarray(stack).shape[1:]
    return a.reshape(shape).astype("float32"), b.reshape(shape).astype("float32")


def copy_head(source, target):
    """Copies `source`'s head layers (`head_*`) into `target`'s layers of the
    same name and weight shapes (a head of the ancestry's classes starts the
    auxiliary model where the ancestry is); returns the names copied."""
    copied = []
    for layer in target.layers:
        if not names.is_head(layer.name) or not layer.weights:
            continue
        try:
            other = source.get_layer(layer.name)
        except ValueError:
            continue
        theirs = other.get_weights()
        if [w.shape for w in theirs] == [tuple(w.shape) for w in layer.weights]:
            layer.set_weights(theirs)
            copied.append(layer.name)
    return copied


def probe_subset(job, size):
    """At most `size` probe examples, drawn by the job's seed (kept in order)."""
    rng = np.random.default_rng(job.seed)
    keep = np.sort(rng.permutation(len(job.x))[:size])
    return job.x[keep], job.y[keep]


def check_distillation(job, what):
    """The options every distilling method shares, and labels that index the
    ancestry's logits (the probe classes are the ancestry's classes)."""
    o = job.options
    for key in ("epochs", "probe_size", "batch_size"):
        value = o[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{key}={value!r} must be a positive int.")
    if not isinstance(o["temperature"], int | float) or not o["temperature"] > 0:
        raise ValueError(f"temperature={o['temperature']!r} must be a positive number.")
    if not isinstance(o["alpha"], int | float) or not 0 <= o["alpha"] <= 1:
        raise ValueError(f"alpha={o['alpha']!r} must be a number in [0, 1].")
    if not isinstance(o["learning_rate"], int | float) or not o["learning_rate"] > 0:
        raise ValueError(f"learning_rate={o['learning_rate']!r} must be positive.")
    depth = o.get("depth")
    if depth is not None and (not isinstance(depth, int) or isinstance(depth, bool) or depth < 1):
        raise ValueError(f"depth={depth!r} must be a positive int (or None: the ancestry's).")
    classes = job.ancestry.output_shape[-1]
    if job.y is not None and int(np.max(job.y)) >= classes:
        raise ValueError(
            f"{what} distils the ancestry's own logits, so the probe labels must be its "
            f"classes (0..{classes - 1}); got label {int(np.max(job.y))}. Probe with data of "
            "the ancestry's task."
        )


def run_distillation(job, model):
    """Distils the ancestry into `model` on the probe subset; a summary."""
    o = job.options
    x, y = probe_subset(job, o["probe_size"])
    result = distill(model, job.ancestry, x, y, temperature=o["temperature"], alpha=o["alpha"],
                     epochs=o["epochs"], batch_size=o["batch_size"],
                     learning_rate=o["learning_rate"], seed=job.seed, verbose=job.verbose,
                     flip=True)  # train's old default: learngenes unchanged
    teacher = np.argmax(job.ancestry.predict(x, batch_size=256, verbose=0), -1)
    student = np.argmax(model.predict(x, batch_size=256, verbose=0), -1)
    history = result["history"]
    return {"epochs": o["epochs"], "temperature": o["temperature"], "alpha": o["alpha"],
            "learning_rate": o["learning_rate"], "probe_examples": len(x),
            "final_loss": round(float(history["loss"][-1]), 6),
            "accuracy": round(float(np.mean(student == y)), 6),
            "agreement": round(float(np.mean(student == teacher)), 6),
            "seconds": round(float(result["seconds"]), 3)}


DISTILLATION_OPTIONS = {"epochs": 2, "temperature": 4.0, "alpha": 0.5, "learning_rate": 1e-3,
                        "batch_size": 64, "probe_size": 4096}


def _trainable_values(unit):
    return [np.asarray(ops.convert_to_numpy(v)) for v in unit.trainable_variables]


def _state_values(unit):
    return [np.asarray(ops.convert_to_numpy(v)) for v in unit.non_trainable_variables]


def build_auxiliary(form, anatomy, depth, num_classes, a, b, states, name="tleg_auxiliary"):
    """The TLEG auxiliary model: a fresh copy of the ancestry's stem, `depth`
    `LinearExpansionUnit`s sharing one `ThetaPair` (unit `l` at `l / depth`)
    and a new head. `states[l]`: unit `l`'s initial non-trainable values."""
    shape = tuple(anatomy.stem_output.shape[1:])
    template = form.fresh_unit(anatomy.units[0], shape, "tleg_template", preserve_shape=False)
    theta = ThetaPair(a, b, name="theta")
    units = [LinearExpansionUnit(template, theta, (l + 1) / depth, states[l],
                                 name=f"expanded_{l}") for l in range(depth)]
    stem = None if anatomy.stem is None else form.copy_unit(anatomy.stem, anatomy.input_shape,
                                                            anatomy.stem.name)
    model = form.assemble(anatomy.input_shape, stem, units, num_classes, name=name)
    return model, units, theta


class TLEG(Method):
    """TLEG (Xia et al., AAAI 2024): the learngene is `theta_A` and
    `theta_B`; unit `l` of a depth-`L` model is `theta_A + (l / L) * theta_B`.

    Initialisation: `theta_A`, `theta_B` are the least-squares line through
    the ancestry's units' weights against `l / L` (element by element, so
    `theta_A + mean(l / L) * theta_B` is the mean of the units and `theta_B`
    the depth trend); each auxiliary unit's BatchNorm statistics start from
    the ancestry unit at the same relative depth. The auxiliary model (stem
    copied from the ancestry, head copied where it fits) is then distilled
    from the ancestry's logits under the constraint (`training.distill`).

    The learngene holds two units, `theta_A` and `theta_B` (their
    non-trainable statistics: the auxiliary units' mean in `theta_A`, zeros
    in `theta_B`), and the trained stem; `num_units` does not apply.
    Descendants are built by the `"linear_expansion"` strategy: a descendant
    of depth `n` has unit `l = theta_A + (l/n) theta_B`.

    Needs units of one shape (ViT blocks, an iso-width CNN such as
    `vgg_iso`); `check` refuses others before any work.

    Options:
        depth: units of the auxiliary model (default: the ancestry's).
        epochs, temperature, alpha, learning_rate, batch_size: distillation
            (`alpha` weighs the KD term against cross-entropy).
        probe_size: probe examples it is distilled on.
    """

    name = "tleg"
    title = "TLEG"
    description = "TLEG: units as theta_A + (l/L) theta_B, distilled from the ancestry " \
                  "(Xia et al. 2024)"
    needs_data = True
    seeded = True
    strategy = "linear_expansion"
    options = {"depth": None, **DISTILLATION_OPTIONS}
    quick_options = {"epochs": 1, "probe_size": 64, "batch_size": 32}

    def supports(self, anatomy):
        return iso_units_problem(anatomy, "TLEG")

    def check(self, job):
        problem = self.supports(job.anatomy)
        if problem:
            raise ValueError(problem)
        check_distillation(job, "TLEG")

    def condense(self, job):
        o, form, anatomy = job.options, job.form, job.anatomy
        L = len(anatomy.units)
        depth = o["depth"] or L
        keras.utils.set_random_seed(job.seed)
        per_unit = [_trainable_values(u) for u in anatomy.units]
        fitted = [fit_line([w[i] for w in per_unit], np.arange(1, L + 1) / L)
                  for i in range(len(per_unit[0]))]
        a, b = [f[0] for f in fitted], [f[1] for f in fitted]
        # fit quality: how far the line is from each ancestry unit (relative)
        residual = [float(np.sqrt(sum(np.sum((ai + (l + 1) / L * bi - w) ** 2)
                                      for ai, bi, w in zip(a, b, per_unit[l]))
                                  / max(sum(np.sum(w ** 2) for w in per_unit[l]), 1e-12)))
                    for l in range(L)]
        like = [min(L - 1, max(0, round((l + 1) / depth * L) - 1)) for l in range(depth)]
        states = [_state_values(anatomy.units[i]) for i in like]
        model, units, theta = build_auxiliary(form, anatomy, depth,
                                              job.ancestry.output_shape[-1], a, b, states)
        copied = copy_head(job.ancestry, model)
        summary = run_distillation(job, model)
        shape = tuple(anatomy.stem_output.shape[1:])
        with distribute.local_scope():
            mean_state = [np.mean([ops.convert_to_numpy(u.state[i]) for u in units], 0)
                          for i in range(len(units[0].state))]
            unit_a = _theta_unit(form, anatomy.units[0], shape, THETA_A, theta.a, mean_state,
                                 units[0])
            unit_b = _theta_unit(form, anatomy.units[0], shape, THETA_B, theta.b, None, units[0])
            stem = None if anatomy.stem is None else form.copy_unit(
                model.get_layer(anatomy.stem.name), anatomy.input_shape, anatomy.stem.name)
        return Condensed(list(range(L)), {
            "selection": "linear_expansion", "scores": None,
            "learngene_units": [THETA_A, THETA_B],
            "auxiliary": {"depth": depth, "coefficients": [round((l + 1) / depth, 6)
                                                           for l in range(depth)],
                          "state_from_units": like, "head_copied": copied},
            "init": {"fit": "least_squares", "relative_residual": [round(r, 6)
                                                                   for r in residual]},
            "distillation": summary, "probe_examples": summary["probe_examples"],
        }, units=[unit_a, unit_b], stem=stem)

    def describe(self, provenance):
        aux, kd = provenance.get("auxiliary", {}), provenance.get("distillation", {})
        return [
            f"TLEG: learngene theta_A, theta_B from ancestry units "
            f"{provenance.get('source_units')} (least-squares init), auxiliary depth "
            f"{aux.get('depth')} distilled {kd.get('epochs')} epoch(s) on "
            f"{kd.get('probe_examples')} images (T={kd.get('temperature')}, "
            f"alpha={kd.get('alpha')}): accuracy {kd.get('accuracy', 0):.3f}, agreement with "
            f"the ancestry {kd.get('agreement', 0):.3f}",
            "descendant unit l of n = theta_A + (l/n) * theta_B (strategy linear_expansion)",
        ]


def _theta_unit(form, like, shape, name, values, state, expanded):
    """A unit of the ancestry's kind named `name`, holding `values` as its
    trainable weights and `state` (or zeros for floats, a copy otherwise)
    as its non-trainable ones."""
    unit = form.fresh_unit(like, shape, name, preserve_shape=False)
    for variable, value in zip(unit.trainable_variables, values):
        variable.assign(ops.convert_to_numpy(value))
    own = expanded.state
    for i, variable in enumerate(unit.non_trainable_variables):
        source = np.asarray(ops.convert_to_numpy(own[i]))
        if state is not None:
            value = state[i] if source.dtype.kind == "f" else source
        else:
            value = np.zeros_like(source) if source.dtype.kind == "f" else source
        variable.assign(np.asarray(value, dtype=source.dtype))
    return unit


def expand_weights(a, b, coefficient):
    """`a + coefficient * b` weight by weight (numpy; non-float weights from `a`)."""
    return [x + np.asarray(coefficient, x.dtype) * y if np.asarray(x).dtype.kind == "f" else x
            for x, y in zip(a, b)]


class LinearExpansion(Strategy):
    """TLEG's inheritance: unit `l` (1..n) of a descendant of depth `n`
    starts as `theta_A + (l / n) * theta_B`, named `copy<l-1>_theta_A_B`, and
    is trained without the constraint. No unit is a learngene unit taken as
    it is, so all `n` are new units."""

    def __init__(self):
        super().__init__("linear_expansion", None,
                         "depth n, unit l = theta_A + (l/n) theta_B (TLEG)", generic=False)

    def layout(self, num_units, n_layers):
        if num_units != 2:
            raise ValueError(
                f"Strategy 'linear_expansion' needs a TLEG learngene (2 units: theta_A, "
                f"theta_B), got {num_units} units; pick another strategy."
            )
        if n_layers < 1:
            raise ValueError(
                f"Strategy 'linear_expansion' builds every unit anew from theta_A and theta_B "
                f"(none is taken as it is), so a descendant needs n_layers (or depth) of at "
                f"least 1, got {n_layers}."
            )
        return [("copy", 0)] * n_layers

    def new_units(self, num_units, depth):
        return depth  # every unit is new

    def build(self, form, learngene, n_layers, shape):
        self.layout(len(learngene.learngene_units), n_layers)
        theta_a, theta_b = learngene.learngene_units
        a, b = theta_a.get_weights(), theta_b.get_weights()
        expected = tuple(theta_a.input.shape[1:])
        if len(expected) != len(shape) or expected[-1] != shape[-1]:
            raise ValueError(
                f"The TLEG learngene's units take inputs of shape {expected}; the stem gives "
                f"{tuple(shape)}."
            )
        units = []
        for l in range(1, n_layers + 1):
            unit = form.copy_unit(theta_a, shape, names.copy(l - 1, "theta_A_B"))
            unit.set_weights(expand_weights(a, b, l / n_layers))
            units.append(unit)
        return units
