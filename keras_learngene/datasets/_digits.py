"""scikit-learn's 8x8 digits: a second real data set, shipped inside scikit-learn.

scikit-learn is an optional dependency (`pip install keras-learngene[digits]`), imported only
when the digits are loaded.
"""

import functools

import numpy as np


@functools.lru_cache(maxsize=1)
def _raw_digits():
    try:
        from sklearn.datasets import load_digits as sklearn_load_digits
    except ImportError as error:
        raise ImportError(
            "The digits data set needs scikit-learn, which is not installed. Install it with "
            "`pip install scikit-learn` or `pip install keras-learngene[digits]`."
        ) from error
    digits = sklearn_load_digits()
    # Pixel values are 0..16; scale them to the 0..255 range of the other image data sets.
    images = np.round(digits.images * (255 / 16)).astype(np.uint8)
    return images, digits.target.astype(np.int64)


def load_digits(test_fraction=0.25, seed=0):
    """Loads scikit-learn's 1,797 8x8 handwritten digits with a stratified split.

    Each class is split on its own with `np.random.default_rng(seed)`, so the split is the
    same on every machine and keeps the class proportions in train and test.

    Args:
        test_fraction: fraction of each class put in the test set, in `(0, 1)`.
        seed: seed of the split.

    Returns:
        `((x_train, y_train), (x_test, y_test))`: uint8 images of shape `(N, 8, 8)` in
        `0..255` and int64 labels in `0..9`, each split in the original order.

    Raises:
        ImportError: if scikit-learn is not installed.
        ValueError: if `test_fraction` is not strictly between 0 and 1.

    Example:

    >>> (x_train, y_train), (x_test, y_test) = load_digits()  # doctest: +SKIP
    >>> x_train.shape, x_test.shape  # doctest: +SKIP
    ((1347, 8, 8), (450, 8, 8))
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}.")
    images, labels = _raw_digits()
    rng = np.random.default_rng(seed)
    test = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        n_test = round(len(members) * test_fraction)
        test.append(rng.choice(members, size=n_test, replace=False))
    is_test = np.zeros(len(labels), dtype=bool)
    is_test[np.concatenate(test)] = True
    return (images[~is_test], labels[~is_test]), (images[is_test], labels[is_test])
