"""The benchmark runner: ancestries, learngenes, descendants, training runs.

Every run is one descendant trained for the profile's step budget on one
K-shot novel-class task, evaluated on the whole novel test set at the
checkpoints. Finished runs are appended to `runs.jsonl` as they end, so an
interrupted benchmark resumes where it stopped; ancestries and learngenes are
cached as `.keras` files under `cache/` and reused by fingerprint.

Speed: descendants of one architecture share one compiled model per
(learning rate, batch size), whose weights and optimizer state are reset for
each run, so the backend traces its train and predict functions once.
"""

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
from keras_learngene._assets import DEFAULT_ANCESTRY
from keras_learngene._condense import condense, resolve_form
from keras_learngene._inherit import inherit
from keras_learngene.bench import _cost
from keras_learngene.bench._profiles import BASELINES, get_profile
from keras_learngene.bench._report import load_records
from keras_learngene.learngene import Learngene, save_atomically
from keras_learngene.models import build_preset

EVAL_BATCH = 2000  # large evaluation batches: eager backends are slow with small ones


def run_id(arch, experiment, method, shots, lr, batch_size, seed):
    """The key of one run in `runs.jsonl`."""
    return f"{arch}/{experiment}/{method}/K{shots}/lr{lr:g}/bs{batch_size}/seed{seed}"


def plan_runs(profile):
    """Every run of a profile, most informative first: all main runs (default
    hyperparameters, every method, K and seed), then the sensitivity grid.

    Returns:
        A list of dicts with `run_id`, `arch`, `experiment`, `method`,
        `shots`, `seed`, `learning_rate`, `batch_size`.
    """
    default = (profile.default["learning_rate"], profile.default["batch_size"])
    runs = []

    def add(arch, experiment, method, shots, lr, bs, seed):
        runs.append(dict(run_id=run_id(arch, experiment, method, shots, lr, bs, seed),
                         arch=arch, experiment=experiment, method=method, shots=shots,
                         seed=seed, learning_rate=lr, batch_size=bs))

    for arch, spec in profile.ancestries.items():
        for shots in spec.get("shots", profile.shots):
            for seed in profile.seeds:
                for method in profile.methods:
                    add(arch, "main", method, shots, *default, seed)
    for arch, spec in profile.ancestries.items():
        if not spec.get("sensitivity", True):
            continue
        for lr in profile.grid["learning_rate"]:
            for bs in profile.grid["batch_size"]:
                if (lr, bs) == default and profile.sensitivity_shots in profile.shots:
                    continue  # the main runs already cover this grid point
                for seed in profile.seeds:
                    for method in profile.sensitivity_methods:
                        add(arch, "sensitivity", method, profile.sensitivity_shots, lr, bs,
                            seed)
    return runs


class _Checkpoints(keras.callbacks.Callback):
    """Evaluates on the test set at the given steps of a one-epoch `fit`."""

    def __init__(self, steps, x, y):
        super().__init__()
        self.steps, self.x, self.y = set(steps), x, y
        self.accuracy, self.seconds = [], 0.0

    def on_train_batch_end(self, batch, logs=None):
        if batch + 1 not in self.steps:
            return
        start = time.perf_counter()
        if hasattr(self.model, "jax_state_sync"):  # JAX keeps the state outside the model
            self.model.jax_state_sync()
        accuracy = training.evaluate(self.model, self.x, self.y, batch_size=EVAL_BATCH)
        self.accuracy.append({"step": batch + 1, "accuracy": round(accuracy, 5)})
        self.seconds += time.perf_counter() - start


def _signature(model):
    layers = [(type(layer).__name__, {k: v for k, v in layer.get_config().items()
                                      if k != "name"}) for layer in model.layers]
    return hashlib.sha256(json.dumps(layers, sort_keys=True, default=str).encode()).hexdigest()


class _CompiledModels:
    """One compiled model per (architecture, learning rate, batch size): a
    new run copies its initial weights in and zeroes the optimizer state."""

    def __init__(self, steps):
        self.steps, self.models = steps, {}

    def get(self, model, learning_rate, batch_size):
        key = (_signature(model), learning_rate, batch_size)
        if key not in self.models:
            training.compile_model(model, learning_rate=learning_rate, total_steps=self.steps)
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


