"""N-way K-shot episodes: many small tasks drawn from a pool of classes, in pure numpy.

Episode `i` of seed `s` is drawn with `np.random.default_rng([s, i])`, so it is the same on
every backend and does not depend on how many episodes are drawn.
"""

import operator

import numpy as np

from keras_learngene.datasets._tasks import Task, to_float_images


def _as_arrays(source):
    """`(x_train, y_train, x_test, y_test, class_names, name)` from a Task or array tuples."""
    if isinstance(source, Task):
        return (
            source.x_train,
            source.y_train,
            source.x_test,
            source.y_test,
            source.class_names,
            source.name,
        )
    try:
        (x_train, y_train), (x_test, y_test) = source
    except (TypeError, ValueError) as error:
        raise ValueError(
            "Expected a Task or ((x_train, y_train), (x_test, y_test)), received "
            f"{type(source).__name__}."
        ) from error
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    if len(x_train) != len(y_train) or len(x_test) != len(y_test):
        raise ValueError("x and y differ in length in the train or the test split.")
    top = int(max(y_train.max(initial=-1), y_test.max(initial=-1)))
    names = tuple(str(c) for c in range(top + 1))
    return x_train, y_train, x_test, y_test, names, "arrays"


def _float(x):
    x = np.asarray(x)
    return to_float_images(x) if x.dtype == np.uint8 else x


def sample_episodes(source, ways, shots, num_tasks, seed=0, queries=None, classes=None):
    """Draws N-way K-shot tasks: `ways` classes each, `shots` training images per class.

    Each episode picks `ways` distinct classes from the pool, `shots` of their training
    images (for glyphs: from the training fonts) and `queries` of their test images per class
    (for glyphs: from the held-out fonts; None keeps them all), and relabels the classes
    `0..ways - 1` in the order drawn.

    Args:
        source: a `Task` (e.g. `load_task("glyphs", classes="novel")`) or
            `((x_train, y_train), (x_test, y_test))` arrays (uint8 images are scaled as
            `to_float_images` does).
        ways: N, classes per episode.
        shots: K, training images per class.
        num_tasks: number of episodes.
        seed: seed; episode i uses `np.random.default_rng([seed, i])`.
        queries: test images per class; None keeps every test image of the chosen classes.
        classes: the pool (labels of `source`); None is every class with at least `shots`
            training and `queries` (at least one) test images.

    Returns:
        A list of `num_tasks` `Task`, named `"<source>/<N>-way-<K>-shot/task=<i>/seed=<s>"`,
        whose `class_names` are those of the chosen classes.

    Raises:
        ValueError: if the pool has fewer than `ways` classes, a pool class lacks images,
            or an argument is not a positive int.

    Example:

    >>> task = load_task("embedded")
    >>> episodes = sample_episodes(task, ways=3, shots=5, num_tasks=2, queries=10)
    >>> [(len(e.x_train), len(e.x_test), e.num_classes) for e in episodes]
    [(15, 30, 3), (15, 30, 3)]
    """
    ways, shots, num_tasks = (operator.index(v) for v in (ways, shots, num_tasks))
    for label, value in (("ways", ways), ("shots", shots), ("num_tasks", num_tasks)):
        if value <= 0:
            raise ValueError(f"{label} must be a positive int, got {value}.")
    if queries is not None:
        queries = operator.index(queries)
        if queries <= 0:
            raise ValueError(f"queries must be a positive int or None, got {queries}.")
    x_train, y_train, x_test, y_test, names, source_name = _as_arrays(source)
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    train_of = {int(c): np.flatnonzero(y_train == c) for c in np.unique(y_train)}
    test_of = {int(c): np.flatnonzero(y_test == c) for c in np.unique(y_test)}
    need_test = 1 if queries is None else queries
    if classes is None:
        pool = [
            c
            for c in sorted(train_of)
            if len(train_of[c]) >= shots and len(test_of.get(c, ())) >= need_test
        ]
    else:
        pool = [operator.index(c) for c in classes]
        if len(set(pool)) != len(pool):
            raise ValueError(f"Received duplicate classes in classes={tuple(pool)}.")
        for c in pool:
            n_train, n_test = len(train_of.get(c, ())), len(test_of.get(c, ()))
            if n_train < shots or n_test < need_test:
                raise ValueError(
                    f"Class {c} has {n_train} training and {n_test} test images; an episode "
                    f"needs {shots} and {need_test}."
                )
    if len(pool) < ways:
        raise ValueError(
            f"A {ways}-way episode needs {ways} classes, but the pool holds {len(pool)} with "
            f"at least {shots} training and {need_test} test images each."
        )
    pool = np.asarray(pool)
    episodes = []
    for i in range(num_tasks):
        rng = np.random.default_rng([operator.index(seed), i])
        chosen = rng.choice(pool, size=ways, replace=False)
        train_idx, test_idx, train_y, test_y = [], [], [], []
        for label, c in enumerate(chosen.tolist()):
            picked = np.sort(rng.choice(train_of[c], size=shots, replace=False))
            train_idx.append(picked)
            train_y.append(np.full(shots, label, dtype=np.int64))
            members = test_of[c]
            if queries is not None:
                members = np.sort(rng.choice(members, size=queries, replace=False))
            test_idx.append(members)
            test_y.append(np.full(len(members), label, dtype=np.int64))
        train_idx, test_idx = np.concatenate(train_idx), np.concatenate(test_idx)
        episodes.append(
            Task(
                name=f"{source_name}/{ways}-way-{shots}-shot/task={i}/seed={seed}",
                x_train=_float(np.asarray(x_train)[train_idx]),
                y_train=np.concatenate(train_y),
                x_test=_float(np.asarray(x_test)[test_idx]),
                y_test=np.concatenate(test_y),
                class_names=tuple(names[c] for c in chosen.tolist()),
                flip=getattr(source, "flip", False),
            )
        )
    return episodes
