"""Heur Learngene (Wang et al., AAAI 2022, arXiv 2106.06788): the units whose
gradients stay stable while the ancestry body learns a sequence of tasks.

Its descendants put fresh low-level units under the inherited high-level ones
(strategy `"prepend"` is the paper's layout; the library's default for every
method is `"stack"`, so that descendants of all methods compare alike).

`GradientStability` is a Keras callback that records, per unit, the fraction
of weight-gradient entries above a threshold on a fixed probe batch;
`heur_statistics` trains a copy of the ancestry body on tasks drawn from the
probe classes and turns those fractions into an instability score per unit.
"""

import keras
import numpy as np

from keras_learngene._gradients import loss_gradients
from keras_learngene.methods._base import Condensed, Method, heatmap
from keras_learngene.methods._selection import most_stable_chain
from keras_learngene.training import train


class GradientStability(keras.callbacks.Callback):
    """Records, per unit, the fraction of weight-gradient entries whose
    magnitude exceeds a threshold, on a fixed probe batch.

    Args:
        units: the unit layers to watch (in order).
        probe: `(x, y_onehot)` batch the gradients are computed on.
        threshold: `"auto"` (default): relative to the root mean square of
            all watched gradients at that checkpoint, so the statistic does not
            depend on the loss scale; or an absolute float.
        every: record every `every` training batches (and at each epoch end).

    Attributes:
        fractions: a list of per-checkpoint lists, one fraction per unit.
    """

    def __init__(self, units, probe, threshold="auto", every=0):
        super().__init__()
        self.units = list(units)
        self.probe = probe
        self.threshold = threshold
        self.every = every
        self.fractions = []

    def record(self):
        variables = [v for unit in self.units for v in unit.trainable_variables]
        grads = loss_gradients(self.model, variables, *self.probe)
        magnitudes = [np.abs(g).ravel() for g in grads]
        if self.threshold == "auto":
            flat = np.concatenate(magnitudes)
            threshold = float(np.sqrt(np.mean(flat**2))) if flat.size else 0.0
        else:
            threshold = float(self.threshold)
        row, n = [], 0
        for unit in self.units:
            count = len(unit.trainable_variables)
            mags = np.concatenate(magnitudes[n:n + count]) if count else np.zeros(0)
            row.append(float(np.mean(mags > threshold)) if mags.size else 0.0)
            n += count
        self.fractions.append(row)

    def on_train_batch_end(self, batch, logs=None):
        if self.every and (batch + 1) % self.every == 0:
            self.record()

    def on_epoch_end(self, epoch, logs=None):
        self.record()


def make_tasks(y, num_tasks, seed):
    """Splits the classes of `y` into `num_tasks` tasks of at least 2 classes
    (classes are shuffled with `seed`; with too few classes, tasks reuse them)."""
    classes = np.unique(y)
    rng = np.random.default_rng(seed)
    if len(classes) >= 2 * num_tasks:
        return [sorted(part.tolist()) for part in np.array_split(rng.permutation(classes),
                                                                 num_tasks)]
    return [sorted(rng.choice(classes, size=max(2, len(classes) // 2 + 1),
                              replace=False).tolist()) for _ in range(num_tasks)]


def heur_statistics(form, anatomy, x, y, num_tasks=3, seed=0, epochs=1, probe_size=64,
                    verbose=0):
    """Trains a copy of the ancestry body on a sequence of tasks and scores
    each unit's gradient instability.

    Returns:
        `(stats, instability, tasks)`: `stats[t][i]` the mean above-threshold
        gradient fraction of unit `i` during task `t`; `instability[i]` its
        standard deviation across tasks (lower is more stable); the tasks'
        classes. `verbose` is Keras' verbosity of each task's training.
    """
    keras.utils.set_random_seed(seed)
    stem = None if anatomy.stem is None else form.copy_unit(
        anatomy.stem, anatomy.input_shape, "stem")
    units = [form.copy_unit(u, tuple(t.shape[1:]), u.name)
             for u, t in zip(anatomy.units, anatomy.unit_inputs)]
    tasks = make_tasks(y, num_tasks, seed)
    stats = []
    for t, classes in enumerate(tasks):
        keep = np.isin(y, classes)
        xt, yt = x[keep], np.searchsorted(classes, y[keep])
        model = form.assemble(anatomy.input_shape, stem, units, len(classes), name=f"task_{t}")
        probe_idx = np.random.default_rng(seed + t).permutation(len(xt))[:probe_size]
        onehot = keras.utils.to_categorical(yt[probe_idx], len(classes)).astype("float32")
        callback = GradientStability(units, (xt[probe_idx], onehot))
        train(model, xt, yt, epochs=epochs, batch_size=64, seed=seed + t, callbacks=[callback],
              verbose=verbose, flip=True)  # train's old default: learngenes unchanged
        stats.append(np.mean(callback.fractions, axis=0))
    stats = np.asarray(stats)
    return stats, stats.std(axis=0), tasks


class HeurLearngene(Method):
    """Heur Learngene: the units whose gradients are most stable over a
    sequence of tasks drawn from the probe classes.

    Options:
        tasks: number of tasks in the sequence (`heur_tasks` in 0.1).
        epochs: epochs per task.
        probe_size: examples of the fixed batch the gradients are measured on.
    """

    name = "heur"
    title = "Heur Learngene"
    description = "Heur Learngene: units whose gradients stay stable over a task sequence"
    needs_data = True
    seeded = True
    options = {"tasks": 3, "epochs": 1, "probe_size": 64}
    quick_options = {"tasks": 2}

    def check(self, job):
        for key in self.options:
            value = job.options[key]
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{key}={value!r} must be a positive int.")

    def condense(self, job):
        o = job.options
        stats, instability, tasks = heur_statistics(
            job.form, job.anatomy, job.x, job.y, o["tasks"], job.seed, epochs=o["epochs"],
            probe_size=o["probe_size"], verbose=job.verbose)
        indices = most_stable_chain(instability, job.num_units, job.chains)
        return Condensed(indices, {
            "selection": "most_stable", "matrix": np.asarray(stats).round(6).tolist(),
            "instability": np.round(instability, 6).tolist(), "tasks": tasks,
            "scores": [round(float(instability[i]), 6) for i in indices],
            "heatmap": heatmap(stats, xlabel="ancestry unit", ylabel="task",
                               colorbar="gradient fraction", columns=indices),
        })

    def describe(self, provenance):
        chosen = set(provenance["source_units"])
        return ["gradient instability per unit (std over tasks; lower is more stable):"] + [
            f"{i:>4d}  {v:9.5f}" + (" <- selected" if i in chosen else "")
            for i, v in enumerate(provenance["instability"])]
