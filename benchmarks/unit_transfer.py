"""Which ancestry units carry knowledge that transfers to the novel classes?

For every unit of an ancestry (the shipped ViT by default), a linear probe
(multinomial logistic regression, scikit-learn) on the unit's pooled
features, trained on K images per novel class and tested on all 4,000
novel-class test images of Fashion-MNIST, against the same probe on raw
pixels. Compare with the units that Auto / Heur Learngene select (see
`klg bench`'s report): it tells whether the chosen units are the ones whose
features serve the new task.

    KERAS_BACKEND=tensorflow python benchmarks/unit_transfer.py [ancestry.keras]
"""

import sys

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

import keras_learngene as klg
from keras_learngene._condense import resolve_form
from keras_learngene.forms import feature_model


def probe_accuracy(train, y_train, test, y_test):
    scaler = StandardScaler().fit(train)
    clf = LogisticRegression(max_iter=2000, C=1.0).fit(scaler.transform(train), y_train)
    return clf.score(scaler.transform(test), y_test)


def main():
    import keras

    path = sys.argv[1] if len(sys.argv) > 1 else None
    ancestry = keras.saving.load_model(path) if path else klg.load_default_ancestry()
    anatomy = resolve_form(ancestry).split(ancestry)
    task = klg.datasets.load_task("fashion_mnist", classes="novel")
    features = feature_model(ancestry, [anatomy.stem_output] + list(anatomy.unit_outputs))
    train = [np.asarray(f) for f in features.predict(task.x_train, batch_size=2000, verbose=0)]
    test = [np.asarray(f) for f in features.predict(task.x_test, batch_size=2000, verbose=0)]
    pixels_train = task.x_train.reshape(len(task.x_train), -1)
    pixels_test = task.x_test.reshape(len(task.x_test), -1)
    names = ["pixels", "stem"] + [f"unit {i}" for i in range(len(anatomy.units))]
    shots = (10, 50, 200, 1000)
    rows = {name: [] for name in names}
    for k in shots:
        per_seed = {name: [] for name in names}
        for seed in (0, 1, 2):
            keep = klg.datasets.sample_shots(task.y_train, k, seed)
            y = task.y_train[keep]
            per_seed["pixels"].append(probe_accuracy(pixels_train[keep], y, pixels_test,
                                                     task.y_test))
            for name, tr, te in zip(names[1:], train, test):
                per_seed[name].append(probe_accuracy(tr[keep], y, te, task.y_test))
        for name in names:
            rows[name].append((np.mean(per_seed[name]), np.std(per_seed[name])))
    print(f"Linear probe on pooled features of {ancestry.name} ({keras.backend.backend()}), "
          "novel classes of Fashion-MNIST, 4,000 test images, mean ± std over seeds 0-2\n")
    print("| features | " + " | ".join(f"K={k}" for k in shots) + " |")
    print("| --- | " + " | ".join("---:" for _ in shots) + " |")
    for name in names:
        cells = " | ".join(f"{100 * m:.1f} ± {100 * s:.1f}" for m, s in rows[name])
        print(f"| {name} | {cells} |")


if __name__ == "__main__":
    main()
