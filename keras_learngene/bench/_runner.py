"""The benchmark runner (protocol v2): ancestries, learngenes, descendants, runs.

A *setting* is one data set, one base/novel split and one architecture: an
ancestry trained on the split's base classes, condensed by every method. A
run is one descendant trained for the data set's step budget on one N-way
K-shot episode of the novel classes, evaluated at log-spaced checkpoints on
the episode's validation images (the plateau rule reads them) and on its test
images. Reference rows (`probe_*`: linear probes on pixels, on the frozen
ancestry's features and on the learngene's) are runs without training.
Finished runs are appended to `runs.jsonl` (flushed and fsynced) as they
end, so an interrupted benchmark resumes where it stopped; ancestries and
learngenes are cached as `.keras` files under `cache/` and reused by
fingerprint.

A row of a profile is a *recipe* (`Recipe`): a method (`"scratch"`, a
baseline, or a registered condensing method), optionally followed by parts
that change how its descendant starts and trains, written
`<method>+<part>+...` (`"auto+identity+head+gentle"`, see `PARTS`).

Speed: descendants of one setting share one compiled model per (learning
rate, batch size, head size, warm-up, per-layer learning-rate factors), whose
weights and optimizer state are reset for each run, so the backend traces its
train and predict functions once.
"""

import dataclasses
import datetime
import hashlib
import json
import os
import platform
import sys
import time

import keras
import numpy as np

from keras_learngene import __version__, datasets, plugins, training
from keras_learngene import _names as names
from keras_learngene._condense import condense, make_learngene, resolve_form
from keras_learngene._headstart import head_start
from keras_learngene._inherit import inherit, inherited_layers, scratch_twin
from keras_learngene.bench import _cost, _stats
from keras_learngene.bench._profiles import BASELINES, PROBES, get_profile
from keras_learngene.bench._report import load_records
from keras_learngene.forms import feature_model
from keras_learngene.learngene import Learngene, save_atomically
from keras_learngene.methods._selection import chain_test
from keras_learngene.models import build_preset
from keras_learngene.strategies import takes_fresh_init

EVAL_BATCH = 2000  # large evaluation batches: eager backends are slow with small ones

