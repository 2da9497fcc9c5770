"""The GPU check's driver (`scripts/gpu_check.sh` runs it; it also runs alone).

Three modes, each a fresh process (a process has one Keras backend, chosen by
`KERAS_BACKEND` before Keras is imported, and one device):

- a *leg*: ``--backend B --device gpu|cpu --seconds S --out FILE.json``
  builds a descendant of the shipped ancestry with the public API (the first
  3 units of `fashion_mnist_vit_tiny`, `method="front"`, plus 2 new units and
  a 4-class head), then
  1. the *agreement run*: the logits of the freshly built model on 16 fixed
     test images, then `klg.training.train` for a fixed number of steps (3
     epochs of 512 images, batch 64: 24 steps; no augmentation, so no random
     op runs) and the accuracy on the 600 test images. The new units' weights are drawn with
     numpy from a fixed seed (the inherited ones come from the ancestry
     file), so the GPU and the CPU legs start from the same weights;
  2. the *throughput*: more epochs of the train step compiled in 1 (a second
     `train` would compile again) on the 1,984 novel-class images, for at
     most ``--throughput-seconds`` (15) and within ``--seconds``. img/s is
     the steady state, without augmentation and without the compile (the
     agreement run's first epoch's excess over a steady one, reported as the
     compile time), as `benchmarks/train_throughput.py` measures it from
     `train`'s `epoch_seconds`; with no time left for 2 more epochs, the
     agreement run's epochs after the first give it.

  Everything runs in float32 with TF32 off (`torch.backends.*.allow_tf32`,
  `jax_default_matmul_precision="highest"`, TensorFlow's
  `enable_tensor_float_32_execution(False)`), so that the GPU's logits can be
  held to the CPU's within 1e-3 relative. ``--device cpu`` hides the GPUs
  (`CUDA_VISIBLE_DEVICES=""`, `JAX_PLATFORMS=cpu`); ``--device gpu`` fails
  unless the backend sees a GPU (`GPU_CHECK_ALLOW_CPU=1` lets it run on the
  CPU: the dry run). The JSON is written even when the leg fails.
- the *benchmark slice*: ``--bench DIR --backend B --seconds S`` runs
  `klg bench`'s runner in a child process and stops it (SIGINT, then kill)
  after S seconds; finished runs are kept (the runner appends each to
  `runs.jsonl` as it ends), the report is written from them and
  ``DIR/bench.json`` says what ran. The profile: `GPU_CHECK_BENCH_PROFILE`
  (default `pilot`, or `quick` with under 150 s) on the glyphs when their
  fonts are installed, else the same profile on the Fashion-MNIST subset
  shipped in the package (4-way tasks).
- the *summary*: ``--summary OUT`` reads ``OUT/legs/*.json`` and
  ``OUT/bench/bench.json``, prints the table, writes ``OUT/gpu_check.json``
  and exits 1 if a GPU leg disagrees with its CPU leg, 2 if a leg or the
  slice failed (0 otherwise; a backend that is not installed is skipped).

Tolerances (GPU against CPU, each backend with itself): logits max |a - b| <=
1e-3 x max |cpu logits| (`GPU_CHECK_LOGITS_RTOL`); the mean training loss of
the agreement run's last epoch within 5% relative (`GPU_CHECK_LOSS_RTOL`: 24
AdamW steps amplify float rounding, so this is looser); test accuracy within 5
points (`GPU_CHECK_ACC_ATOL`).
"""

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

ANCESTRY = "fashion_mnist_vit_tiny"
NUM_UNITS, N_LAYERS = 3, 2
AGREE_IMAGES, AGREE_EPOCHS, LOGIT_IMAGES = 512, 3, 16
INSTALL_HINTS = {
    "tensorflow": "pip install 'tensorflow[and-cuda]'",
    "jax": "pip install 'jax[cuda12]'",
    "torch": "pip install torch --index-url https://download.pytorch.org/whl/cu128",
}


def _tolerances():
    return {"logits_rtol": float(os.environ.get("GPU_CHECK_LOGITS_RTOL", 1e-3)),
            "loss_rtol": float(os.environ.get("GPU_CHECK_LOSS_RTOL", 0.05)),
            "accuracy_atol": float(os.environ.get("GPU_CHECK_ACC_ATOL", 0.05))}


def _write_json(path, data):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


