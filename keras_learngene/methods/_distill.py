"""Auto Learngene (Wang et al., arXiv 2305.02279), the distillation variant.

The paper finds "which layers among the ancestry model have the most
similarity as one pseudo descendant model", a small model *distilled* from
the ancestry on a pseudo task. The authors' code residue (the meta-learngene
paths and `Vit_multilayer_Distiller` of BruceQFWang/NeurIPS24-Cluster-Learngene)
follows "Learning What and Where to Transfer" (Jang et al., ICML 2019,
alinlab/L2T-ww): the student minimises cross-entropy plus a feature-matching
loss over every (teacher layer m, student layer n) pair, each pair through
its own small regressor (a 1x1 conv in L2T-ww), weighted by a learned
non-negative weight lambda[m, n] (L2T-ww's "where" network).

What this method implements (one loss, trained by `training.train`):

```
loss = CE(pseudo(x), y)
     + beta * sum_n [ sum_m w[m, n] * l[m, n]  -  tau * H(w[:, n]) ]
l[m, n] = mean_batch || r_mn(s_n(x)) - t_m(x) ||^2
w[:, n] = softmax_m(logits[:, n])            (each column a distribution)
```

- `t_m`: ancestry unit m's output, pooled over tokens / space, centred and
  scaled by the probe set's mean and total standard deviation (so
  `mean ||t_m||^2 = 1` and `l[m, n]` is the fraction of unit m's variance the
  pair does not explain: 1 for a regressor that predicts the mean);
- `s_n`: the pseudo descendant's unit n output, pooled the same way;
- `r_mn`: a linear map per pair (zero-initialised, so training starts with
  `l = 1` and uniform weights);
- `w`: learnable pair logits, one per (ancestry unit, pseudo unit).

The ancestry is frozen (the teacher, run in inference mode on the same
augmented batch as the student). Everything - pseudo descendant, regressors,
logits - is trained jointly by one optimizer, so for fixed pair losses the
logits converge to the entropy-regularised optimum `w[:, n] =
softmax(-l[:, n] / tau)`: each pseudo-descendant unit puts its weight on
the ancestry units it can imitate best, while the matching loss, weighted by
`w`, pulls the pseudo unit towards them (the distillation). The learned `W`
is the score matrix the library's selection rules read.

Where it departs from L2T-ww, and why: L2T-ww learns lambda by a bilevel
(meta) step, differentiating the target task's loss through inner updates of
the student; that needs second-order gradients written per backend. Here the
weights are learned by the same first-order step as everything else, with an
entropy term instead of the meta-objective, so the method is plain
`model.fit` on every backend. A pair weight means "this ancestry unit is what
this pseudo unit best reproduces while it learns the task" rather than "this
pair's matching helps the task most".
"""

import keras
import numpy as np
from keras import ops

from keras_learngene.forms import feature_model, pool_features
from keras_learngene.methods._auto import build_pseudo_descendant, similarity_table
from keras_learngene.methods._base import Condensed, Method, heatmap
from keras_learngene.methods._selection import SELECTIONS, check_selection, select_units
from keras_learngene.training import train

# Adam moves a parameter by about one learning rate per step whatever its
# gradient's scale; the pair logits are `raw * LOGIT_STEP / learning_rate`, so
# they move by up to ~LOGIT_STEP per step and reach their optimum within one
# short distillation, at any learning rate.
LOGIT_STEP = 0.1
# The regressors start at zero and must fit within the same few hundred
# steps: their kernels and biases are scaled the same way, to move by up to
# ~REGRESSOR_STEP per step.
REGRESSOR_STEP = 0.01
RUNNING_MOMENTUM = 0.9
_DEGENERATE = 1e-8  # a unit whose pooled features (nearly) never vary has nothing to match
_PREDICT_BATCH = 256