class _Arch:
    """Everything one architecture's runs share: its ancestry, learngenes and
    descendant builders."""

    def __init__(self, name, spec, bench):
        self.name, self.spec, self.bench = name, spec, bench
        self.ancestry, self.info = bench.ancestry(name, spec)
        self.learngenes = {}

    def learngene(self, method, seed):
        """The learngene of a registered method (condensed once per seed when
        the method is seeded, else once; cached on disk). `"ancestry"` is
        every unit, kept by `front`."""
        p = self.bench.profile
        how = "front" if method in BASELINES else method
        seed = seed if plugins.get_method(how).seeded else 0
        k = len(self.bench.units(self.ancestry)) if method == "ancestry" else p.k
        key = (method, seed)
        if key in self.learngenes:
            return self.learngenes[key]
        path = os.path.join(self.bench.cache, f"learngene_{self.name}_{self.info['key']}_"
                                              f"{how}_k{k}_seed{seed}.keras")
        if os.path.isfile(path):
            learngene = Learngene.load(path)
        else:
            self.bench.say(f"{self.name}: condensing with {how} (k={k}, seed={seed})")
            learngene = condense(self.ancestry, self.bench.probe, num_units=k, method=how,
                                 seed=seed)
            save_atomically(learngene, path)
        if method not in BASELINES:
            record = self.bench.meta["condense"].setdefault(self.name, {})
            if seed == 0:
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

    def descendant(self, method, seed):
        """The initial descendant of a run, and the ancestry units it inherits
        (`None` for scratch)."""
        p = self.bench.profile
        if method == "ancestry":
            learngene = self.learngene("ancestry", seed)
            return inherit(learngene, 0, num_classes=self.bench.classes, seed=seed), \
                learngene.provenance["source_units"]
        if method == "scratch":  # front-k's architecture, freshly initialised
            like = inherit(self.learngene("front", 0), p.n_fresh,
                           num_classes=self.bench.classes, seed=seed)
            keras.utils.set_random_seed(seed)
            return keras.models.clone_model(like), None
        learngene = self.learngene(method, seed)
        model = inherit(learngene, p.n_fresh, num_classes=self.bench.classes, seed=seed,
                        strategy="stack")
        return model, learngene.provenance["source_units"]


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
            meta.setdefault("resumed", []).append({"commit": _commit(), "time": _now()})
            if meta.get("backend") != keras.backend.backend():
                raise ValueError(
                    f"{self.out!r} holds runs made with the {meta.get('backend')} backend; "
                    f"resume with KERAS_BACKEND={meta.get('backend')} or give a new --out folder."
                )
            return meta
        return {
            "profile": profile,
            "command": " ".join(["klg"] + sys.argv[1:]) if "klg" in sys.argv[0] else None,
            "commit": _commit(),
            "backend": keras.backend.backend(),
            "machine": _machine(),
            "versions": {"keras_learngene": __version__, "keras": keras.__version__,
                         "python": platform.python_version()},
            "started": _now(),
            "ancestries": {}, "condense": {}, "cost": {},
        }

    def save_meta(self):
        _write_json(self.meta_path, self.meta)

    # ---------------------------------------------------------------- data
    def load_data(self):
        p = self.profile
        base = datasets.load_task(p.dataset, classes="base", path=self.data_path)
        novel = datasets.load_task(p.dataset, classes="novel", path=self.data_path)
        self.base, self.novel, self.classes = base, novel, novel.num_classes
        keep = np.random.default_rng(0).permutation(len(base.x_train))[:p.probe_size]
        self.probe = (base.x_train[np.sort(keep)], base.y_train[np.sort(keep)])

    def task(self, shots, seed):
        keep = datasets.sample_shots(self.novel.y_train, shots, seed)
        return self.novel.x_train[keep], self.novel.y_train[keep]

    @staticmethod
    def units(ancestry):
        return resolve_form(ancestry).split(ancestry).units

    # ---------------------------------------------------------- ancestries
    def ancestry(self, arch, spec):
        """Loads the shipped ancestry, or reuses / trains one by the
        fingerprint of its recipe (preset, overrides, data, epochs, seed)."""
        p = self.profile
        recipe = {"preset": spec["preset"], "overrides": spec.get("overrides", {}),
                  "dataset": p.dataset, "classes": "base", "epochs": spec.get("epochs"),
                  "batch_size": 64, "learning_rate": 1e-3, "seed": 0}
        if spec.get("shipped"):
            path, recipe = DEFAULT_ANCESTRY, {"shipped": os.path.basename(DEFAULT_ANCESTRY)}
        else:
            path = os.path.join(self.cache, f"ancestry_{arch}_{spec['preset']}_"
                                            f"{_hash(recipe)}.keras")
        info_path = path[:-len(".keras")] + ".json"
        key = _hash(recipe)
        if os.path.isfile(path):
            model = keras.saving.load_model(path)
            info = {}
            if os.path.isfile(info_path):
                with open(info_path) as f:
                    info = json.load(f)
        else:
            self.say(f"{arch}: training the {spec['preset']} ancestry on the base classes "
                     f"({spec['epochs']} epochs)")
            model = build_preset(spec["preset"], self.base.input_shape, self.base.num_classes,
                                 **spec.get("overrides", {}))
            result = training.train(model, self.base.x_train, self.base.y_train,
                                    epochs=spec["epochs"], seed=0, verbose=0)
            info = {"train_seconds": round(result["seconds"], 1),
                    "train_images_per_second": round(result["images_per_second"], 1)}
            save_atomically(model, path)
        if "base_test_accuracy" not in info:
            info["base_test_accuracy"] = round(training.evaluate(
                model, self.base.x_test, self.base.y_test, batch_size=EVAL_BATCH), 4)
        if not spec.get("shipped"):
            _write_json(info_path, info)
        info.update(preset=spec["preset"], params=model.count_params(), key=key,
                    units=len(self.units(model)), source=os.path.basename(path),
                    base_test_examples=len(self.base.x_test))
        if spec.get("shipped"):
            info.setdefault("train_seconds", None)
            info["note"] = "the package's shipped ancestry (keras_learngene/assets/README.md)"
        self.meta["ancestries"][arch] = info
        self.save_meta()
        return model, info

    # ---------------------------------------------------------------- runs
    def train_run(self, arch, compiled, run):
        p = self.profile
        model, units = arch.descendant(run["method"], run["seed"])
        params = model.count_params()
        inherited = 0 if units is None else sum(
            int(np.prod(w.shape)) for layer in model.layers for w in layer.weights
            if names.source_of(layer.name) is not None)
        model, traced = compiled.get(model, run["learning_rate"], run["batch_size"])
        x, y = self.task(run["shots"], run["seed"])
        keras.utils.set_random_seed(run["seed"])
        batches = training.AugmentedBatches(x, y, self.classes, run["batch_size"],
                                            seed=run["seed"], steps=p.steps)
        checkpoints = _Checkpoints(p.checkpoints, self.novel.x_test, self.novel.y_test)
        # A run that diverges (NaN loss) is a result of the sensitivity grid, not a crash:
        # it trains on (so every checkpoint is evaluated), is recorded and reported.
        guard = training.DivergenceGuard(learning_rate=run["learning_rate"], stop=False)
        start = time.perf_counter()
        model.fit(batches, epochs=1, callbacks=[checkpoints, guard], verbose=0)
        seconds = time.perf_counter() - start - checkpoints.seconds
        diverged = guard.error
        if diverged is not None:
            self.say(f"{run['run_id']}: {diverged}")
        return {
            **run,
            "steps": p.steps,
            "checkpoints": checkpoints.accuracy,
            "final_accuracy": checkpoints.accuracy[-1]["accuracy"],
            "train_seconds": round(seconds, 2),
            "eval_seconds": round(checkpoints.seconds, 2),
            "images_per_second": round(p.steps * run["batch_size"] / seconds, 1),
            "first_of_compiled": traced,
            "params": params,
            "inherited_params": inherited,
            "units": units,
            "train_examples": len(x),
            "test_examples": len(self.novel.y_test),
            "backend": keras.backend.backend(),
            "diverged": None if diverged is None else {
                "step": None if diverged.step is None else diverged.step + 1,
                "last_finite_loss": diverged.last_finite_loss},
        }

    def run(self, report=True):
        """Runs every unfinished run of the profile, then writes the report."""
        p = self.profile
        if max(p.checkpoints) != p.steps:
            raise ValueError(f"The last checkpoint must be the step budget ({p.steps}).")
        registry = plugins.registry("methods")
        for m in p.methods:  # unknown names fail here, before any training
            if m not in BASELINES:
                method = registry.get(m)
                self.meta.setdefault("methods", {})[m] = {
                    "title": method.title or m, "plugin": registry.plugin_of(m),
                    "description": method.description}
        self.load_data()
        records = load_records(self.out)
        if records:  # rewrite without a record an interrupted write left truncated
            _write_lines(self.runs_path, [json.dumps(record) for record in records])
        done = {record["run_id"] for record in records}
        planned = plan_runs(p)
        todo = [run for run in planned if run["run_id"] not in done]
        total = len(planned)
        self.say(f"benchmark {p.name!r}: {total} runs, {total - len(todo)} already done, "
                 f"{len(todo)} to go; backend {keras.backend.backend()}; out {self.out}")
        archs, compiled, started, finished = {}, {}, time.perf_counter(), 0
        for run in todo:
            name = run["arch"]
            if name not in archs:
                archs[name] = _Arch(name, p.ancestries[name], self)
                compiled[name] = _CompiledModels(p.steps)
                if name not in self.meta["cost"]:
                    self.meta["cost"][name] = _cost.measure(self, archs[name])
                    self.save_meta()
            record = self.train_run(archs[name], compiled[name], run)
            with open(self.runs_path, "a") as f:
                f.write(json.dumps(record) + "\n")
                f.flush()
                os.fsync(f.fileno())
            finished += 1
            self.say(_progress(total - len(todo) + finished, total, finished, len(todo),
                               time.perf_counter() - started, record))
        for name, spec in p.ancestries.items():  # what a run cut short may not have recorded
            arch = archs.setdefault(name, _Arch(name, spec, self))
            for method in [m for m in p.methods if m not in BASELINES]:
                for seed in p.seeds:
                    arch.learngene(method, seed)  # from the cache: nothing is recomputed
            if name not in self.meta["cost"]:
                self.meta["cost"][name] = _cost.measure(self, arch)
        self.meta["finished"] = _now()
        self.meta["runs"] = {"planned": total, "done": len(load_records(self.out))}
        self.save_meta()
        if report:
            from keras_learngene.bench._report import write_report

            return write_report(self.out)
        return None


