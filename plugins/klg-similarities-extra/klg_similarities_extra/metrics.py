"""SVCCA, PWCCA and orthogonal Procrustes similarities for keras-learngene.

Every metric here is a `keras_learngene.similarity.Similarity`: it scores two feature
matrices `x` (n, p) and `y` (n, q) of the same n probe inputs with a float in [0, 1]. The
base class validates the inputs (2-D, finite, same number of rows, cast to float64) and the
output, so `score()` below works on clean float64 arrays. Pure numpy.

Canonical correlation analysis (CCA) is computed without inverting covariance matrices:
each centered matrix is reduced to an orthonormal basis of its column space by a thin SVD
(directions whose singular value is below `rank_tol` times the largest are dropped, which
handles dead or duplicated units), and the canonical correlations are the singular values of
`U_x^T U_y`, i.e. the cosines of the principal angles between the two column spaces.
"""

import numpy as np

from keras_learngene.similarity import Similarity

__all__ = ["PWCCA", "SVCCA", "OrthogonalProcrustes", "canonical_correlations"]


# ---------------------------------------------------------------------------- helpers


def _center(x):
    """Centers columns; exactly-constant columns become exact zeros (no rounding residue)."""
    xc = x - x.mean(axis=0, keepdims=True)
    xc[:, np.ptp(x, axis=0) == 0] = 0.0
    return xc


def _check_rank_tol(rank_tol):
    if not np.isfinite(rank_tol) or not 0.0 <= rank_tol < 1.0:
        raise ValueError(
            f"`rank_tol` must be a number in [0, 1), got {rank_tol!r}: directions whose "
            "singular value is below `rank_tol` times the largest are treated as rank "
            "deficiency and dropped (default 1e-6)."
        )
    return float(rank_tol)


def _basis(xc, rank_tol):
    """Thin SVD of a centered matrix, truncated to its numerical rank.

    Returns `(u, s, vt)` with `u` (n, r) orthonormal, `s` (r,) descending and `vt` (r, p),
    where r is the number of singular values above `rank_tol * s.max()` (0 for a zero
    matrix).
    """
    u, s, vt = np.linalg.svd(xc, full_matrices=False)
    if s.size == 0 or s[0] == 0.0:
        r = 0
    else:
        r = int(np.count_nonzero(s > rank_tol * s[0]))
    return u[:, :r], s[:r], vt[:r]


def _require_examples(metric, n, dx, dy, what):
    """Raises ValueError when n examples cannot support CCA of dx + dy dimensions.

    Centered data live in an (n - 1)-dimensional space, so two column spaces of dimensions
    dx and dy with dx + dy >= n must intersect, and canonical correlations of exactly 1
    appear whatever the data.
    """
    if dx + dy >= n:
        raise ValueError(
            f"The {metric!r} similarity needs more probe examples than the feature "
            f"dimensions it correlates: got n={n} examples for {dx} + {dy} = {dx + dy} "
            f"dimensions ({what}). With so few examples the two column spaces must overlap "
            "and canonical correlations of 1 appear whatever the data. Pass more than "
            f"{dx + dy} probe examples (several times more for a stable estimate), reduce the "
            "features (e.g. global average pooling), or use 'linear_cka', which works with "
            "fewer examples than features."
        )


def _cca(ux, uy):
    """CCA between two orthonormal bases (n, rx) and (n, ry).

    Returns `(rho, a)`: the min(rx, ry) canonical correlations in descending order, clipped
    to [0, 1], and `a` (rx, k), the canonical directions of x in the basis `ux` (the
    canonical variates of x are `ux @ a`, orthonormal).
    """
    a, rho, _ = np.linalg.svd(ux.T @ uy, full_matrices=False)
    return np.clip(rho, 0.0, 1.0), a


def canonical_correlations(x, y, rank_tol=1e-6):
    """Canonical correlations between two feature matrices of the same inputs.

    Centers both matrices, drops directions whose singular value is below `rank_tol` times
    the largest (rank deficiency), and returns the cosines of the principal angles between
    the two column spaces. Does not check that n is large enough; the metrics do.

    Args:
        x: array of shape (n, p).
        y: array of shape (n, q), the same n inputs.
        rank_tol: relative singular-value cutoff in [0, 1).

    Returns:
        A float64 array of the min(rank x, rank y) canonical correlations, descending, in
        [0, 1].

    Example:

    ```python
    canonical_correlations(x, x @ np.random.normal(size=(p, p)))  # all ~1.0
    ```
    """
    rank_tol = _check_rank_tol(rank_tol)
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    ux, _, _ = _basis(_center(x), rank_tol)
    uy, _, _ = _basis(_center(y), rank_tol)
    return _cca(ux, uy)[0]


