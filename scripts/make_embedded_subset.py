"""Regenerates keras_learngene/datasets/data/fashion_mnist_subset.npz from the full data.

The subset is a deterministic, class-balanced sample of the real Fashion-MNIST: 500 images of
each class from the training file and 150 of each class from the test file, drawn by
`keras_learngene.datasets.sample_shots` with seed 0 and kept in their original order. Images
are stored as uint8 (N, 28, 28), labels as uint8, with `np.savez_compressed`.

Usage (no internet needed; the full data come from the usual search, see
`find_fashion_mnist`, e.g. Debian's `apt-get install dataset-fashion-mnist`):

    python scripts/make_embedded_subset.py [--source FOLDER] [--out FILE.npz]
"""

import argparse
import pathlib
import sys

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
SEED = 0
TRAIN_PER_CLASS = 500
TEST_PER_CLASS = 150
DEFAULT_OUT = REPO / "keras_learngene" / "datasets" / "data" / "fashion_mnist_subset.npz"


def _datasets():
    # Imported here, after making a checkout importable without installing the package.
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from keras_learngene import datasets

    return datasets


def make_subset(train, test, seed=SEED):
    """Returns the subset's arrays, keyed x_train, y_train, x_test, y_test."""
    sample_shots = _datasets().sample_shots
    (x_train, y_train), (x_test, y_test) = train, test
    train_idx = sample_shots(y_train, TRAIN_PER_CLASS, seed=seed)
    test_idx = sample_shots(y_test, TEST_PER_CLASS, seed=seed)
    return {
        "x_train": x_train[train_idx],
        "y_train": y_train[train_idx].astype(np.uint8),
        "x_test": x_test[test_idx],
        "y_test": y_test[test_idx].astype(np.uint8),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=None, help="folder of the four IDX files")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="npz file to write")
    args = parser.parse_args(argv)
    arrays = make_subset(*_datasets().load_fashion_mnist(args.source))
    np.savez_compressed(args.out, **arrays)
    size = pathlib.Path(args.out).stat().st_size
    shapes = ", ".join(f"{k} {v.shape}" for k, v in arrays.items())
    print(f"wrote {args.out}: {size:,} bytes; {shapes}")


if __name__ == "__main__":
    main()
