"""Data sets and tasks, without the internet.

- `load_fashion_mnist`: the full Fashion-MNIST (70,000 real 28x28 images) from local IDX
  files, found by `find_fashion_mnist` in an explicit path, `$KLG_DATA_DIR`, the Keras cache
  or Debian's `/usr/share/datasets/fashion-mnist/` (`apt-get install dataset-fashion-mnist`).
- `load_embedded`: a class-balanced 6,500-image subset of it shipped in the package.
- `load_digits`: scikit-learn's 8x8 digits (optional dependency).
- `load_task`, `class_split`, `sample_shots`, `to_float_images`, `Task`: base / novel class
  splits and K-shot tasks, sampled in pure numpy so every backend sees the same images.
"""

from keras_learngene.datasets._digits import load_digits
from keras_learngene.datasets._fashion_mnist import (
    BASE_CLASSES,
    DATA_DIR_ENV,
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_DEBIAN_DIR,
    FASHION_MNIST_FILES,
    NOVEL_CLASSES,
    DataNotFoundError,
    find_fashion_mnist,
    load_embedded,
    load_fashion_mnist,
)
from keras_learngene.datasets._tasks import (
    DATASETS,
    Task,
    class_split,
    load_task,
    sample_shots,
    to_float_images,
)

__all__ = [
    "BASE_CLASSES",
    "DATASETS",
    "DATA_DIR_ENV",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_DEBIAN_DIR",
    "FASHION_MNIST_FILES",
    "NOVEL_CLASSES",
    "DataNotFoundError",
    "Task",
    "class_split",
    "find_fashion_mnist",
    "load_digits",
    "load_embedded",
    "load_fashion_mnist",
    "load_task",
    "sample_shots",
    "to_float_images",
]