GENTLE_SCALE = 0.1  # "gentle": the inherited layers' learning-rate factor
# The parts a recipe may add to a condensing method, in the order they are written.
PARTS = {
    "identity": "new units start as the identity (`inherit(fresh_init='identity')`): before "
                "training the descendant computes its learngene's features",
    "head": "before training, the batch norms are aligned to the task's images and the head is "
            "fitted to the descendant's features by logistic regression "
            "(`keras_learngene.head_start`)",
    "gentle": f"the inherited layers train at {GENTLE_SCALE:g}x the learning rate "
              "(`compile_model(layer_lr_scales=...)`), with no warm-up",
}


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A row of a profile: a method and the parts added to it.

    `Recipe.parse("auto+identity+head")` is Auto Learngene's learngene, its
    new units starting as the identity and its head fitted before training;
    `Recipe.parse("auto")` is the paper's inheritance (random new units and
    head, every layer at the learning rate, the profile's warm-up).

    Attributes:
        name: the row's name, as written in the profile.
        method: the method (a baseline or a registered condensing method).
        parts: the parts, in `PARTS` order.
    """

    name: str
    method: str
    parts: tuple = ()

    @classmethod
    def parse(cls, name):
        """The recipe of a row name; `ValueError` for an unknown or repeated
        part, parts out of order, or parts on a baseline (only the method
        itself is checked against the registry: `check`)."""
        method, *parts = str(name).split("+")
        if not method:
            raise ValueError(f"Row {name!r} has no method before its parts.")
        unknown = [part for part in parts if part not in PARTS]
        if unknown:
            raise ValueError(
                f"Row {name!r}: unknown part{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(repr(u) for u in unknown)}; a row is <method>+<part>+..., the "
                f"parts among: {', '.join(PARTS)}."
            )
        if len(set(parts)) != len(parts):
            raise ValueError(f"Row {name!r} repeats a part.")
        ordered = [part for part in PARTS if part in parts]
        if parts != ordered:
            raise ValueError(f"Row {name!r}: write its parts in the order "
                             f"{'+'.join([method] + ordered)!r} (one name per recipe).")
        if parts and method in BASELINES:
            raise ValueError(
                f"Row {name!r}: parts apply to a registered condensing method's descendants, "
                f"not to the baseline {method!r}."
            )
        return cls(str(name), method, tuple(parts))

    @property
    def identity(self):
        return "identity" in self.parts

    @property
    def head(self):
        return "head" in self.parts

    @property
    def gentle(self):
        return "gentle" in self.parts

    @property
    def fresh_init(self):
        return "identity" if self.identity else "random"

    def check(self, registry=None):
        """Validates the method against the registry (and `identity` against
        its strategy) before any work; returns the registered method, or None
        for a baseline."""
        if self.method in BASELINES:
            return None
        registry = registry or plugins.registry("methods")
        method = registry.get(self.method)  # an unknown name fails here
        if self.identity:
            strategy = plugins.get_strategy(getattr(method, "strategy", None) or "stack")
            if not takes_fresh_init(strategy):
                raise ValueError(
                    f"Row {self.name!r}: 'identity' does not apply to {self.method!r}, whose "
                    f"strategy {strategy.name!r} builds its own units (none of them fresh "
                    "random ones); drop the part."
                )
        return method

    def record(self):
        """What a run record says about the recipe."""
        return {"base_method": self.method, "parts": list(self.parts),
                "fresh_init": self.fresh_init, "head_start": self.head,
                "inherited_lr_scale": GENTLE_SCALE if self.gentle else 1.0}


def run_id(data, split, arch, experiment, method, ways, shots, task, lr, batch_size):
    """The key of one run in `runs.jsonl`."""
    return (f"{data}/s{split}/{arch}/{experiment}/{method}/N{ways}/K{shots}/t{task}/"
            f"lr{lr:g}/bs{batch_size}")


def plan_runs(profile):
    """Every run of a profile, most informative first: per setting the
    reference probes (cheap) and the main runs (default hyperparameters, every
    method, N, K and task), then the sensitivity grid.

    Returns:
        A list of dicts with `run_id`, `data`, `split`, `arch`, `experiment`,
        `method`, `ways`, `shots`, `task`, `seed` (= `task`), `learning_rate`,
        `batch_size`.
    """
    p = profile
    lr0, bs0 = p.default["learning_rate"], p.default["batch_size"]
    runs = []

    def add(data, split, arch, experiment, method, ways, shots, task, lr, bs):
        runs.append(dict(
            run_id=run_id(data, split, arch, experiment, method, ways, shots, task, lr, bs),
            data=data, split=split, arch=arch, experiment=experiment, method=method,
            ways=ways, shots=shots, task=task, seed=task, learning_rate=lr, batch_size=bs))

    for d in p.data:
        for split in d.splits:
            for arch in p.archs_of(d.name):
                for ways, shots in d.tasks_of():
                    for task in range(d.tasks):
                        if p.probes:
                            for probe in PROBES:
                                add(d.name, split, arch, "probe", probe, ways, shots, task,
                                    lr0, bs0)
                        for method in p.methods_of(arch):
                            add(d.name, split, arch, "main", method, ways, shots, task, lr0, bs0)
    s = p.sensitivity
    if s and s.get("data") in [d.name for d in p.data]:
        d = p.data_of(s["data"])
        covered = (s["ways"], s["shots"]) in d.tasks_of() and s["tasks"] <= d.tasks
        for arch in p.archs_of(d.name):
            methods = [m for m in s["methods"] if m in p.methods_of(arch)]
            for lr in p.grid["learning_rate"]:
                for bs in p.grid["batch_size"]:
                    if (lr, bs) == (lr0, bs0) and covered:
                        continue  # the main runs already cover this grid point
                    for task in range(s["tasks"]):
                        for method in methods:
                            add(d.name, d.splits[0], arch, "sensitivity", method, s["ways"],
                                s["shots"], task, lr, bs)
    return runs


class _Checkpoints(keras.callbacks.Callback):
    """Evaluates validation and test accuracy at the given steps of a one-epoch
    `fit`, in one predict call per checkpoint; step 0 is the model before its
    first training step."""

    def __init__(self, steps, x_val, y_val, x_test, y_test):
        super().__init__()
        self.steps = set(steps)
        x = np.concatenate([x_val, x_test])
        # padded to a few sizes: a new input shape is a new trace of predict on TensorFlow
        unit = 256 if len(x) <= EVAL_BATCH else EVAL_BATCH
        self.x = np.concatenate([x, np.zeros((-len(x) % unit,) + x.shape[1:], x.dtype)])
        self.y_val, self.y_test = np.asarray(y_val), np.asarray(y_test)
        self.accuracy, self.seconds = [], 0.0

    def on_train_begin(self, logs=None):
        if 0 in self.steps:
            self._evaluate(0)

    def on_train_batch_end(self, batch, logs=None):
        if batch + 1 in self.steps:
            self._evaluate(batch + 1)

    def _evaluate(self, step):
        start = time.perf_counter()
        if hasattr(self.model, "jax_state_sync"):  # JAX keeps the state outside the model
            self.model.jax_state_sync()
        logits = keras.ops.convert_to_numpy(self.model.predict(self.x, batch_size=EVAL_BATCH,
                                                               verbose=0))
        y = np.concatenate([self.y_val, self.y_test])
        hit = np.argmax(logits[:len(y)], -1) == y
        n = len(self.y_val)
        self.accuracy.append({"step": step,
                              "accuracy": round(float(hit[n:].mean()), 5),
                              "val_accuracy": round(float(hit[:n].mean()), 5) if n else None})
        self.seconds += time.perf_counter() - start


def _signature(model):
    layers = [(type(layer).__name__, {k: v for k, v in layer.get_config().items()
                                      if k != "name"}) for layer in model.layers]
    return hashlib.sha256(json.dumps(layers, sort_keys=True, default=str).encode()).hexdigest()


class _CompiledModels:
    """One compiled model per (architecture, learning rate, batch size,
    warm-up, per-layer learning-rate factors): a new run copies its initial
    weights in and zeroes the optimizer state.

    `warmup=False` compiles without a warm-up; `layer_lr_scales` (`{layer
    name: factor}`) gives those layers a scaled learning rate
    (`training.ScaledAdamW`)."""

    def __init__(self, steps, schedule="cosine", warmup_steps=None):
        self.steps, self.models = steps, {}
        self.schedule = schedule
        self.warmup = 0.1 if warmup_steps is None else min(warmup_steps / steps, 0.5)

    def get(self, model, learning_rate, batch_size, warmup=True, layer_lr_scales=None):
        warmup_fraction = self.warmup if warmup else 0.0
        scales = tuple(sorted((layer_lr_scales or {}).items()))
        key = (_signature(model), learning_rate, batch_size, warmup_fraction, scales)
        if key not in self.models:
            training.compile_model(model, learning_rate=learning_rate, total_steps=self.steps,
                                   schedule=self.schedule, warmup_fraction=warmup_fraction,
                                   layer_lr_scales=dict(scales) or None)
            self.models[key] = model
            return model, True
        compiled = self.models[key]
        compiled.set_weights(model.get_weights())
        for variable in compiled.optimizer.variables:
            variable.assign(np.zeros(variable.shape, variable.dtype))
        return compiled, False


def _hash(data):
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]


def _write_lines(path, lines):
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write("".join(line + "\n" for line in lines))
    os.replace(tmp, path)


def _write_json(path, data):
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


def _split_held_out(y, fraction, seed):
    """Per class, `fraction` of the held-out images validate and the rest test
    (at least one of each where a class has two)."""
    rng = np.random.default_rng(seed)
    val = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        n = len(members)
        n_val = 0 if n < 2 else min(n - 1, max(1, round(fraction * n)))
        val[members[:n_val]] = True
    return val


def _predict(model, x):
    return np.asarray(keras.ops.convert_to_numpy(model.predict(x, batch_size=EVAL_BATCH,
                                                               verbose=0)))


class _Setting:
    """A data set and split: base and novel tasks, and the episodes."""

    def __init__(self, data, split, bench):
        self.data, self.split, self.bench = data, split, bench
        kwargs = dict(data.options)
        if data.name == "glyphs":
            kwargs["split"] = split
        if data.name in ("fashion_mnist", "cifar_fs"):
            kwargs["path"] = bench.data_path
        self.base = datasets.load_task(data.name, classes="base", **kwargs)
        self.novel = datasets.load_task(data.name, classes="novel", **kwargs)
        keep = np.random.default_rng(0).permutation(len(self.base.x_train))
        keep = np.sort(keep[:bench.profile.probe_size])
        self.probe = (self.base.x_train[keep], self.base.y_train[keep])
        self._episodes = {}

    @property
    def key(self):
        return f"{self.data.name}/s{self.split}"

    def episodes(self, ways, shots):
        """Index episodes `[(train idx, y, val idx, y, test idx, y)]` of (N, K):
        `sample_episodes` on index arrays, so no image is copied."""
        key = (ways, shots)
        if key not in self._episodes:
            novel = self.novel
            source = ((np.arange(len(novel.y_train)), novel.y_train),
                      (np.arange(len(novel.y_test)), novel.y_test))
            episodes = []
            drawn = datasets.sample_episodes(source, ways, shots, self.data.tasks, seed=0)
            for i, task in enumerate(drawn):
                held = _split_held_out(task.y_test, self.data.val_fraction, (ways, shots, i))
                episodes.append((task.x_train, task.y_train, task.x_test[held],
                                 task.y_test[held], task.x_test[~held], task.y_test[~held]))
            self._episodes = {key: episodes}  # one (N, K) at a time: runs come grouped
        return self._episodes[key]

    def images(self, ways, shots, task):
        tr, ytr, va, yva, te, yte = self.episodes(ways, shots)[task]
        x_train, x_test = self.novel.x_train, self.novel.x_test
        return (x_train[tr], ytr), (x_test[va], yva), (x_test[te], yte)


class _Arch:
    """Everything one setting's runs share: its ancestry, learngenes,
    features and descendant builders."""

    def __init__(self, name, spec, setting, bench):
        self.name, self.spec, self.setting, self.bench = name, spec, setting, bench
        self.key = f"{setting.key}/{name}"
        self.ancestry, self.info = bench.ancestry(self)
        self.learngenes, self._features = {}, {}
        self.form = resolve_form(self.ancestry)
        self.anatomy = self.form.split(self.ancestry)

    def condense_seed(self, method, task):
        method = Recipe.parse(method).method
        seeds = self.bench.profile.condense_seeds
        how = "front" if method in BASELINES else method
        return seeds[task % len(seeds)] if plugins.get_method(how).seeded else 0

    def learngene(self, method, task=0):
        """The learngene of a method for episode `task` (condensed once per
        condensing seed when the method is seeded, else once; cached on
        disk). `"ancestry"` is every unit, kept by `front`; `"random"` a
        random valid chain of k units, drawn with the episode's seed. A
        recipe's learngene is its method's (`Recipe`)."""
        p = self.bench.profile
        method = Recipe.parse(method).method
        if method == "random":
            return self._random_chain(task)
        how = "front" if method in BASELINES else method
        seed = self.condense_seed(method, task)
        k = len(self.anatomy.units) if method == "ancestry" else p.k
        key = (method, seed)
        if key in self.learngenes:
            return self.learngenes[key]
        path = os.path.join(self.bench.cache, f"learngene_{self.key.replace('/', '_')}_"
                                              f"{self.info['key']}_{how}_k{k}_seed{seed}.keras")
        if os.path.isfile(path):
            learngene = Learngene.load(path)
        else:
            self.bench.say(f"{self.key}: condensing with {how} (k={k}, seed={seed})")
            learngene = condense(self.ancestry, self.setting.probe, num_units=k, method=how,
                                 seed=seed)
            save_atomically(learngene, path)
        if method not in BASELINES:
            record = self.bench.meta["condense"].setdefault(self.key, {})
            if method not in record:
                record[method] = {
                    "seconds": learngene.provenance["seconds"],  # when it was condensed
                    "units": learngene.provenance["source_units"],
                    "heatmap": learngene.provenance.get("heatmap"),
                    "learngene_bytes": os.path.getsize(path),
                    "learngene_params": learngene.count_params(),
                }
            record.setdefault(f"{method}_units_by_seed", {})[str(seed)] = \
                learngene.provenance["source_units"]
        self.learngenes[key] = learngene
        return learngene

    def _random_chain(self, task):
        """A random chain of k units (in ancestry order) that the form can
        assemble, drawn with `np.random.default_rng([task, 7919])`."""
        p, units = self.bench.profile, self.anatomy.units
        ok = chain_test(self.anatomy, self.form)
        rng = np.random.default_rng([task, 7919])
        for _ in range(200):
            indices = sorted(rng.choice(len(units), p.k, replace=False).tolist())
            if all(ok(prev, nxt) for prev, nxt in zip([None] + indices[:-1], indices)):
                break
        else:
            indices = list(range(p.k))
        front = self.learngene("front")
        provenance = {**front.provenance, "method": "random", "seed": task,
                      "source_units": indices,
                      "source_names": [units[i].name for i in indices]}
        keras.utils.set_random_seed(task)
        return make_learngene(self.form, self.anatomy, indices, provenance)

    def descendant(self, method, task, num_classes):
        """The initial descendant of a run (a row: a method or a `Recipe`), and
        the ancestry units it inherits (`None` for scratch)."""
        p = self.bench.profile
        recipe = Recipe.parse(method)
        method = recipe.method
        if method == "ancestry":
            learngene = self.learngene("ancestry", task)
            return inherit(learngene, 0, num_classes=num_classes, seed=task), \
                learngene.provenance["source_units"]
        if method == "scratch":  # front-k's architecture, freshly initialised
            like = inherit(self.learngene("front"), p.n_fresh, num_classes=num_classes,
                           seed=task)
            return scratch_twin(like, seed=task), None
        learngene = self.learngene(method, task)
        # only a recipe with "identity" asks for it: strategies that build their own units
        # (TLEG's, SWS's) take no fresh_init
        extra = {"fresh_init": recipe.fresh_init} if recipe.identity else {}
        # every method's descendant is as deep as scratch's: each strategy builds that depth
        model = inherit(learngene, depth=p.k + p.n_fresh, num_classes=num_classes, seed=task,
                        **extra)
        return model, learngene.provenance["source_units"]

    # ---------------------------------------------------------- features
    def features(self, what, seed=0):
        """Pooled features of every novel image: `what` = `"units"` (the stem
        and every ancestry unit: a list) or `"learngene"` (the focus method's
        learngene of condensing seed `seed`)."""
        key = (what, seed)
        if key not in self._features:
            novel = self.setting.novel
            if what == "units":
                model = feature_model(self.ancestry, [self.anatomy.stem_output]
                                      + list(self.anatomy.unit_outputs))
            else:
                learngene = self.learngene(self.bench.profile.reference, seed)
                model = feature_model(learngene, [learngene.outputs[0]])
            out = []
            for x in (novel.x_train, novel.x_test):
                f = model.predict(x, batch_size=EVAL_BATCH, verbose=0)
                f = f if isinstance(f, list | tuple) else [f]
                out.append([np.asarray(keras.ops.convert_to_numpy(a)) for a in f])
            self._features[key] = list(zip(*out))  # [(train, test) per output]
        return self._features[key]


class Bench:
    """Runs a profile into an output folder (see `run_bench`)."""

    def __init__(self, profile, out, cache=None, data_path=None, log=None):
        self.profile = get_profile(profile)
        self.out = os.fspath(out)
        self.cache = os.fspath(cache or os.path.join(self.out, "cache"))
        self.data_path = data_path
        self.log = log or sys.stderr
        os.makedirs(self.out, exist_ok=True)
        os.makedirs(self.cache, exist_ok=True)
        self.meta_path = os.path.join(self.out, "meta.json")
        self.runs_path = os.path.join(self.out, "runs.jsonl")
        self.meta = self._load_meta()

    def say(self, message):
        print(message, file=self.log, flush=True)

    def _load_meta(self):
        profile = self.profile.to_json()
        if os.path.isfile(self.meta_path):
            with open(self.meta_path) as f:
                meta = json.load(f)
            if meta.get("profile") != profile:
                raise ValueError(
                    f"{self.out!r} holds results of another benchmark configuration "
                    f"(profile {meta.get('profile', {}).get('name')!r}); give a new --out "
                    "folder, or delete this one to start over."
                )
            if meta.get("backend") != keras.backend.backend():
                raise ValueError(
                    f"{self.out!r} holds runs made with the {meta.get('backend')} backend; "
                    f"resume with KERAS_BACKEND={meta.get('backend')} or give a new --out folder."
                )
            meta.setdefault("resumed", []).append({"commit": _commit(), "time": _now()})
            return meta
        return {
            "profile": profile,
            "command": _command(),
            "commit": _commit(),
            "backend": keras.backend.backend(),
            "machine": _machine(),
            "versions": {"keras_learngene": __version__, "keras": keras.__version__,
                         "python": platform.python_version()},
            "started": _now(),
            "ancestries": {}, "condense": {}, "cost": {}, "transfer": {}, "data": {},
        }

    def save_meta(self):
        _write_json(self.meta_path, self.meta)

    # ---------------------------------------------------------- ancestries
    def ancestry(self, arch):
        """Reuses or trains an ancestry by the fingerprint of its recipe
        (preset, overrides, data, split, epochs, augmentation, seed)."""
        spec, setting = arch.spec, arch.setting
        d = setting.data
        recipe = {"preset": spec["preset"], "overrides": spec.get("overrides", {}),
                  "dataset": d.name, "split": setting.split, "options": d.options,
                  "classes": "base", "epochs": d.ancestry_epochs, "batch_size": 64,
                  "learning_rate": 1e-3, "flip": d.flip, "examples": d.ancestry_examples,
                  "seed": 0}
        key = _hash(recipe)
        path = os.path.join(self.cache, f"ancestry_{arch.key.replace('/', '_')}_"
                                        f"{spec['preset']}_{key}.keras")
        info_path = path[:-len(".keras")] + ".json"
        base = setting.base
        if os.path.isfile(path):
            model = keras.saving.load_model(path)
            info = {}
            if os.path.isfile(info_path):
                with open(info_path) as f:
                    info = json.load(f)
        else:
            self.say(f"{arch.key}: training the {spec['preset']} ancestry on "
                     f"{base.num_classes} base classes ({d.ancestry_epochs} epochs)")
            model = build_preset(spec["preset"], base.input_shape, base.num_classes,
                                 **spec.get("overrides", {}))
            x, y = base.x_train, base.y_train
            if d.ancestry_examples and d.ancestry_examples < len(x):
                keep = np.sort(np.random.default_rng(1).permutation(len(x))
                               [:d.ancestry_examples])
                x, y = x[keep], y[keep]
            result = training.train(model, x, y, epochs=d.ancestry_epochs, seed=0, verbose=0,
                                    flip=d.flip)
            info = {"train_seconds": round(result["seconds"], 1),
                    "train_images_per_second": round(result["images_per_second"], 1),
                    "epoch_seconds": [round(s, 1) for s in result["epoch_seconds"]]}
            save_atomically(model, path)
        if "base_test_accuracy" not in info:
            info["base_test_accuracy"] = round(training.evaluate(
                model, base.x_test, base.y_test, batch_size=EVAL_BATCH), 4)
        _write_json(info_path, info)
        info.update(preset=spec["preset"], params=model.count_params(), key=key,
                    units=len(resolve_form(model).split(model).units),
                    source=os.path.basename(path), base_classes=base.num_classes,
                    base_train_examples=len(base.x_train), base_test_examples=len(base.x_test),
                    novel_classes=setting.novel.num_classes)
        self.meta["ancestries"][arch.key] = info
        self.save_meta()
        return model, info

    def transfer(self, arch):
        """The unit-transfer precondition: a ridge probe on each ancestry unit's
        pooled features against raw pixels, on the novel tasks (first N, each
        K of `transfer_shots`), paired over the episodes."""
        p, setting = self.profile, arch.setting
        ways = setting.data.tasks_of()[0][0]
        feats = arch.features("units")
        names = ["stem"] + [f"unit {i}" for i in range(len(feats) - 1)]
        result = {"ways": ways, "shots": {}}
        for shots in p.transfer_shots:
            pixels, rows = [], {n: [] for n in names}
            for task in range(len(setting.episodes(ways, shots))):
                (xtr, ytr), (xva, yva), (xte, yte) = setting.images(ways, shots, task)
                pixels.append(_stats.ridge_probe(xtr, ytr, xva, yva, xte, yte, ways)["accuracy"])
                tr, ytr_, va, yva_, te, yte_ = setting.episodes(ways, shots)[task]
                for n, (ftr, fte) in zip(names, feats):
                    rows[n].append(_stats.ridge_probe(ftr[tr], ytr_, fte[va], yva_, fte[te],
                                                      yte_, ways)["accuracy"])
            result["shots"][str(shots)] = {
                "pixels": _stats.interval(pixels),
                "units": [{"name": n, "accuracy": _stats.interval(rows[n]),
                           "minus_pixels": _stats.interval(np.subtract(rows[n], pixels))}
                          for n in names]}
        self.meta["transfer"][arch.key] = result
        self.save_meta()

    # ---------------------------------------------------------------- runs
    def probe_run(self, arch, run):
        """A reference row: a ridge probe on one episode (no training)."""
        setting, ways, shots, task = arch.setting, run["ways"], run["shots"], run["task"]
        start = time.perf_counter()
        tr, ytr, va, yva, te, yte = setting.episodes(ways, shots)[task]
        if run["method"] == "probe_pixels":
            (xtr, _), (xva, _), (xte, _) = setting.images(ways, shots, task)
            units = None
        else:
            if run["method"] == "probe_ancestry":
                ftr, fte = arch.features("units")[-1]
                units = list(range(len(arch.anatomy.units)))
            else:
                method = self.profile.reference  # a condensing method (not a recipe)
                ftr, fte = arch.features("learngene", arch.condense_seed(method, task))[0]
                units = arch.learngene(method, task).provenance["source_units"]
            xtr, xva, xte = ftr[tr], fte[va], fte[te]
        probe = _stats.ridge_probe(xtr, ytr, xva, yva, xte, yte, ways)
        return {**run, "steps": 0, "checkpoints": [], "final_accuracy": round(probe["accuracy"], 5),
                "plateau": {"step": 0, "accuracy": probe["accuracy"],
                            "val_accuracy": probe["val_accuracy"], "reached": True},
                "penalty": probe["penalty"], "features": int(np.prod(xtr.shape[1:])),
                "units": units, "train_examples": len(ytr), "val_examples": len(yva),
                "test_examples": len(yte), "seconds": round(time.perf_counter() - start, 3),
                "backend": keras.backend.backend()}

    def train_run(self, arch, compiled, run):
        p, d = self.profile, arch.setting.data
        recipe = Recipe.parse(run["method"])
        (x, y), (x_val, y_val), (x_test, y_test) = arch.setting.images(
            run["ways"], run["shots"], run["task"])
        model, units = arch.descendant(run["method"], run["task"], run["ways"])
        params = model.count_params()
        inherited = 0 if units is None else sum(
            int(np.prod(w.shape)) for layer in model.layers for w in layer.weights
            if names.source_of(layer.name) is not None)
        fitted = None
        if recipe.head:  # before the weights go into the compiled model
            start = time.perf_counter()
            fitted = head_start(model, x, y)
            fitted["seconds"] = round(time.perf_counter() - start, 2)
            fitted["train_accuracy"] = round(fitted["train_accuracy"], 5)
        scales = ({layer: GENTLE_SCALE for layer in inherited_layers(model)}
                  if recipe.gentle else None)
        if recipe.gentle and not scales:
            raise ValueError(f"{run['run_id']}: 'gentle' needs inherited layers; the "
                             f"descendant has none.")
        model, traced = compiled.get(model, run["learning_rate"], run["batch_size"],
                                     warmup=not recipe.gentle, layer_lr_scales=scales)
        keras.utils.set_random_seed(run["seed"])
        batches = training.AugmentedBatches(x, y, run["ways"], run["batch_size"],
                                            seed=run["seed"], steps=d.steps, flip=d.flip)
        checkpoints = _Checkpoints(d.checkpoints, x_val, y_val, x_test, y_test)
        # A run that diverges (NaN loss) is a result of the sensitivity grid, not a crash:
        # it trains on (so every checkpoint is evaluated), is recorded and reported.
        guard = training.DivergenceGuard(learning_rate=run["learning_rate"], stop=False)
        start = time.perf_counter()
        model.fit(batches, epochs=1, callbacks=[checkpoints, guard], verbose=0)
        seconds = time.perf_counter() - start - checkpoints.seconds
        diverged = guard.error
        if diverged is not None:
            self.say(f"{run['run_id']}: {diverged}")
        curve = checkpoints.accuracy
        return {
            **run,
            "steps": d.steps,
            "checkpoints": curve,
            "final_accuracy": curve[-1]["accuracy"],
            "plateau": _stats.plateau(curve, p.plateau_tol, len(y_val)),
            "train_seconds": round(seconds, 2),
            "eval_seconds": round(checkpoints.seconds, 2),
            "images_per_second": round(d.steps * run["batch_size"] / seconds, 1),
            "first_of_compiled": traced,
            "params": params,
            "inherited_params": inherited,
            "units": units,
            "train_examples": len(x),
            "val_examples": len(y_val),
            "test_examples": len(y_test),
            "backend": keras.backend.backend(),
            **recipe.record(),
            "warmup_steps": 0 if recipe.gentle else int(compiled.warmup * d.steps),
            "head_start": fitted,
            "diverged": None if diverged is None else {
                "step": None if diverged.step is None else diverged.step + 1,
                "last_finite_loss": diverged.last_finite_loss},
        }

    def _check(self):
        p = self.profile
        for d in p.data:
            if max(d.checkpoints) != d.steps:
                raise ValueError(f"{d.name}: the last checkpoint must be the step budget "
                                 f"({d.steps}).")
        registry = plugins.registry("methods")
        rows = list(p.methods) + list((p.sensitivity or {}).get("methods", ()))
        for m in dict.fromkeys(rows):  # unknown names and parts fail here, before any training
            recipe = Recipe.parse(m)
            method = recipe.check(registry)
            if method is not None:
                title = method.title or recipe.method
                self.meta.setdefault("methods", {})[m] = {
                    "title": " + ".join([title] + list(recipe.parts)),
                    "plugin": registry.plugin_of(recipe.method),
                    "description": method.description,
                    **({"base": recipe.method, "parts": list(recipe.parts),
                        "parts_description": {part: PARTS[part] for part in recipe.parts}}
                       if recipe.parts else {})}

    def run(self, report=True):
        """Runs every unfinished run of the profile, then writes the report."""
        p = self.profile
        self._check()
        records = load_records(self.out)
        if records:  # rewrite without a record an interrupted write left truncated
            _write_lines(self.runs_path, [json.dumps(record) for record in records])
        done = {record["run_id"] for record in records}
        planned = plan_runs(p)
        todo = [run for run in planned if run["run_id"] not in done]
        total = len(planned)
        self.say(f"benchmark {p.name!r}: {total} runs, {total - len(todo)} already done, "
                 f"{len(todo)} to go; backend {keras.backend.backend()}; out {self.out}")
        settings, archs, compiled, started, finished = {}, {}, {}, time.perf_counter(), 0
        for run in todo:
            arch = self._arch(run["data"], run["split"], run["arch"], settings, archs)
            if run["experiment"] == "probe":
                record = self.probe_run(arch, run)
            else:
                if arch.key not in compiled:
                    d = arch.setting.data
                    compiled[arch.key] = _CompiledModels(d.steps, p.schedule, p.warmup_steps)
                record = self.train_run(arch, compiled[arch.key], run)
            with open(self.runs_path, "a") as f:
                f.write(json.dumps(record) + "\n")
                f.flush()
                os.fsync(f.fileno())
            finished += 1
            self.say(_progress(total - len(todo) + finished, total, finished, len(todo),
                               time.perf_counter() - started, record))
        for d in p.data:  # what a run cut short (or resumed) may not have recorded
            for split in d.splits:
                for name in p.archs_of(d.name):
                    arch = self._arch(d.name, split, name, settings, archs)
                    for method in [m for m in p.methods_of(name) if m not in BASELINES]:
                        for seed in range(len(p.condense_seeds)):
                            arch.learngene(method, seed)  # from the cache
        self.meta["finished"] = _now()
        self.meta["runs"] = {"planned": total, "done": len(load_records(self.out))}
        self.save_meta()
        if report:
            from keras_learngene.bench._report import write_report

            return write_report(self.out)
        return None

    def _arch(self, data, split, name, settings, archs):
        """The setting's `_Arch` (built once; its cost and transfer figures
        measured when first met)."""
        key = f"{data}/s{split}/{name}"
        if key in archs:
            return archs[key]
        skey = (data, split)
        if skey not in settings:
            d = self.profile.data_of(data)
            settings[skey] = _Setting(d, split, self)
            self.meta["data"][f"{data}/s{split}"] = {
                "base_classes": settings[skey].base.num_classes,
                "novel_classes": settings[skey].novel.num_classes,
                "novel_train_examples": len(settings[skey].novel.y_train),
                "novel_test_examples": len(settings[skey].novel.y_test),
                "flip": d.flip, "translate": 0.1}
        arch = archs[key] = _Arch(name, self.profile.ancestries[name], settings[skey], self)
        if key not in self.meta["transfer"]:
            self.say(f"{key}: unit-transfer probe")
            self.transfer(arch)
        if key not in self.meta["cost"] and self.profile.cost_steps:  # 0: no cost figures
            self.meta["cost"][key] = _cost.measure(self, arch)
            self.save_meta()
        return arch


def _progress(count, total, finished, todo, elapsed, record):
    width = 24
    filled = int(width * count / total)
    eta = elapsed / finished * (todo - finished)
    plateau = record.get("plateau") or {}
    return (f"[{'#' * filled}{'.' * (width - filled)}] {count}/{total} "
            f"{record['data']}/s{record['split']} {record['arch']} {record['method']} "
            f"N={record['ways']} K={record['shots']} t={record['task']} "
            f"lr={record['learning_rate']:g} bs={record['batch_size']}: "
            f"plateau {plateau.get('accuracy', 0):.3f} @ {plateau.get('step')} "
            f"({record.get('train_seconds', record.get('seconds', 0)):.0f} s)  "
            f"ETA {_duration(eta)}")


def _duration(seconds):
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


def _command():
    if "klg" in os.path.basename(sys.argv[0]):
        return " ".join(["klg"] + sys.argv[1:])
    if sys.argv and sys.argv[0] not in ("", "-c"):
        return " ".join(["python"] + sys.argv)
    return None


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _commit():
    import subprocess

    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True,
                              cwd=os.path.dirname(__file__)).stdout.strip() or None
    except (OSError, subprocess.CalledProcessError):
        return None


def _machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return f"{os.cpu_count()} CPU cores ({cpu}), {platform.system()} {platform.release()}"


def run_bench(profile="quick", out="klg-bench", *, cache=None, data_path=None, report=True,
              log=None):
    """Runs the benchmark of the four Learngene claims and writes its report.

    Finished runs are never recomputed: run it again with the same `out` to
    resume an interrupted benchmark.

    Args:
        profile: `"quick"` (a few minutes; a smoke test), `"full"` (protocol
            v2 cut to 150 minutes on 2 CPU cores), `"gpu"` (the larger one) or
            a `Profile`.
        out: output folder: `runs.jsonl` (one record per run), `meta.json`
            (profile, machine, ancestries, condensing, transfer, cost figures),
            `report.md` and `images/`.
        cache: folder of trained ancestries and learngenes (default `out/cache`).
        data_path: folder of the Fashion-MNIST IDX files or of CIFAR-100 (see
            `keras_learngene.datasets.load_task`).
        report: write `report.md` and the plots at the end.
        log: stream of the progress lines (default stderr).

    Returns:
        The report's path (or None with `report=False`).

    Raises:
        ValueError: `out` holds results of another profile or backend.
    """
    return Bench(profile, out, cache=cache, data_path=data_path, log=log).run(report=report)