def _say(message):
    print(f"[gpu_check] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------ device
def _set_device_env(backend, device):
    """Before Keras is imported: the backend, and the CPU alone for `cpu`."""
    os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    os.environ.setdefault("KLG_LOAD_PLUGINS", "")
    if device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
        os.environ["JAX_PLATFORMS"] = "cpu"


def _strict_float32(backend):
    """TF32 off: float32 matmuls and convolutions on NVIDIA GPUs, as on CPUs."""
    if backend == "torch":
        import torch

        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.set_float32_matmul_precision("highest")
    elif backend == "jax":
        import jax

        jax.config.update("jax_default_matmul_precision", "highest")
    elif backend == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_tensor_float_32_execution(False)


def _device_info(backend):
    """`(on a GPU?, the device's name, the backend library's version)`."""
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            return True, torch.cuda.get_device_name(0), torch.__version__
        return False, "cpu", torch.__version__
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        return device.platform == "gpu", getattr(device, "device_kind", device.platform), \
            jax.__version__
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return True, details.get("device_name", gpus[0].name), tf.__version__
    return False, "cpu", tf.__version__


# --------------------------------------------------------------------------- leg
def _draw_fresh_weights(model, seed=0):
    """Sets the descendant's new (not inherited) random weights from numpy, so
    a GPU and a CPU start equal (the backends' RNGs differ by device); weights
    initialised to a constant (zeros, ones) keep it."""
    import keras
    import numpy as np

    import keras_learngene as klg

    rng = np.random.default_rng(seed)
    inherited = klg.inherited_layers(model)
    for layer in model.layers:
        if layer.name in inherited:
            continue
        for variable in layer.weights:
            value = keras.ops.convert_to_numpy(variable)
            if value.size < 2 or value.min() == value.max():
                continue
            shape = value.shape
            if len(shape) >= 2:  # Glorot normal from the shape alone
                std = (2.0 / (int(np.prod(shape[:-1])) + shape[-1])) ** 0.5
            else:
                std = 0.02
            variable.assign(rng.normal(0.0, std, size=shape).astype(value.dtype))


def _descendant(learngene, num_classes):
    import keras_learngene as klg

    model = klg.inherit(learngene, n_layers=N_LAYERS, num_classes=num_classes, seed=0)
    _draw_fresh_weights(model)
    return model


def _steady(epoch_seconds):
    """The steady epoch time (median of the epochs after the first) and the
    compile time (the first epoch's excess over it)."""
    import numpy as np

    steady = float(np.median(epoch_seconds[1:]))
    return steady, max(float(epoch_seconds[0]) - steady, 0.0)


def run_leg(backend, device, seconds, batch_size, throughput_seconds,
            agree_images=AGREE_IMAGES, agree_epochs=AGREE_EPOCHS):
    """One backend on one device; returns the leg's figures (see the module)."""
    started = time.perf_counter()
    dry = os.environ.get("GPU_CHECK_ALLOW_CPU") == "1"
    import keras
    import numpy as np

    import keras_learngene as klg

    phases = {"import": time.perf_counter() - started}

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.start)

    def accuracy(model, x, y):  # one forward pass (`training.evaluate` compiles a predict step)
        logits = keras.ops.convert_to_numpy(model(x, training=False))
        return float(np.mean(np.argmax(logits, axis=-1) == y))

    on_gpu, device_name, version = _device_info(backend)
    if device == "gpu" and not on_gpu and not dry:
        raise RuntimeError(
            f"{backend} sees no GPU (device: {device_name}); install its GPU build "
            f"({INSTALL_HINTS[backend]}), or set GPU_CHECK_ALLOW_CPU=1 for a dry run on the CPU.")
    if device == "cpu" and on_gpu:
        raise RuntimeError(f"{backend} still sees a GPU with CUDA_VISIBLE_DEVICES=''.")
    _strict_float32(backend)
    result = {
        "backend": backend, "device": device, "on_gpu": on_gpu, "device_name": device_name,
        "dry_run": device == "gpu" and not on_gpu,
        "versions": {"keras": keras.__version__, backend: version,
                     "keras_learngene": klg.__version__, "python": platform.python_version()},
        "cpu_cores": os.cpu_count(), "precision": "float32, TF32 off",
    }
    _say(f"{backend}/{device}: {device_name}")

    task = klg.datasets.load_task("embedded", classes="novel")
    order = np.random.default_rng(0).permutation(len(task.x_train))
    x_all, y_all = task.x_train[order], task.y_train[order]
    ancestry = klg.load_shipped_ancestry(ANCESTRY)
    learngene = klg.condense(ancestry, num_units=NUM_UNITS, method="front")
    result["model"] = {"ancestry": ANCESTRY, "method": "front", "num_units": NUM_UNITS,
                       "n_layers": N_LAYERS, "num_classes": task.num_classes}

    # 1. agreement: the same weights, the same batches, no random op
    keras.utils.set_random_seed(0)
    model = _descendant(learngene, task.num_classes)
    phases["build"] = time.perf_counter() - started - sum(phases.values())
    result["model"]["params"] = model.count_params()
    logits = keras.ops.convert_to_numpy(model(task.x_test[:LOGIT_IMAGES], training=False))
    x, y = x_all[:agree_images], y_all[:agree_images]
    run = klg.training.train(model, x, y, epochs=agree_epochs, batch_size=batch_size,
                             augment=False, seed=0, verbose=0)
    steady, compile_s = _steady(run["epoch_seconds"])
    losses = [float(v) for v in run["history"]["loss"]]
    result["logits"] = logits.astype(float).tolist()
    result["agreement_run"] = {
        "images": len(x), "epochs": agree_epochs, "batch_size": batch_size,
        "steps": agree_epochs * -(-len(x) // batch_size), "augment": False,
        "losses": losses, "final_loss": losses[-1],
        "test_accuracy": accuracy(model, task.x_test, task.y_test),
        "test_images": len(task.x_test), "epoch_seconds": run["epoch_seconds"],
        "images_per_second": len(x) / steady, "compile_seconds": compile_s,
    }
    phases["agreement_run"] = time.perf_counter() - started - sum(phases.values())
    _say(f"{backend}/{device}: agreement run: loss {losses[-1]:.4f}, "
         f"{len(x) / steady:.0f} img/s, compile {compile_s:.1f} s")

    # 2. throughput: more epochs of the train step compiled above (a fresh
    # `train` would compile again), on every whole batch of the novel images,
    # for at most `throughput_seconds` and within the leg's `seconds`
    whole = len(x_all) - len(x_all) % batch_size
    batches = klg.training.AugmentedBatches(x_all[:whole], y_all[:whole], task.num_classes,
                                            batch_size, seed=1, augment=False)
    per_epoch = steady * whole / len(x)
    budget = min(throughput_seconds, seconds - (time.perf_counter() - started) - 2.0)
    epochs = int(min(budget / per_epoch, 500)) if per_epoch > 0 else 0
    if epochs >= 2:
        timer = EpochTimer()
        model.fit(batches, epochs=epochs, callbacks=[timer], verbose=0)
        rate = whole * epochs / sum(timer.seconds)
        result["throughput"] = {
            "source": "throughput run", "images": whole, "epochs": epochs,
            "batch_size": batch_size, "augment": False, "epoch_seconds": timer.seconds,
            "images_per_second": rate, "compile_seconds": compile_s}
    else:  # no time for more: the agreement run's epochs after the first
        agree = result["agreement_run"]
        result["throughput"] = {
            "source": "agreement run (no time left for more epochs)", "images": len(x),
            "epochs": agree_epochs - 1, "batch_size": batch_size, "augment": False,
            "epoch_seconds": agree["epoch_seconds"][1:],
            "images_per_second": agree["images_per_second"], "compile_seconds": compile_s}
    phases["throughput"] = time.perf_counter() - started - sum(phases.values())
    result["phase_seconds"] = phases
    tp = result["throughput"]
    _say(f"{backend}/{device}: {tp['images_per_second']:.0f} img/s over {tp['epochs']} epochs "
         f"({tp['source']})")
    result["seconds"] = time.perf_counter() - started
    return result


def leg_main(args):
    _set_device_env(args.backend, args.device)
    base = {"backend": args.backend, "device": args.device}
    try:
        result = {**run_leg(args.backend, args.device, args.seconds, args.batch_size,
                                   args.throughput_seconds, args.agree_images,
                                   args.agree_epochs),
                  "status": "ok"}
    except Exception as error:  # reported in the table, not a crash of the whole check
        traceback.print_exc()
        result = {**base, "status": "error", "error": f"{type(error).__name__}: {error}"}
    _write_json(args.out, result)
    return 0 if result["status"] == "ok" else 1


# ------------------------------------------------------------------------- bench
def _bench_profile(seconds):
    """The profile of the slice: `GPU_CHECK_BENCH_PROFILE`, by default `pilot`
    (`quick` with under 150 s), on the glyphs when their fonts are installed,
    else on the shipped subset of Fashion-MNIST (4-way tasks, flips on)."""
    import dataclasses

    from keras_learngene import bench, datasets

    name = os.environ.get("GPU_CHECK_BENCH_PROFILE") or ("pilot" if seconds >= 150 else "quick")
    profile = bench.get_profile(name)
    glyphs = [d for d in profile.data if d.name == "glyphs"]
    if not glyphs or os.environ.get("GPU_CHECK_BENCH_DATA") != "embedded":
        try:
            for d in glyphs:
                datasets.load_task("glyphs", classes="base", split=d.splits[0], **d.options)
            return profile, "glyphs fonts found"
        except Exception as error:  # no fonts, Pillow or fontTools
            why = f"glyphs unavailable ({type(error).__name__}: {str(error)[:200]})"
    else:
        why = "GPU_CHECK_BENCH_DATA=embedded"
    data = [d for d in profile.data if d.name != "glyphs"]
    g = glyphs[0]
    shots = tuple(k for k in g.shots if k >= 1)
    data.insert(0, bench.Data("embedded", ways=(4,), shots=shots, tasks=g.tasks, steps=g.steps,
                              ancestry_epochs=g.ancestry_epochs,
                              ancestry_examples=g.ancestry_examples, flip=True,
                              val_fraction=0.25))
    sensitivity = dict(profile.sensitivity or {})
    if sensitivity.get("data") == "glyphs":
        sensitivity.update(data="embedded", ways=4)
    ancestries = {arch: {k: v for k, v in spec.items() if k != "data"}
                  for arch, spec in profile.ancestries.items()}
    return dataclasses.replace(profile, name=f"{profile.name}_embedded", data=tuple(data),
                               ancestries=ancestries, sensitivity=sensitivity), why


def bench_child(args):
    """Runs the slice in this process (the parent stops it at its deadline)."""
    _set_device_env(args.backend, "gpu")
    if os.environ.get("GPU_CHECK_ALLOW_CPU") != "1":
        import keras  # noqa: F401

        if not _device_info(args.backend)[0]:
            raise SystemExit(f"{args.backend} sees no GPU.")
    from keras_learngene import bench

    profile, why = _bench_profile(args.seconds)
    _write_json(os.path.join(args.bench, "slice.json"),
                {"profile": profile.name, "why": why, "backend": args.backend,
                 "planned_runs": len(bench.plan_runs(profile))})
    _say(f"benchmark slice: profile {profile.name} ({why}) on {args.backend}")
    try:
        bench.run_bench(profile, args.bench, report=False)
    except KeyboardInterrupt:  # the parent's deadline: the finished runs are on disk
        _say("benchmark slice: stopped")
        return 130
    return 0


def bench_main(args):
    """The slice in a child process, stopped after `--seconds`; then its report."""
    os.makedirs(args.bench, exist_ok=True)
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--bench-child",
                              "--bench", args.bench, "--backend", args.backend,
                              "--seconds", str(args.seconds)])
    cut = False
    try:
        rc = child.wait(timeout=max(args.seconds, 1))
    except subprocess.TimeoutExpired:
        cut = True
        _say(f"benchmark slice: {args.seconds:.0f} s are up, stopping it")
        child.send_signal(signal.SIGINT)
        try:
            rc = child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            rc = child.wait()
    seconds = time.perf_counter() - started
    # the report, in a process that leaves the GPU alone
    _set_device_env(args.backend, "cpu")
    from keras_learngene import bench

    summary = {"backend": args.backend, "seconds": round(seconds, 1), "stopped_at_deadline": cut,
               "exit_code": rc, "status": "ok" if cut or rc == 0 else "error"}
    slice_path = os.path.join(args.bench, "slice.json")
    if os.path.isfile(slice_path):
        with open(slice_path) as f:
            summary.update(json.load(f))
    records = bench.load_records(args.bench)
    summary["finished_runs"] = len(records)
    trained = [r["images_per_second"] for r in records if "images_per_second" in r]
    if trained:
        import numpy as np

        summary["median_run_images_per_second"] = float(np.median(trained))
    if os.path.isfile(os.path.join(args.bench, "meta.json")):
        try:
            summary["report"] = str(bench.write_report(args.bench))
        except Exception as error:
            summary["report_error"] = f"{type(error).__name__}: {error}"
    _write_json(os.path.join(args.bench, "bench.json"), summary)
    _say(f"benchmark slice: {summary['finished_runs']} of {summary.get('planned_runs', '?')} "
         f"runs in {seconds:.0f} s; report: {summary.get('report', '-')}")
    return 0 if summary["status"] == "ok" else 1