def _progress(count, total, finished, todo, elapsed, record):
    width = 24
    filled = int(width * count / total)
    eta = elapsed / finished * (todo - finished)
    return (f"[{'#' * filled}{'.' * (width - filled)}] {count}/{total} "
            f"{record['arch']} {record['method']} K={record['shots']} "
            f"lr={record['learning_rate']:g} bs={record['batch_size']} seed={record['seed']}: "
            f"acc {record['final_accuracy']:.3f} ({record['train_seconds']:.0f}+"
            f"{record['eval_seconds']:.0f} s)  ETA {_duration(eta)}")


def _duration(seconds):
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


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
        profile: `"quick"` (minutes; a smoke test), `"full"` (the protocol of
            shared/BENCHMARK.md; hours on 2 CPU cores) or a `Profile`.
        out: output folder: `runs.jsonl` (one record per run), `meta.json`
            (profile, machine, ancestries, condensing, cost figures),
            `report.md` and `images/`.
        cache: folder of trained ancestries and learngenes (default `out/cache`).
        data_path: folder of the Fashion-MNIST IDX files (see
            `keras_learngene.datasets.find_fashion_mnist`).
        report: write `report.md` and the plots at the end.
        log: stream of the progress lines (default stderr).

    Returns:
        The report's path (or None with `report=False`).

    Raises:
        ValueError: `out` holds results of another profile or backend.
    """
    return Bench(profile, out, cache=cache, data_path=data_path, log=log).run(report=report)