class _Teacher(keras.layers.Layer):
    """The frozen ancestry's pooled unit features, in inference mode."""

    def __init__(self, tap, **kwargs):
        super().__init__(**kwargs)
        self.tap = tap

    def call(self, x):
        outputs = self.tap(x, training=False)
        return [ops.stop_gradient(t) for t in _as_list(outputs)]

    def compute_output_spec(self, x):
        return [keras.KerasTensor((x.shape[0], t.shape[-1])) for t in self.tap.outputs]


class PairMatching(keras.layers.Layer):
    """Adds the weighted feature-matching loss of every (ancestry unit m,
    pseudo unit n) pair and passes the logits through unchanged.

    Args:
        teacher_dims: pooled feature size of each ancestry unit (L).
        student_dims: pooled feature size of each pseudo unit (D).
        feature_weight: beta, the weight of the matching term.
        temperature: tau, the weight of the columns' entropy.
        logit_gain: the logits are the raw variable times this.
        regressor_gain: the regressors' kernels and biases are their raw
            variables times this.
    """

    def __init__(self, teacher_dims, student_dims, feature_weight, temperature, logit_gain,
                 regressor_gain=1.0, **kwargs):
        super().__init__(**kwargs)
        self.teacher_dims, self.student_dims = list(teacher_dims), list(student_dims)
        self.feature_weight, self.temperature = feature_weight, temperature
        self.logit_gain, self.regressor_gain = logit_gain, regressor_gain
        L, D = len(self.teacher_dims), len(self.student_dims)
        self.raw_logits = self.add_weight(shape=(L, D), initializer="zeros", name="pair_logits")
        self.kernels = [[self.add_weight(shape=(dn, dm), initializer="zeros",
                                         name=f"regressor_{m}_{n}_kernel")
                         for n, dn in enumerate(self.student_dims)]
                        for m, dm in enumerate(self.teacher_dims)]
        self.biases = [[self.add_weight(shape=(dm,), initializer="zeros",
                                        name=f"regressor_{m}_{n}_bias")
                        for n in range(D)] for m, dm in enumerate(self.teacher_dims)]
        self.mean = [self.add_weight(shape=(dm,), initializer="zeros", trainable=False,
                                     name=f"teacher_mean_{m}")
                     for m, dm in enumerate(self.teacher_dims)]
        self.scale = self.add_weight(shape=(L,), initializer="ones", trainable=False,
                                     name="teacher_scale")
        self.valid = self.add_weight(shape=(L,), initializer="ones", trainable=False,
                                     name="teacher_valid")
        # the pair losses the weights were learned from: a running mean over
        # the training batches (the student's batch norms in training mode)
        self.running_losses = self.add_weight(shape=(L, D), initializer="ones",
                                              trainable=False, name="running_pair_losses")
        self.built = True

    def set_teacher_statistics(self, features):
        """Centres and scales the targets by the probe set's statistics."""
        for m, f in enumerate(features):
            self.mean[m].assign(f.mean(axis=0))
        spread = np.array([np.sqrt(((f - f.mean(axis=0)) ** 2).sum(axis=1).mean())
                           for f in features])
        valid = spread > _DEGENERATE * max(1.0, float(spread.max()))
        self.scale.assign(np.where(valid, spread, 1.0).astype("float32"))
        self.valid.assign(valid.astype("float32"))

    def logits(self):
        return self.raw_logits * self.logit_gain

    def weights_matrix(self):
        """`W[m, n]`: the pair weights, each column a softmax over ancestry units."""
        return ops.softmax(self.logits(), axis=0)

    def pair_losses(self, student, teacher):
        """`l[m, n]`: mean squared error of regressor `r_mn` on normalised targets."""
        rows = []
        for m, t in enumerate(teacher):
            target = (t - self.mean[m]) / self.scale[m]
            row = []
            for n, s in enumerate(student):
                error = (ops.matmul(s, self.kernels[m][n]) + self.biases[m][n]) * \
                    self.regressor_gain - target
                row.append(ops.mean(ops.sum(ops.square(error), axis=-1)))
            rows.append(ops.stack(row))
        losses = ops.stack(rows)
        valid = ops.expand_dims(self.valid, 1)  # a degenerate unit explains nothing: l = 1
        return valid * losses + (1.0 - valid)

    def call(self, inputs, training=None):
        L, D = len(self.teacher_dims), len(self.student_dims)
        logits_out, student, teacher = inputs[0], inputs[1:1 + D], inputs[1 + D:1 + D + L]
        losses = self.pair_losses(student, teacher)
        if training:
            self.running_losses.assign(RUNNING_MOMENTUM * self.running_losses
                                       + (1.0 - RUNNING_MOMENTUM) * ops.stop_gradient(losses))
        log_w = ops.log_softmax(self.logits(), axis=0)
        w = ops.exp(log_w)
        entropy = -ops.sum(w * log_w, axis=0)
        matching = ops.sum(w * losses) - self.temperature * ops.sum(entropy)
        self.add_loss(self.feature_weight * matching)
        return logits_out

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(inputs[0].shape, dtype=inputs[0].dtype)


