"""Peak memory and time of streaming minibatch CKA vs the full-batch (concatenating) path.

Compares, for growing numbers of probe examples, `LinearCKA().accumulator()` (minibatch CKA,
memory independent of n) with the default concatenating accumulator that keeps every batch
and calls the exact linear CKA on the full matrices. Features are random but correlated
across units and are produced one batch at a time, as a model would produce them.

Usage:

    python benchmarks/similarity_memory.py   # with keras_learngene installed (or PYTHONPATH=.)
"""

import time
import tracemalloc

import numpy as np

from keras_learngene.similarity import LinearCKA, Similarity

NUM_X, NUM_Y, FEATURES, BATCH = 8, 4, 64, 256
SIZES = (1_000, 4_000, 16_000)


def probe_batches(n, seed=0):
    """Yields (xs, ys) batches: NUM_X and NUM_Y units sharing a latent signal."""
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(NUM_X + NUM_Y, 16, FEATURES))
    for start in range(0, n, BATCH):
        z = rng.normal(size=(min(BATCH, n - start), 16))
        units = [z @ m + rng.normal(size=(len(z), FEATURES)) for m in mix]
        yield units[:NUM_X], units[NUM_X:]


def run(make_accumulator, n):
    acc = make_accumulator()
    for xs, ys in probe_batches(n):
        acc.update(xs, ys)
    return acc.result()


def measure(make_accumulator, n, repeats=3):
    """Returns (result, peak MiB, seconds) of accumulating n examples.

    Peak memory comes from one run under tracemalloc (numpy reports its buffers to it); the
    time is the best of `repeats` untraced runs, since tracing slows every allocation.
    """
    tracemalloc.start()
    result = run(make_accumulator, n)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(make_accumulator, n)
        times.append(time.perf_counter() - start)
    return result, peak / 2**20, min(times)


def main():
    metric = LinearCKA()
    paths = {
        "streaming (minibatch CKA)": lambda: metric.accumulator(NUM_X, NUM_Y),
        # The base-class accumulator: keeps every batch, exact CKA at result().
        "full batch (concatenate)": lambda: Similarity.accumulator(metric, NUM_X, NUM_Y),
    }
    print(
        f"Linear CKA, {NUM_X} ancestry x {NUM_Y} pseudo units, {FEATURES} features, batch {BATCH}\n"
    )
    print(
        "| examples | path | peak memory (MiB) | wall time (s, best of 3) | max abs diff vs full |"
    )
    print("| ---: | --- | ---: | ---: | ---: |")
    for n in SIZES:
        results = {name: measure(make, n) for name, make in paths.items()}
        full = results["full batch (concatenate)"][0]
        for name, (s, peak, seconds) in results.items():
            diff = np.max(np.abs(s - full))
            print(f"| {n:,} | {name} | {peak:.1f} | {seconds:.3f} | {diff:.4f} |")


if __name__ == "__main__":
    main()
