"""The cost of condensing: wall time of `klg condense`'s default (Auto
Learngene on the shipped ancestry) against one training epoch of that
ancestry on its own training data (36,000 base-class images), in one run on
one machine; and the peak memory of the similarity step at 1k, 4k and 16k
probe examples (each in a fresh process, so peaks do not mix).

    KERAS_BACKEND=jax python benchmarks/condense_cost.py
"""

import json
import os
import subprocess
import sys
import time

SIMILARITY_STEP = r"""
import json, resource, sys, time
import numpy as np
import keras_learngene as klg
from keras_learngene._condense import resolve_form
from keras_learngene.methods import build_pseudo_descendant, unit_similarities
n = int(sys.argv[1])
ancestry = klg.load_default_ancestry()
form = resolve_form(ancestry)
anatomy = form.split(ancestry)
pseudo, outputs, _ = build_pseudo_descendant(form, anatomy, 3, 6)
x = klg.datasets.load_task("fashion_mnist", classes="all").x_train[:n]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
S = unit_similarities(ancestry, anatomy.unit_outputs, pseudo, outputs, x,
                      klg.plugins.get_similarity("linear_cka"))
seconds = time.perf_counter() - start
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"n": n, "seconds": seconds, "rss_before_mib": before / 1024,
                  "rss_peak_mib": after / 1024, "shape": list(S.shape)}))
"""


def main():
    import keras

    import keras_learngene as klg

    ancestry = klg.load_default_ancestry()
    base = klg.datasets.load_task("fashion_mnist", classes="base")
    model = keras.models.clone_model(ancestry)
    start = time.perf_counter()
    klg.training.train(model, base.x_train, base.y_train, epochs=1, verbose=0)
    epoch = time.perf_counter() - start

    probe = klg.datasets.load_task("embedded", classes="base")
    start = time.perf_counter()
    klg.condense(ancestry, (probe.x_train, probe.y_train), num_units=3)
    condense = time.perf_counter() - start

    print(f"backend {keras.backend.backend()}, {os.cpu_count()} CPU cores\n")
    print("| step | wall time (s) |\n| --- | ---: |")
    print(f"| one ancestry epoch (36,000 images) | {epoch:.1f} |")
    print(f"| condense (auto, default: 3,000 probe images, 2 pseudo epochs) | {condense:.1f} |")
    print(f"| ratio condense / epoch | {condense / epoch:.2f} |\n")

    print("| probe examples | similarity step (s) | peak RSS (MiB) | RSS before (MiB) |")
    print("| ---: | ---: | ---: | ---: |")
    for n in (1000, 4000, 16000):
        out = subprocess.run([sys.executable, "-c", SIMILARITY_STEP, str(n)],
                             capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"| {n:,} | {r['seconds']:.1f} | {r['rss_peak_mib']:.0f} | "
              f"{r['rss_before_mib']:.0f} |")


if __name__ == "__main__":
    main()