# ---------------------------------------------------------------------------- SVCCA


class SVCCA(Similarity):
    """Singular vector canonical correlation analysis (SVCCA).

    Centers each feature matrix, keeps its top singular directions that together explain
    `keep_variance` of its variance (the smallest such number of directions), and runs CCA
    between the two reduced matrices. The score is the mean of the min(k_x, k_y) canonical
    correlations, in [0, 1]. The SVD step discards low-variance directions, which plain CCA
    would weigh as much as the dominant ones.

    Invariant to orthogonal transforms, translations and isotropic scaling of either input
    (and to any invertible linear map applied after the SVD step); symmetric in x and y.
    Compares representations of different widths.

    CCA needs more examples than the dimensions it correlates: the call raises ValueError
    when n <= k_x + k_y (kept directions), where canonical correlations of 1 would appear
    whatever the data. With few examples the score is biased upwards; use several times
    more examples than k_x + k_y, or `linear_cka`.

    Not streaming: the accumulator keeps every batch.

    Args:
        keep_variance: float in (0, 1], the fraction of each matrix's variance that the kept
            singular directions must explain (0.99 in Raghu et al.).
        rank_tol: float in [0, 1); singular values below `rank_tol` times the largest are
            treated as rank deficiency and never kept.

    Example:

    ```python
    from klg_similarities_extra import SVCCA

    SVCCA()(x, y)  # x: (n, p), y: (n, q), n > p + q
    keras_learngene.plugins.get_similarity("svcca")(x, y)  # the same
    ```

    References:
        - [Raghu et al., 2017](https://arxiv.org/abs/1706.05806)
    """

    name = "svcca"

    def __init__(self, keep_variance=0.99, rank_tol=1e-6):
        if not np.isfinite(keep_variance) or not 0.0 < keep_variance <= 1.0:
            raise ValueError(
                f"`keep_variance` must be a number in (0, 1], got {keep_variance!r}; "
                "Raghu et al. keep the directions explaining 0.99 of the variance."
            )
        self.keep_variance = float(keep_variance)
        self.rank_tol = _check_rank_tol(rank_tol)

    def _reduce(self, x):
        """Orthonormal basis (n, k) of x's top singular directions."""
        u, s, _ = _basis(_center(x), self.rank_tol)
        if not s.size:
            return u
        explained = np.cumsum(s**2) / np.sum(s**2)
        k = int(np.searchsorted(explained, self.keep_variance - 1e-12)) + 1
        return u[:, : min(k, s.size)]

    def score(self, x, y):
        ux, uy = self._reduce(x), self._reduce(y)
        if not ux.shape[1] or not uy.shape[1]:
            return 0.0  # a constant representation shares no variance with anything
        _require_examples(
            self.name,
            x.shape[0],
            ux.shape[1],
            uy.shape[1],
            f"the top singular directions explaining {self.keep_variance:g} of the variance "
            f"of x ({x.shape[1]} features) and of y ({y.shape[1]} features)",
        )
        rho, _ = _cca(ux, uy)
        return float(np.mean(rho))

    def get_config(self):
        return {"keep_variance": self.keep_variance, "rank_tol": self.rank_tol}


# ---------------------------------------------------------------------------- PWCCA