def distill_pseudo_descendant(job, depth, epochs, feature_weight, temperature, learning_rate,
                              x, y):
    """Distills a pseudo descendant of `depth` units from the frozen ancestry
    on `(x, y)` (see the module docstring).

    Returns:
        `(W, pair_losses, history, like)`: the learned pair weights and the
        pair losses they were learned from `(L, D)` (numpy; a running mean
        over the last training batches), the Keras history, and the ancestry
        units the pseudo units imitate.
    """
    classes, y_task = np.unique(y, return_inverse=True)
    pseudo, pseudo_outputs, like = build_pseudo_descendant(job.form, job.anatomy, depth,
                                                           len(classes))
    tap = feature_model(job.ancestry, job.anatomy.unit_outputs)
    teacher_features = _predict(tap, x)
    student_dims = [int(t.shape[-1]) for t in (pool_features(o) for o in pseudo_outputs)]
    matcher = PairMatching([f.shape[-1] for f in teacher_features], student_dims,
                           feature_weight, temperature, LOGIT_STEP / learning_rate,
                           REGRESSOR_STEP / learning_rate,
                           name="pair_matching", dtype="float32")
    matcher.set_teacher_statistics(teacher_features)
    images = pseudo.inputs[0]
    student = [pool_features(o if o.dtype == "float32" else ops.cast(o, "float32"))
               for o in pseudo_outputs]
    logits = pseudo.outputs[0]
    # the ancestry's layers are shared with the caller's model: frozen for
    # the distillation (so neither the optimizer nor weight decay touches
    # them, and batch norms run in inference mode), then restored, layer by
    # layer (`_flatten_layers` is what Keras' own `trainable` setter walks)
    frozen = [(layer, layer.trainable) for layer in tap._flatten_layers(include_self=True)]
    try:
        tap.trainable = False
        teacher = _Teacher(tap, name="teacher", dtype="float32")(images)
        distiller = keras.Model(images, matcher([logits, *student, *teacher]),
                                name="distiller")
        result = train(distiller, x, y_task, epochs=epochs, batch_size=64,
                       learning_rate=learning_rate, seed=job.seed, verbose=job.verbose,
                       flip=True)  # train's old default: learngenes unchanged
    finally:
        for layer, trainable in frozen:
            layer.trainable = trainable
    W = keras.ops.convert_to_numpy(matcher.weights_matrix()).astype("float64")
    losses = keras.ops.convert_to_numpy(matcher.running_losses).astype("float64")
    return W, losses, result["history"], like


def _predict(tap, x):
    """Pooled features of every tapped tensor on `x`, as float32 numpy."""
    chunks = [[keras.ops.convert_to_numpy(f) for f in _as_list(tap.predict_on_batch(
        x[lo:lo + _PREDICT_BATCH]))] for lo in range(0, len(x), _PREDICT_BATCH)]
    return [np.concatenate(parts).astype("float32") for parts in zip(*chunks)]


def _as_list(outputs):
    return list(outputs) if isinstance(outputs, list | tuple) else [outputs]


