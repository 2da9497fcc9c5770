"""Similarity metrics between two units' representations of the same inputs.

A similarity scores two feature matrices `x` (n, p) and `y` (n, q) computed by two units on
the same n probe inputs, and returns a float in [0, 1]. Auto Learngene fills a matrix
S (L ancestry units x D pseudo-descendant units) with such scores, one mini-batch at a time,
through `Similarity.accumulator()`.

This module is pure numpy (float64 internally): the library computes features with Keras and
hands numpy arrays over, so every metric behaves the same on every backend.
"""

import itertools
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

import numpy as np

__all__ = [
    "BUILTIN_SIMILARITIES",
    "RBFCKA",
    "Accumulator",
    "CosineSimilarity",
    "FunctionSimilarity",
    "LinearCKA",
    "LinearCKADebiased",
    "Separation",
    "Similarity",
    "as_similarity",
    "separation",
    "similarity_matrix",
]


# ---------------------------------------------------------------------------- validation


def _features(x, name="x"):
    """Returns `x` as a finite float64 (examples, features) array, or raises ValueError."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(
            f"`{name}` must be a 2-D (examples, features) array, got shape {arr.shape}. "
            "Pool each unit's output to (examples, features) first, e.g. with global "
            "average pooling or by flattening everything but the first axis."
        )
    bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
    if bad:
        raise ValueError(
            f"`{name}` contains {bad} NaN/inf value(s) in an array of shape {arr.shape}; "
            "features must be finite. Check the unit that produced them (a diverged model, "
            "an overflow in float16, a log of zero)."
        )
    return arr


def _pair(x, y, min_rows, what="examples"):
    """Validates two feature matrices of the same inputs and returns them as float64."""
    x, y = _features(x, "x"), _features(y, "y")
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"`x` and `y` must hold the same {what}, got {x.shape[0]} rows in x "
            f"(shape {x.shape}) and {y.shape[0]} rows in y (shape {y.shape}). "
            "Run both units on the same probe inputs."
        )
    if x.shape[0] < min_rows:
        raise ValueError(
            f"Need at least {min_rows} {what} to compare representations, got "
            f"{x.shape[0]}. Pass more probe inputs."
        )
    return x, y


def _center(x):
    """Centers columns; exactly-constant columns become exact zeros (no rounding residue)."""
    xc = x - x.mean(axis=0, keepdims=True)
    # `x - mean` leaves ~1e-17 noise on a constant column, which CKA would then normalise
    # into a spurious signal; a constant feature carries no information, so zero it.
    xc[:, np.ptp(x, axis=0) == 0] = 0.0
    return xc


def _clip01(value):
    return float(np.clip(value, 0.0, 1.0))


# ---------------------------------------------------------------------------- base classes


class Accumulator:
    """Accumulates a (num_x, num_y) similarity matrix over mini-batches.

    `update()` takes one mini-batch: the features of every ancestry unit and of every pseudo
    descendant unit on the same `b` inputs. `result()` returns the matrix so far.

    Subclasses override `_update(xs, ys)` (called with validated float64 arrays) and
    `_result()`; validation, the empty case and clipping to [0, 1] are done here.

    Args:
        num_x: number of ancestry units (rows of the result).
        num_y: number of pseudo descendant units (columns of the result).

    Example:

    ```python
    acc = LinearCKA().accumulator(num_x=2, num_y=1)
    for xs, ys in batches:  # xs: [x0 (b, p0), x1 (b, p1)], ys: [y0 (b, q0)]
        acc.update(xs, ys)
    S = acc.result()  # shape (2, 1)
    ```
    """

    #: smallest batch size `update()` accepts.
    min_batch_size = 1

    def __init__(self, num_x, num_y):
        for name, value in (("num_x", num_x), ("num_y", num_y)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
        self.num_x, self.num_y = int(num_x), int(num_y)
        self.num_batches = 0
        self.num_examples = 0
        self._dims = None  # feature sizes of every unit, fixed by the first batch

    def update(self, xs: Sequence[np.ndarray], ys: Sequence[np.ndarray]) -> None:
        """Adds one mini-batch.

        Args:
            xs: `num_x` arrays; `xs[i]` has shape (b, p_i), ancestry unit i's features.
            ys: `num_y` arrays; `ys[j]` has shape (b, q_j), pseudo unit j's features, on the
                same b inputs as `xs`.
        """
        for name, seq, num in (("xs", xs, self.num_x), ("ys", ys, self.num_y)):
            if isinstance(seq, np.ndarray) or len(seq) != num:
                is_array = isinstance(seq, np.ndarray)
                got = f"an array of shape {seq.shape}" if is_array else f"{len(seq)} arrays"
                raise ValueError(
                    f"`{name}` must be a list of {num} feature arrays (one per unit), got "
                    f"{got}. Pass one (batch, features) array per unit."
                )
        xs = [_features(x, f"xs[{i}]") for i, x in enumerate(xs)]
        ys = [_features(y, f"ys[{j}]") for j, y in enumerate(ys)]
        rows = {a.shape[0] for a in xs + ys}
        if len(rows) != 1:
            raise ValueError(
                f"All units of a batch must hold the same inputs, got row counts "
                f"{[a.shape[0] for a in xs]} (xs) and {[a.shape[0] for a in ys]} (ys). "
                "Run every unit on the same probe batch."
            )
        (b,) = rows
        if b < self.min_batch_size:
            raise ValueError(self._small_batch_message(b))
        dims = [a.shape[1] for a in xs + ys]
        if self._dims is not None and dims != self._dims:
            raise ValueError(
                f"Feature sizes changed between batches: first {self._dims}, now {dims}. "
                "Each unit must give the same number of features on every batch."
            )
        self._dims = dims
        self._update(xs, ys)
        self.num_batches += 1
        self.num_examples += b

    def result(self) -> np.ndarray:
        """Returns the (num_x, num_y) float64 similarity matrix, clipped to [0, 1].

        Returns:
            A finite float64 array of shape (num_x, num_y).
        """
        if not self.num_batches:
            raise ValueError("No batches accumulated yet; call `update(xs, ys)` first.")
        s = np.asarray(self._result(), dtype=np.float64)
        return np.clip(np.nan_to_num(s, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)

    def _small_batch_message(self, b):
        return (
            f"Got a batch of {b} example(s); this accumulator needs at least "
            f"{self.min_batch_size}. Use a larger batch size."
        )

    def _update(self, xs, ys):
        raise NotImplementedError

    def _result(self):
        raise NotImplementedError


class _ConcatAccumulator(Accumulator):
    """Keeps every batch and scores the concatenated matrices at `result()`.

    Memory grows linearly with the number of examples; streaming metrics avoid this.
    """

    def __init__(self, metric, num_x, num_y):
        super().__init__(num_x, num_y)
        self.metric = metric
        self._xs = [[] for _ in range(self.num_x)]
        self._ys = [[] for _ in range(self.num_y)]

    def _update(self, xs, ys):
        for store, arrays in ((self._xs, xs), (self._ys, ys)):
            for parts, a in zip(store, arrays):
                parts.append(a)

    def _result(self):
        xs = [np.concatenate(parts) for parts in self._xs]
        ys = [np.concatenate(parts) for parts in self._ys]
        return np.array([[self.metric(x, y) for y in ys] for x in xs])


class Similarity:
    """Base class of similarity metrics.

    A similarity scores two feature matrices of the same n inputs, `x` (n, p) and `y` (n, q),
    and returns a float in [0, 1] (1: the same representation up to the metric's
    invariances). Subclasses implement `score(x, y)`; `__call__` validates the inputs first
    and checks the output.

    Attributes:
        name: the registry name of the metric.
        streaming: True when `accumulator()` keeps memory independent of the number of
            examples.
        min_examples: the smallest number of examples `__call__` accepts.

    Example:

    ```python
    class MeanAbsCorrelation(Similarity):
        name = "mean_abs_corr"

        def score(self, x, y):
            c = np.corrcoef(x.T, y.T)[: x.shape[1], x.shape[1]:]
            return float(np.nanmean(np.abs(c)))
    ```
    """

    name: str = ""
    streaming: bool = False
    min_examples: int = 2

    def __call__(self, x, y) -> float:
        """Scores `x` (n, p) against `y` (n, q) on the full batch.

        Args:
            x: array-like of shape (n, p).
            y: array-like of shape (n, q), the same n inputs as `x`.

        Returns:
            A float in [0, 1].
        """
        x, y = _pair(x, y, self.min_examples)
        value = float(self.score(x, y))
        if not np.isfinite(value) or not -1e-6 <= value <= 1 + 1e-6:
            raise ValueError(
                f"Similarity {self.name!r} returned {value!r}; a similarity must be a finite "
                "number in [0, 1]. Fix the metric's `score()`."
            )
        return _clip01(value)

    def score(self, x: np.ndarray, y: np.ndarray) -> float:
        """Computes the score; `x` and `y` are validated, finite float64 2-D arrays."""
        raise NotImplementedError(f"{type(self).__name__} must implement `score(x, y)`.")

    def accumulator(self, num_x: int, num_y: int) -> Accumulator:
        """Returns an `Accumulator` that builds a (num_x, num_y) matrix over mini-batches.

        The default keeps every batch and calls the metric on the concatenated features of
        each pair at `result()`, so its memory grows with the number of examples. Streaming
        metrics override this.

        Args:
            num_x: number of ancestry units.
            num_y: number of pseudo descendant units.

        Returns:
            An `Accumulator`.
        """
        return _ConcatAccumulator(self, num_x, num_y)

    def get_config(self) -> dict:
        """Returns the constructor arguments, for provenance records."""
        return {}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


# ---------------------------------------------------------------------------- linear CKA


def _unbiased_hsic(ga, gb, same=False):
    """Unbiased HSIC (Song et al. 2012) of every gram in `ga` (u, b, b) with every gram in
    `gb` (v, b, b), diagonals already zero. Returns (u, v), or (u,) pairs ga[i], gb[i] when
    `same`."""
    b = ga.shape[-1]
    ra, rb = ga.sum(axis=2), gb.sum(axis=2)  # K~ 1, per unit
    sa, sb = ra.sum(axis=1), rb.sum(axis=1)  # 1^T K~ 1
    if same:
        trace = np.einsum("uab,uab->u", ga, gb)  # tr(K~ L~), grams are symmetric
        cross, total = np.einsum("ua,ua->u", ra, rb), sa * sb
    else:
        trace = ga.reshape(len(ga), -1) @ gb.reshape(len(gb), -1).T
        cross, total = ra @ rb.T, np.outer(sa, sb)
    return (trace + total / ((b - 1) * (b - 2)) - 2.0 * cross / (b - 2)) / (b * (b - 3))


def _grams(arrays):
    """Linear gram matrices (b, b) of every unit, stacked, with zero diagonals."""
    # Centering within the batch does not change the unbiased HSIC of a linear kernel (it is
    # translation invariant) but keeps the gram entries small, so less cancellation.
    centered = [_center(a) for a in arrays]
    g = np.stack([a @ a.T for a in centered])
    idx = np.arange(g.shape[-1])
    g[:, idx, idx] = 0.0
    return g


class _MinibatchCKAAccumulator(Accumulator):
    """Minibatch linear CKA: sums of unbiased HSIC estimates over batches."""

    min_batch_size = 4

    def __init__(self, num_x, num_y):
        super().__init__(num_x, num_y)
        self._xy = np.zeros((self.num_x, self.num_y))
        self._xx = np.zeros(self.num_x)
        self._yy = np.zeros(self.num_y)

    def _small_batch_message(self, b):
        return (
            f"Got a batch of {b} example(s); minibatch CKA uses the unbiased HSIC estimator, "
            "which needs at least 4 examples per batch. Use a larger batch size, or drop a "
            "last batch that has fewer than 4 examples."
        )

    def _update(self, xs, ys):
        gx, gy = _grams(xs), _grams(ys)  # each unit's gram once per batch, not once per pair
        self._xy += _unbiased_hsic(gx, gy)
        self._xx += _unbiased_hsic(gx, gx, same=True)
        self._yy += _unbiased_hsic(gy, gy, same=True)

    def _result(self):
        # A unit with zero (or, by estimator noise, negative) self-HSIC has no variance to
        # compare: its similarity is 0 rather than NaN.
        den = np.sqrt(np.outer(np.maximum(self._xx, 0.0), np.maximum(self._yy, 0.0)))
        out = np.zeros_like(self._xy)
        np.divide(self._xy, den, out=out, where=den > 0)
        return out


class LinearCKA(Similarity):
    """Linear centered kernel alignment (CKA).

    `__call__` computes the exact linear CKA of two full feature matrices,
    `||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)` with columns centered, in feature space:
    O(n p q) time and O(p q) memory, never an n x n matrix.

    `accumulator()` computes minibatch CKA (Nguyen, Raghu & Kornblith, 2021): per batch the
    unbiased HSIC estimator of every (ancestry, pseudo) pair and of every unit with itself,
    summed over batches; the result is `sum HSIC(K, L) / sqrt(sum HSIC(K, K) sum HSIC(L, L))`.
    Memory is O(b^2 (num_x + num_y)) for a batch of b, independent of the number of batches.
    Batches need at least 4 examples. It converges to the full-batch value as batches are
    added (it is a ratio of unbiased estimates, so it is not identical to `__call__`).

    CKA is invariant to orthogonal transforms and isotropic scaling of either input, and
    compares feature matrices of different widths. A constant feature matrix (zero variance)
    scores 0.0 rather than NaN.

    Example:

    ```python
    x = np.random.normal(size=(500, 64))
    LinearCKA()(x, x @ np.linalg.qr(np.random.normal(size=(64, 64)))[0])  # 1.0
    ```

    References:
        - [Kornblith et al., 2019](https://arxiv.org/abs/1905.00414)
        - [Nguyen, Raghu & Kornblith, 2021](https://arxiv.org/abs/2010.15327)
        - Song et al., 2012, "Feature Selection via Dependence Maximization", JMLR 13.
    """

    name = "linear_cka"
    streaming = True

    def score(self, x, y):
        x, y = _center(x), _center(y)
        den = np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)
        if den == 0.0:
            return 0.0
        return np.linalg.norm(y.T @ x) ** 2 / den

    def accumulator(self, num_x, num_y):
        """Returns a streaming minibatch-CKA `Accumulator` (batches of at least 4)."""
        return _MinibatchCKAAccumulator(num_x, num_y)


class LinearCKADebiased(Similarity):
    """Debiased linear CKA: linear CKA with the unbiased HSIC estimator.

    `HSIC_u(K, L) / sqrt(HSIC_u(K, K) HSIC_u(L, L))` with linear grams
    `K = X X^T`, `L = Y Y^T` and the unbiased estimator of Song et al. (2012),
    clipped to [0, 1]. Plain linear CKA is biased upwards when there are more
    features than examples: two *independent* random representations of 50
    inputs with 500 features score ~0.9. The debiased estimate scores them
    near 0, while identical (up to rotation and scale) representations still
    score 1. Prefer it when the probe set is small next to the width of the
    units (Davari et al., 2022).

    `__call__` builds n x n grams (O(n^2) memory: keep n to a few thousand) and
    needs at least 4 examples. `accumulator()` streams minibatch CKA (Nguyen,
    Raghu & Kornblith, 2021), which sums the same unbiased estimates over
    batches of at least 4 (`min_batch_size`): with a single batch it equals
    `__call__`. A unit with no variance, or an estimate of zero or below,
    scores 0.0.

    Example:

    ```python
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(50, 500)), rng.normal(size=(50, 500))
    LinearCKA()(x, y)          # ~0.9: the bias of few examples
    LinearCKADebiased()(x, y)  # ~0.0
    ```

    References:
        - Song et al., 2012, "Feature Selection via Dependence Maximization", JMLR 13.
        - [Nguyen, Raghu & Kornblith, 2021](https://arxiv.org/abs/2010.15327)
        - [Davari et al., 2022](https://arxiv.org/abs/2210.16156)
    """

    name = "linear_cka_debiased"
    streaming = True
    min_examples = 4

    def score(self, x, y):
        gx, gy = _grams([x]), _grams([y])
        xy = _unbiased_hsic(gx, gy)[0, 0]
        den = np.sqrt(max(_unbiased_hsic(gx, gx, same=True)[0], 0.0)
                      * max(_unbiased_hsic(gy, gy, same=True)[0], 0.0))
        return 0.0 if den <= 0.0 else _clip01(xy / den)

    def accumulator(self, num_x, num_y):
        """Returns a streaming minibatch-CKA `Accumulator` (batches of at least 4)."""
        return _MinibatchCKAAccumulator(num_x, num_y)


# ---------------------------------------------------------------------------- RBF CKA


def _centered_rbf_gram(x, sigma_fraction):
    """Doubly-centered Gaussian gram matrix, or None when all examples are identical."""
    sq = np.sum(x * x, axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0)
    dist = np.sqrt(d2[np.triu_indices(len(x), k=1)])
    if not np.any(dist > 0):
        return None
    # Many duplicated examples can make the median 0; then use the median of the nonzero
    # distances so the bandwidth stays positive.
    median = np.median(dist)
    if median == 0.0:
        median = np.median(dist[dist > 0])
    gram = np.exp(-d2 / (2.0 * (sigma_fraction * median) ** 2))
    gram -= gram.mean(axis=0, keepdims=True)
    return gram - gram.mean(axis=1, keepdims=True)


class RBFCKA(Similarity):
    """CKA with Gaussian (RBF) kernels.

    Each input gets a Gaussian kernel with bandwidth `sigma = sigma_fraction * median`, the
    median Euclidean distance between distinct examples of that input (Kornblith et al.,
    2019), and the score is `HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))` with the biased HSIC
    estimator `tr(K H L H)`. Builds n x n matrices: O(n^2) memory, so keep n to a few
    thousand. Not streaming: the accumulator concatenates batches. If all examples of an
    input are identical the score is 0.0.

    Invariant to orthogonal transforms, translations and isotropic scaling of either input.

    Args:
        sigma_fraction: float > 0, the bandwidth as a fraction of the median distance.

    Example:

    ```python
    RBFCKA(sigma_fraction=0.5)(x, y)
    ```

    References:
        - [Kornblith et al., 2019](https://arxiv.org/abs/1905.00414)
    """

    name = "rbf_cka"

    def __init__(self, sigma_fraction=0.8):
        if not np.isfinite(sigma_fraction) or sigma_fraction <= 0:
            raise ValueError(
                f"`sigma_fraction` must be a positive number, got {sigma_fraction!r}; "
                "Kornblith et al. use 0.2 to 2 (default 0.8)."
            )
        self.sigma_fraction = float(sigma_fraction)

    def score(self, x, y):
        kx = _centered_rbf_gram(x, self.sigma_fraction)
        ky = _centered_rbf_gram(y, self.sigma_fraction)
        if kx is None or ky is None:
            return 0.0
        den = np.sqrt(np.sum(kx * kx) * np.sum(ky * ky))
        return 0.0 if den == 0.0 else np.sum(kx * ky) / den

    def get_config(self):
        return {"sigma_fraction": self.sigma_fraction}


# ---------------------------------------------------------------------------- cosine


def _cosine01(a, b):
    """(1 + cos(a, b)) / 2 of every row of `a` with every row of `b`; 0 for a zero vector."""
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    den = np.outer(na, nb)
    cos = np.zeros(den.shape)
    np.divide(a @ b.T, den, out=cos, where=den > 0)
    return np.where(den > 0, (1.0 + np.clip(cos, -1.0, 1.0)) / 2.0, 0.0)


def _equal_widths(p_list, q_list):
    if any(p != q for p in p_list for q in q_list):
        raise ValueError(
            f"The 'cosine' similarity needs equal feature sizes, got {sorted(set(p_list))} "
            f"(x) and {sorted(set(q_list))} (y). Use 'linear_cka', which compares "
            "representations of different widths."
        )


class _CosineAccumulator(Accumulator):
    """Streams the sum of each unit's features; cosine is scale invariant, so sums do."""

    def __init__(self, num_x, num_y):
        super().__init__(num_x, num_y)
        self._sx = self._sy = None

    def _update(self, xs, ys):
        _equal_widths([x.shape[1] for x in xs], [y.shape[1] for y in ys])
        sx, sy = np.stack([x.sum(axis=0) for x in xs]), np.stack([y.sum(axis=0) for y in ys])
        if self._sx is None:
            self._sx, self._sy = sx, sy
        else:
            self._sx, self._sy = self._sx + sx, self._sy + sy

    def _result(self):
        return _cosine01(self._sx, self._sy)


class CosineSimilarity(Similarity):
    """Cosine similarity of the two mean representations, mapped to [0, 1].

    Returns `(1 + cos(mean(x), mean(y))) / 2`, so 1 means the same direction, 0.5
    orthogonal and 0 opposite. Both inputs must have the same number of features (use
    `linear_cka` otherwise). If either mean is the zero vector there is no direction to
    compare and the score is 0.0. It compares only average activations: a cheap baseline,
    blind to how representations vary across examples. Streaming: the accumulator keeps one
    running sum per unit.

    Example:

    ```python
    CosineSimilarity()(x, y)  # x, y: (n, p)
    ```
    """

    name = "cosine"
    streaming = True
    min_examples = 1

    def score(self, x, y):
        _equal_widths([x.shape[1]], [y.shape[1]])
        return _cosine01(x.mean(axis=0)[None], y.mean(axis=0)[None])[0, 0]

    def accumulator(self, num_x, num_y):
        """Returns a streaming `Accumulator` that keeps one running sum per unit."""
        return _CosineAccumulator(num_x, num_y)


# ---------------------------------------------------------------------------- plugins


class FunctionSimilarity(Similarity):
    """Wraps a plain function `f(x, y) -> float` as a `Similarity`.

    Lets a plugin register a bare function. The function receives validated float64 arrays
    `x` (n, p) and `y` (n, q) and must return a finite number in [0, 1]. Not streaming.

    Args:
        fn: the function.
        name: the registry name; defaults to `fn.__name__`.

    Example:

    ```python
    def mean_abs_corr(x, y):
        ...

    metric = FunctionSimilarity(mean_abs_corr)  # metric.name == "mean_abs_corr"
    ```
    """

    def __init__(self, fn: Callable[[np.ndarray, np.ndarray], float], name: str | None = None):
        if not callable(fn):
            raise TypeError(f"`fn` must be callable as fn(x, y) -> float, got {fn!r}.")
        self.fn = fn
        self.name = name or getattr(fn, "__name__", type(fn).__name__)

    def score(self, x, y):
        return self.fn(x, y)

    def get_config(self):
        return {"fn": self.fn, "name": self.name}


def as_similarity(obj, name: str | None = None) -> Similarity:
    """Turns what a plugin registers into a `Similarity` instance.

    Args:
        obj: a `Similarity` instance (returned as is), a `Similarity` subclass (instantiated
            with no arguments) or a function `f(x, y) -> float` (wrapped in
            `FunctionSimilarity`).
        name: the name for a wrapped function; defaults to its `__name__`.

    Returns:
        A `Similarity`.

    Example:

    ```python
    as_similarity(LinearCKA)  # LinearCKA()
    as_similarity(lambda x, y: 1.0, name="always_one")
    ```
    """
    if isinstance(obj, Similarity):
        return obj
    if isinstance(obj, type) and issubclass(obj, Similarity):
        return obj()
    if isinstance(obj, str):
        raise TypeError(
            f"Got the name {obj!r}, not a metric. Look names up in the similarity registry "
            f"(built-ins: {sorted(BUILTIN_SIMILARITIES)}), e.g. "
            f"`BUILTIN_SIMILARITIES[{obj!r}]()`."
        )
    if callable(obj) and not isinstance(obj, type):
        return FunctionSimilarity(obj, name=name)
    raise TypeError(
        f"Expected a Similarity instance or subclass, or a function f(x, y) -> float; got {obj!r}."
    )


_MISSING = object()


def similarity_matrix(metric, xs_batches: Iterable, ys_batches: Iterable) -> np.ndarray:
    """Computes the (num_x, num_y) similarity matrix over paired mini-batches.

    Args:
        metric: anything `as_similarity` accepts.
        xs_batches: iterable of mini-batches; each is a list of num_x arrays (b, p_i).
        ys_batches: iterable of mini-batches, in step with `xs_batches`; each is a list of
            num_y arrays (b, q_j) on the same b inputs.

    Returns:
        A float64 array of shape (num_x, num_y) with values in [0, 1].

    Example:

    ```python
    xs_batches = [[a[i : i + 200] for a in anc] for i in range(0, n, 200)]
    ys_batches = [[a[i : i + 200] for a in pseudo] for i in range(0, n, 200)]
    S = similarity_matrix(LinearCKA(), xs_batches, ys_batches)
    ```
    """
    metric = as_similarity(metric)
    acc = None
    for xs, ys in itertools.zip_longest(xs_batches, ys_batches, fillvalue=_MISSING):
        if xs is _MISSING or ys is _MISSING:
            raise ValueError(
                "`xs_batches` and `ys_batches` must yield the same number of batches, but "
                f"{'xs' if xs is _MISSING else 'ys'}_batches ran out first. Iterate both "
                "over the same probe data."
            )
        if acc is None:
            acc = metric.accumulator(len(xs), len(ys))
        acc.update(xs, ys)
    if acc is None:
        raise ValueError("`xs_batches` and `ys_batches` are empty; pass at least one batch.")
    return acc.result()


BUILTIN_SIMILARITIES = {
    "linear_cka": LinearCKA,
    "linear_cka_debiased": LinearCKADebiased,
    "rbf_cka": RBFCKA,
    "cosine": CosineSimilarity,
}
"""Built-in similarity metrics: linear CKA (default), debiased linear CKA, RBF CKA, cosine."""


# ---------------------------------------------------------------------------- diagnostics


class Separation(NamedTuple):
    """What `separation(S)` found: `separates` is False when the scores cannot tell the
    ancestry units apart."""

    separates: bool
    spread: float  # max - min of the rows' best scores
    best: tuple  # each ancestry unit's (row's) best score
    threshold: float


def separation(S, threshold=0.02) -> Separation:
    """Whether a similarity matrix's scores separate the ancestry units.

    Selecting units from `S` (L ancestry units x D pseudo units) only means something when
    some ancestry units match much better than others. This takes each row's best score and
    reports their spread (max - min): below `threshold` the rows are indistinguishable
    (e.g. every score ~1 from the bias of plain linear CKA with few probe examples and wide
    units, or ~0 from an untrained model), and the selection is close to arbitrary. A
    matrix of one row has nothing to choose between and counts as separating.

    Args:
        S: array-like (L, D) of scores in [0, 1].
        threshold: the smallest spread that counts as separating (default 0.02).

    Returns:
        A `Separation(separates, spread, best, threshold)`.

    Raises:
        ValueError: `S` is not a non-empty, finite 2-D matrix.

    Example:

    ```python
    check = separation(S)
    if not check.separates:
        warnings.warn(f"The similarity scores do not separate (spread {check.spread:.3f}).")
    ```
    """
    S = np.asarray(S, dtype=np.float64)
    if S.ndim != 2 or not S.size:
        raise ValueError(f"`S` must be a non-empty (L, D) matrix, got shape {S.shape}.")
    if not np.isfinite(S).all():
        raise ValueError("`S` contains NaN/inf; similarity scores must be finite.")
    best = S.max(axis=1)
    spread = float(best.max() - best.min())
    separates = len(best) < 2 or spread >= threshold
    return Separation(bool(separates), spread, tuple(float(b) for b in best), float(threshold))