# ----------------------------------------------------------------------- summary
def compare(gpu, cpu, tol):
    """The agreement of a GPU leg with its CPU leg: `(ok, details)`."""
    import numpy as np

    if gpu.get("status") != "ok" or cpu.get("status") != "ok":
        return None, "no comparison (a leg failed)"
    ga, ca = gpu["agreement_run"], cpu["agreement_run"]
    if (ga["images"], ga["epochs"], ga["batch_size"]) != (ca["images"], ca["epochs"],
                                                          ca["batch_size"]):
        return False, "the agreement runs differ in size"
    a, b = np.asarray(gpu["logits"]), np.asarray(cpu["logits"])
    logits = float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-12))
    loss = abs(ga["final_loss"] - ca["final_loss"]) / max(abs(ca["final_loss"]), 1e-12)
    acc = abs(ga["test_accuracy"] - ca["test_accuracy"])
    checks = {"logits_rel_err": logits, "loss_rel_err": loss, "accuracy_abs_diff": acc,
              "logits_ok": logits <= tol["logits_rtol"], "loss_ok": loss <= tol["loss_rtol"],
              "accuracy_ok": acc <= tol["accuracy_atol"]}
    checks["ok"] = checks["logits_ok"] and checks["loss_ok"] and checks["accuracy_ok"]
    return checks["ok"], checks


