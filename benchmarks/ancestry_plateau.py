"""How long must a glyph ancestry train before its units beat raw pixels?

The benchmark's precondition (docs/benchmark.md): an ancestry can only pass on
what its features know, so on the novel classes a linear probe on its units must
beat the same probe on raw pixels. This script trains one preset on the glyph
base classes of a split under a constant learning rate (after a short warm-up),
and after chosen epochs prints the base-class test accuracy (held-out typeface
families) and a ridge probe on every unit's pooled features minus the probe on
pixels, paired over N-way K-shot episodes of the novel classes (the mean and its
95% interval). One JSON record per measured epoch goes to --out.

    KERAS_BACKEND=tensorflow python benchmarks/ancestry_plateau.py --preset vgg_iso \\
        --epochs 20 --at 1,3,10,20 --out ancestry_plateau.jsonl
"""

import argparse
import json
import time

import numpy as np


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="vgg_iso")
    parser.add_argument("--split", type=int, default=0)
    parser.add_argument("--scripts", default="pilot", help="'pilot', 'all' or a comma list")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--at", default="1,3,10,20", help="epochs at which to measure")
    parser.add_argument("--ways", type=int, default=5)
    parser.add_argument("--shots", default="1,5")
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--out", default="ancestry_plateau.jsonl")
    args = parser.parse_args()

    import keras

    from keras_learngene import datasets, models, training
    from keras_learngene._condense import resolve_form
    from keras_learngene.bench import _stats
    from keras_learngene.bench._profiles import PILOT_SCRIPTS
    from keras_learngene.forms import feature_model

    scripts = {"pilot": PILOT_SCRIPTS, "all": None}.get(args.scripts,
                                                       tuple(args.scripts.split(",")))
    options = {} if scripts is None else {"scripts": scripts}
    base = datasets.load_task("glyphs", classes="base", split=args.split, **options)
    novel = datasets.load_task("glyphs", classes="novel", split=args.split, **options)
    shots = [int(s) for s in args.shots.split(",")]
    at = sorted({int(e) for e in args.at.split(",")} | {args.epochs})
    episodes = {k: datasets.sample_episodes(novel, args.ways, k, args.tasks, seed=0)
                for k in shots}
    print(f"{args.preset} on {base.num_classes} base classes ({len(base.y_train)} images, "
          f"split {args.split}); novel: {novel.num_classes} classes; "
          f"backend {keras.backend.backend()}", flush=True)

    keras.utils.set_random_seed(0)
    model = models.build_preset(args.preset, base.input_shape, base.num_classes)
    steps_per_epoch = int(np.ceil(len(base.y_train) / args.batch_size))
    training.compile_model(model, learning_rate=args.learning_rate, schedule="constant",
                           total_steps=steps_per_epoch * args.epochs, warmup_fraction=0.02)
    batches = training.AugmentedBatches(base.x_train, base.y_train, base.num_classes,
                                        args.batch_size, seed=0, flip=False)
    anatomy = resolve_form(model).split(model)
    features = feature_model(model, [anatomy.stem_output] + list(anatomy.unit_outputs))
    names = ["stem"] + [f"unit {i}" for i in range(len(anatomy.units))]
    seconds = 0.0
    with open(args.out, "w") as out:
        for epoch in range(1, args.epochs + 1):
            start = time.perf_counter()
            model.fit(batches, epochs=1, verbose=0)
            seconds += time.perf_counter() - start
            if epoch not in at:
                continue
            record = {"preset": args.preset, "epoch": epoch, "train_seconds": round(seconds, 1),
                      "base_classes": base.num_classes,
                      "base_test_accuracy": round(training.evaluate(
                          model, base.x_test, base.y_test), 4), "transfer": {}}
            for k, tasks in episodes.items():
                pixels, rows = [], {n: [] for n in names}
                for task in tasks:
                    half = np.arange(len(task.y_test)) % 2 == 0  # validation / test halves
                    split = (task.x_train, task.y_train, task.x_test[half], task.y_test[half],
                             task.x_test[~half], task.y_test[~half])
                    pixels.append(_stats.ridge_probe(*split, args.ways)["accuracy"])
                    f_train = features.predict(task.x_train, verbose=0)
                    f_test = features.predict(task.x_test, verbose=0)
                    for n, a, b in zip(names, f_train, f_test):  # pooled features
                        a, b = np.asarray(a), np.asarray(b)
                        rows[n].append(_stats.ridge_probe(a, task.y_train, b[half],
                                                          task.y_test[half], b[~half],
                                                          task.y_test[~half],
                                                          args.ways)["accuracy"])
                record["transfer"][str(k)] = {
                    "pixels": _stats.interval(pixels),
                    **{n: _stats.interval(np.subtract(rows[n], pixels)) for n in names}}
            out.write(json.dumps(record) + "\n")
            out.flush()
            best = {k: max((v["mean"], n) for n, v in t.items() if n != "pixels")
                    for k, t in record["transfer"].items()}
            print(f"epoch {epoch} ({seconds:.0f} s): base test accuracy "
                  f"{record['base_test_accuracy']:.3f}; best unit minus pixels: " + ", ".join(
                      f"K={k}: {m * 100:+.1f} ({n}; pixels "
                      f"{record['transfer'][k]['pixels']['mean'] * 100:.1f})"
                      for k, (m, n) in best.items()), flush=True)


if __name__ == "__main__":
    main()