class DistilledAutoLearngene(Method):
    """Auto Learngene, distilled: the ancestry units that a pseudo descendant,
    distilled from the ancestry, learns to weight most in its feature matching.

    Options:
        pseudo_depth: units of the pseudo descendant, D (default: `num_units`).
        epochs: passes of the distillation over the probe examples.
        feature_weight: beta, the weight of the matching loss beside CE
            (L2T-ww's default 0.5).
        temperature: tau, the entropy weight of each column of pair weights;
            lower concentrates them more (pair losses lie in [0, ~1]).
        selection: `"align"`, `"top_k"` or `"window"` (see `select_units`).
        probe_size: probe examples distilled on (a seeded subset).
        learning_rate: peak learning rate of the distillation.
    """

    name = "auto_distill"
    title = "Auto Learngene (distilled)"
    description = ("Auto Learngene: units a distilled pseudo descendant weights most in its "
                   "learned feature matching (L2T-ww style)")
    needs_data = True
    seeded = True
    options = {"pseudo_depth": None, "epochs": 3, "feature_weight": 0.5, "temperature": 0.05,
               "selection": "align", "probe_size": 2048, "learning_rate": 1e-3}
    quick_options = {"epochs": 1, "probe_size": 256}

    def check(self, job):
        o = job.options
        depth = o["pseudo_depth"]
        if depth is not None and not _is_positive_int(depth):
            raise ValueError(f"pseudo_depth={depth!r} must be a positive int (or None: "
                             "num_units).")
        for key in ("epochs", "probe_size"):
            if not _is_positive_int(o[key]):
                raise ValueError(f"{key}={o[key]!r} must be a positive int.")
        for key in ("feature_weight", "temperature", "learning_rate"):
            value = o[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or \
                    not np.isfinite(value) or value <= 0:
                raise ValueError(f"{key}={value!r} must be a positive number.")
        if o["selection"] not in SELECTIONS:
            raise ValueError(f"Unknown selection rule {o['selection']!r}; one of "
                             f"{', '.join(SELECTIONS)}.")
        check_selection(o["selection"], job.num_units, depth or job.num_units)

    def condense(self, job):
        o = job.options
        depth = o["pseudo_depth"] or job.num_units
        keras.utils.set_random_seed(job.seed)
        rng = np.random.default_rng(job.seed)
        keep = np.sort(rng.permutation(len(job.x))[:o["probe_size"]])
        x, y = job.x[keep], job.y[keep]
        W, losses, history, like = distill_pseudo_descendant(
            job, depth, o["epochs"], float(o["feature_weight"]), float(o["temperature"]),
            float(o["learning_rate"]), x, y)
        indices, matches = select_units(W, job.num_units, o["selection"], job.chains)
        L = W.shape[0]
        return Condensed(indices, {
            "selection": o["selection"],
            "matrix": W.round(6).tolist(),
            "pair_loss": losses.round(6).tolist(),
            "matches": matches,
            "scores": [round(float(W[i, j]), 6) for i, j in zip(indices, matches)],
            "moved_from_uniform": round(float(np.abs(W - 1.0 / L).max()), 6),
            "distillation": {
                "loss": [round(float(v), 5) for v in history.get("loss", [])],
                "accuracy": [round(float(v), 5) for v in history.get("accuracy", [])],
                "epochs": o["epochs"], "feature_weight": o["feature_weight"],
                "temperature": o["temperature"], "learning_rate": o["learning_rate"],
                "logit_step": LOGIT_STEP, "regressor_step": REGRESSOR_STEP,
            },
            "pseudo_descendant": {"depth": depth, "like_units": like, "epochs": o["epochs"]},
            "probe_examples": len(x),
            "heatmap": heatmap(W, xlabel="pseudo-descendant unit", ylabel="ancestry unit",
                               colorbar="learned pair weight (softmax over ancestry units)",
                               boxes=zip(indices, matches)),
        })

    def describe(self, provenance):
        return similarity_table(provenance, "pair weights learned by distilling a pseudo "
                                "descendant (columns sum to 1):", "pseudo")


def _is_positive_int(value):
    return isinstance(value, int | np.integer) and not isinstance(value, bool) and value >= 1