class PWCCA(Similarity):
    """Projection-weighted canonical correlation analysis (PWCCA).

    Runs CCA between the centered feature matrices (after dropping rank-deficient directions)
    and averages the canonical correlations `rho_i` weighted by how much of x's
    representation each canonical variate accounts for:

    ```
    alpha_i = sum_j |<h_i, x_j>|,   score = sum_i alpha_i rho_i / sum_i alpha_i
    ```

    where `h_i` are x's canonical variates (unit-norm n-vectors) and `x_j` x's centered
    features (columns). Directions that carry much of x's activity count more than the
    noisy low-variance directions that plain mean CCA weighs equally. The score is in
    [0, 1].

    Not symmetric: the weights come from `x`, which in a learngene similarity matrix is the
    ancestry unit. Invariant to translations and isotropic scaling of either input, to
    orthogonal transforms (and any invertible linear map) of `y`, and to permutations and
    sign flips of x's features, but not to general rotations of x, since the weights are
    computed in x's feature basis.

    CCA needs more examples than the dimensions it correlates: the call raises ValueError
    when n <= rank(x) + rank(y), where canonical correlations of 1 would appear whatever the
    data. Use several times more examples than p + q, or `linear_cka`.

    Not streaming: the accumulator keeps every batch.

    Args:
        rank_tol: float in [0, 1); singular values below `rank_tol` times the largest are
            treated as rank deficiency (dead or duplicated units) and dropped before CCA.

    Example:

    ```python
    from klg_similarities_extra import PWCCA

    PWCCA()(x, y)  # x: (n, p), y: (n, q), n > p + q
    ```

    References:
        - [Morcos, Raghu & Bengio, 2018](https://arxiv.org/abs/1806.05759)
        - [Raghu et al., 2017](https://arxiv.org/abs/1706.05806)
    """

    name = "pwcca"

    def __init__(self, rank_tol=1e-6):
        self.rank_tol = _check_rank_tol(rank_tol)

    def score(self, x, y):
        ux, sx, vtx = _basis(_center(x), self.rank_tol)
        uy, _, _ = _basis(_center(y), self.rank_tol)
        if not ux.shape[1] or not uy.shape[1]:
            return 0.0  # a constant representation shares no variance with anything
        _require_examples(
            self.name,
            x.shape[0],
            ux.shape[1],
            uy.shape[1],
            f"rank {ux.shape[1]} of x's {x.shape[1]} features and rank {uy.shape[1]} of y's "
            f"{y.shape[1]} features",
        )
        rho, a = _cca(ux, uy)
        # <h_i, x_j> for h = ux @ a and x_c = ux diag(sx) vtx (rank-truncated): a^T diag(sx) vtx.
        alpha = np.abs(a.T @ (sx[:, None] * vtx)).sum(axis=1)
        total = alpha.sum()
        if total == 0.0:
            return 0.0
        return float(np.dot(alpha, rho) / total)

    def get_config(self):
        return {"rank_tol": self.rank_tol}


# ---------------------------------------------------------------------------- Procrustes


def _compact(x):
    """An (n, min(n, p)) matrix with the same gram `x x^T` as `x`.

    Every quantity below depends on x only through its gram, so wide matrices (p > n) can
    be shrunk to n columns first: with `x^T = q r`, `(x q)(x q)^T = x x^T`.
    """
    n, p = x.shape
    if p <= n:
        return x
    q, _ = np.linalg.qr(x.T)
    return x @ q


class OrthogonalProcrustes(Similarity):
    """Orthogonal Procrustes similarity.

    Centers both feature matrices and scales each to unit Frobenius norm. The orthogonal
    Procrustes distance is then `d = min_R ||x R - y||_F^2 = 2 - 2 ||x^T y||_*` over
    orthogonal R (`||.||_*` the nuclear norm, the sum of singular values), and the score is
    `1 - d / 2 = ||x^T y||_*`, in [0, 1]: 1 when y is a rotation (or reflection) of x up to
    translation and scale. Inputs of different widths are compared as if the narrower one
    were padded with zero features, as in Ding et al.

    Invariant to orthogonal transforms, translations and isotropic scaling of either input;
    symmetric. Unlike the CCA metrics it is not invariant to arbitrary invertible linear
    maps, so it is sensitive to how variance is spread over directions (like CKA), and it
    works for any n >= 2, including fewer examples than features. A constant input scores
    0.0.

    Not streaming: the accumulator keeps every batch.

    Example:

    ```python
    from klg_similarities_extra import OrthogonalProcrustes

    OrthogonalProcrustes()(x, x @ q)  # 1.0 for an orthogonal q
    ```

    References:
        - [Ding, Denain & Steinhardt, 2021](https://arxiv.org/abs/2108.01661)
        - Schönemann, 1966, "A generalized solution of the orthogonal Procrustes problem",
          Psychometrika 31.
    """

    name = "procrustes"

    def score(self, x, y):
        x, y = _center(x), _center(y)
        nx, ny = np.linalg.norm(x), np.linalg.norm(y)
        if nx == 0.0 or ny == 0.0:
            return 0.0
        x, y = _compact(x / nx), _compact(y / ny)
        return float(np.sum(np.linalg.svd(x.T @ y, compute_uv=False)))
