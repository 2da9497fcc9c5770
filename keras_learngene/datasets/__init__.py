"""Data sets and tasks, without the internet.

- `load_fashion_mnist`: the full Fashion-MNIST (70,000 real 28x28 images) from local IDX
  files, found by `find_fashion_mnist` in an explicit path, `$KLG_DATA_DIR`, the Keras cache
  or Debian's `/usr/share/datasets/fashion-mnist/` (`apt-get install dataset-fashion-mnist`).
- `load_embedded`: a class-balanced 6,500-image subset of it shipped in the package.
- `load_digits`: scikit-learn's 8x8 digits (optional dependency).
- `load_glyphs`: characters rendered from the installed fonts, one class per character,
  grouped by script, split into train and test by font family (needs Pillow and fonts:
  `apt-get install fonts-noto-core fonts-dejavu-core`).
- `load_cifar100`, `cifar_fs_classes`: CIFAR-100 from a local copy (never downloaded) and
  its CIFAR-FS split (64 base / 16 val / 20 novel classes).
- `sample_episodes`: N-way K-shot tasks drawn from a pool of (novel) classes.
- `load_image_folder`, `load_npz`, `load_data`: users' own images, from a folder with one
  sub-folder per class (read with Pillow) or an `.npz` file, as a `Task`.
- `load_task`, `class_split`, `sample_shots`, `to_float_images`, `Task`: base / novel class
  splits and K-shot tasks, sampled in pure numpy so every backend sees the same images.
"""

from keras_learngene.datasets._cifar import (
    CIFAR100_CLASSES,
    CIFAR_FS_BASE,
    CIFAR_FS_NOVEL,
    CIFAR_FS_VAL,
    cifar_fs_classes,
    find_cifar100,
    load_cifar100,
)
from keras_learngene.datasets._digits import load_digits
from keras_learngene.datasets._episodes import sample_episodes
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
from keras_learngene.datasets._files import (
    fit_images,
    load_data,
    load_image_folder,
    load_npz,
    parse_image_size,
)
from keras_learngene.datasets._glyphs import (
    ANCESTRY_SCRIPTS,
    NUM_SPLITS,
    SCRIPT_NAMES,
    SCRIPTS,
    GlyphData,
    GlyphsNotFoundError,
    Typeface,
    find_fonts,
    glyphs_cache_dir,
    load_glyphs,
    render_glyphs,
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
    "ANCESTRY_SCRIPTS",
    "BASE_CLASSES",
    "CIFAR100_CLASSES",
    "CIFAR_FS_BASE",
    "CIFAR_FS_NOVEL",
    "CIFAR_FS_VAL",
    "DATASETS",
    "DATA_DIR_ENV",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_DEBIAN_DIR",
    "FASHION_MNIST_FILES",
    "NOVEL_CLASSES",
    "NUM_SPLITS",
    "SCRIPTS",
    "SCRIPT_NAMES",
    "DataNotFoundError",
    "GlyphData",
    "GlyphsNotFoundError",
    "Task",
    "Typeface",
    "cifar_fs_classes",
    "class_split",
    "find_cifar100",
    "find_fashion_mnist",
    "find_fonts",
    "fit_images",
    "load_digits",
    "glyphs_cache_dir",
    "load_cifar100",
    "load_data",
    "load_embedded",
    "load_fashion_mnist",
    "load_glyphs",
    "load_image_folder",
    "load_npz",
    "load_task",
    "parse_image_size",
    "render_glyphs",
    "sample_episodes",
    "sample_shots",
    "to_float_images",
]