def summary_main(args):
    out = args.summary
    legs_dir = os.path.join(out, "legs")
    legs = {}
    for name in sorted(os.listdir(legs_dir)) if os.path.isdir(legs_dir) else []:
        if name.endswith(".json"):
            with open(os.path.join(legs_dir, name)) as f:
                leg = json.load(f)
            legs[(leg["backend"], leg["device"])] = leg
    tol = _tolerances()
    backends = [b for b in ("tensorflow", "jax", "torch") if any(k[0] == b for k in legs)]
    rows, agreement, failed, disagree = [], {}, [], []
    for backend in backends:
        gpu, cpu = legs.get((backend, "gpu"), {}), legs.get((backend, "cpu"), {})
        if gpu.get("status") == "skipped":
            rows.append([backend, "-", "-", "-", "-", "-", gpu.get("error", "skipped"), "-"])
            continue
        ok, checks = compare(gpu, cpu, tol)
        agreement[backend] = checks
        if ok is False:
            disagree.append(backend)
        for device, leg in (("gpu", gpu), ("cpu", cpu)):
            if leg.get("status") != "ok":
                failed.append(f"{backend}/{device}")
                rows.append([backend, device, "-", "-", "-", "-",
                             f"FAIL: {leg.get('error', 'no result')}"[:90], "-"])
                continue
            tp, ag = leg["throughput"], leg["agreement_run"]
            label = device + (" (dry run: cpu)" if leg.get("dry_run") else "")
            if device == "cpu":
                verdict, speedup = "reference", "1.0x"
            else:
                verdict = "-" if ok is None else ("OK" if ok else "FAIL")
                other = cpu.get("throughput", {}).get("images_per_second")
                speedup = f"{tp['images_per_second'] / other:.1f}x" if other else "-"
            rows.append([backend, label, f"{tp['images_per_second']:.0f}",
                         f"{tp['compile_seconds']:.1f}", f"{ag['final_loss']:.4f}",
                         f"{ag['test_accuracy']:.3f}", verdict, speedup])
    bench = None
    bench_path = os.path.join(out, "bench", "bench.json")
    if os.path.isfile(bench_path):
        with open(bench_path) as f:
            bench = json.load(f)
        if bench.get("status") != "ok":
            failed.append("benchmark slice")
    header = ["backend", "device", "img/s", "compile s", "loss", "acc", "agreement",
              "GPU speedup"]
    print("\n| " + " | ".join(header) + " |")
    print("|" + "|".join(" --- " for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    any_leg = next((leg for leg in legs.values() if leg.get("status") == "ok"), None)
    if any_leg:
        tp, ag = any_leg["throughput"], any_leg["agreement_run"]
        print(f"\nimg/s: steady-state training of a {any_leg['model']['params']:,}-parameter "
              f"descendant of {ANCESTRY} (first {NUM_UNITS} units + {N_LAYERS} new), batch "
              f"{tp['batch_size']}, float32 with TF32 off, epochs after the first; loss and "
              f"acc: after the agreement run's {ag['steps']} deterministic steps.")
    print(f"agreement (GPU against CPU): logits within {tol['logits_rtol']:g} relative, "
          f"loss within {tol['loss_rtol']:.0%}, accuracy within {tol['accuracy_atol'] * 100:g} "
          "points")
    for backend, checks in agreement.items():
        if isinstance(checks, dict):
            print(f"  {backend}: logits {checks['logits_rel_err']:.1e}, loss "
                  f"{checks['loss_rel_err']:.2%}, accuracy {checks['accuracy_abs_diff']:.3f}")
    if bench:
        print(f"benchmark slice: profile {bench.get('profile', '?')} on {bench['backend']}, "
              f"{bench.get('finished_runs', 0)} of {bench.get('planned_runs', '?')} runs in "
              f"{bench['seconds']:.0f} s"
              + (" (stopped at the deadline)" if bench.get("stopped_at_deadline") else "")
              + (f", median {bench['median_run_images_per_second']:.0f} img/s per run"
                 if "median_run_images_per_second" in bench else "")
              + (f"; report: {bench['report']}" if "report" in bench else ""))
    code = 1 if disagree else (2 if failed else 0)
    _write_json(os.path.join(out, "gpu_check.json"), {
        "legs": list(legs.values()), "agreement": agreement, "tolerances": tol, "bench": bench,
        "table": [dict(zip(header, row)) for row in rows], "disagree": disagree,
        "failed": failed, "exit_code": code})
    if disagree:
        print(f"FAIL: GPU and CPU disagree on {', '.join(disagree)}")
    if failed:
        print(f"FAIL: {', '.join(failed)} did not finish (see the log)")
    print(f"figures: {os.path.join(out, 'gpu_check.json')}")
    return code


def fastest_main(args):
    """Prints the backend whose GPU leg trained fastest (for the slice)."""
    best, rate = "", -1.0
    legs_dir = os.path.join(args.fastest, "legs")
    for name in sorted(os.listdir(legs_dir)):
        if not name.endswith(".json"):
            continue
        with open(os.path.join(legs_dir, name)) as f:
            leg = json.load(f)
        if leg.get("device") == "gpu" and leg.get("status") == "ok":
            if leg["throughput"]["images_per_second"] > rate:
                best, rate = leg["backend"], leg["throughput"]["images_per_second"]
    print(best)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=("tensorflow", "jax", "torch"))
    parser.add_argument("--device", choices=("gpu", "cpu"), default="gpu")
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="wall time of a leg (its throughput run fills it) or of the slice")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--throughput-seconds", type=float, default=15.0,
                        help="at most this long measuring img/s after the agreement run")
    parser.add_argument("--agree-images", type=int, default=AGREE_IMAGES,
                        help="images of the agreement run (the same on both devices)")
    parser.add_argument("--agree-epochs", type=int, default=AGREE_EPOCHS)
    parser.add_argument("--out", help="the leg's JSON file")
    parser.add_argument("--bench", metavar="DIR", help="run the benchmark slice into DIR")
    parser.add_argument("--bench-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--summary", metavar="OUT", help="print the table of OUT/legs")
    parser.add_argument("--fastest", metavar="OUT", help="print the fastest GPU leg's backend")
    args = parser.parse_args(argv)
    if args.summary:
        return summary_main(args)
    if args.fastest:
        return fastest_main(args)
    if not args.backend:
        parser.error("--backend is required")
    if args.bench:
        return bench_child(args) if args.bench_child else bench_main(args)
    if not args.out:
        parser.error("--out is required for a leg")
    return leg_main(args)


if __name__ == "__main__":
    sys.path.insert(0, ROOT)  # keras_learngene from this checkout when it is not installed
    sys.exit(main())
