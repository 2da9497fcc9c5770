"""Tests for keras_learngene.similarity (pure numpy, fast)."""

import numpy as np
import pytest

from keras_learngene.similarity import (
    BUILTIN_SIMILARITIES,
    RBFCKA,
    CosineSimilarity,
    FunctionSimilarity,
    LinearCKA,
    LinearCKADebiased,
    Similarity,
    as_similarity,
    separation,
    similarity_matrix,
)

ALL = sorted(BUILTIN_SIMILARITIES)
CKAS = ["linear_cka", "linear_cka_debiased", "rbf_cka"]


def metric(name):
    return BUILTIN_SIMILARITIES[name]()


def rng(seed=0):
    return np.random.default_rng(seed)


def correlated(n, p=16, q=12, seed=0):
    """Two representations sharing a low-dimensional signal, plus independent noise."""
    r = rng(seed)
    z = r.normal(size=(n, 6))
    x = z @ r.normal(size=(6, p)) + 0.5 * r.normal(size=(n, p))
    y = np.tanh(z @ r.normal(size=(6, q))) + 0.5 * r.normal(size=(n, q))
    return x, y


def orthogonal(p, seed=1):
    return np.linalg.qr(rng(seed).normal(size=(p, p)))[0]


def batches(arrays, b):
    n = len(arrays[0])
    return [[a[i : i + b] for a in arrays] for i in range(0, n, b)]


# Independent reference implementations, written from the papers' formulas.


def centered_gram_hsic(k, l):
    n = len(k)
    h = np.eye(n) - np.ones((n, n)) / n
    return np.trace(k @ h @ l @ h)


def reference_linear_cka(x, y):
    k, l = x @ x.T, y @ y.T
    return centered_gram_hsic(k, l) / np.sqrt(centered_gram_hsic(k, k) * centered_gram_hsic(l, l))


def unbiased_hsic(k, l):
    """Song et al. (2012), eq. 5, on raw (uncentered) gram matrices."""
    n = len(k)
    k, l = k - np.diag(np.diag(k)), l - np.diag(np.diag(l))
    one = np.ones(n)
    return (
        np.trace(k @ l)
        + (one @ k @ one) * (one @ l @ one) / ((n - 1) * (n - 2))
        - 2.0 / (n - 2) * (one @ k @ l @ one)
    ) / (n * (n - 3))


# ---------------------------------------------------------------------------- properties


@pytest.mark.parametrize("name", ALL)
def test_identical_inputs_score_one(name):
    x, _ = correlated(300)
    assert metric(name)(x, x) == pytest.approx(1.0, abs=1e-10)


@pytest.mark.parametrize("name", CKAS)
def test_invariant_to_orthogonal_transform(name):
    x, y = correlated(300)
    m = metric(name)
    assert m(x @ orthogonal(16), y) == pytest.approx(m(x, y), abs=1e-10)
    assert m(x @ orthogonal(16), x) == pytest.approx(1.0, abs=1e-10)


@pytest.mark.parametrize("name", CKAS)
def test_invariant_to_isotropic_scaling(name):
    x, y = correlated(300)
    m = metric(name)
    assert m(7.5 * x, 0.01 * y) == pytest.approx(m(x, y), abs=1e-10)


@pytest.mark.parametrize("name", ALL)
def test_symmetric_and_in_unit_interval(name):
    x, y = correlated(200, p=8, q=8)
    m = metric(name)
    assert m(x, y) == pytest.approx(m(y, x), abs=1e-12)
    assert 0.0 <= m(x, y) <= 1.0


@pytest.mark.parametrize("name", CKAS)
def test_independent_features_score_low(name):
    r = rng(3)
    x, y = r.normal(size=(2000, 16)), r.normal(size=(2000, 16))
    assert metric(name)(x, y) < 0.2


@pytest.mark.parametrize("name", ALL)
def test_constant_features_score_zero_not_nan(name):
    x = np.full((50, 8), 3.0)
    y, _ = correlated(50, p=8)
    value = metric(name)(x, y) if name != "cosine" else metric(name)(np.zeros((50, 8)), y)
    assert value == 0.0


def test_linear_cka_matches_gram_formula():
    for seed, (n, p, q) in enumerate([(50, 5, 7), (120, 30, 3), (40, 64, 64)]):
        r = rng(seed)
        x, y = r.normal(size=(n, p)) + 2.0, r.normal(size=(n, q)) @ r.normal(size=(q, q))
        x_c, y_c = x - x.mean(0), y - y.mean(0)
        assert LinearCKA()(x, y) == pytest.approx(reference_linear_cka(x_c, y_c), abs=1e-10)


def test_debiased_cka_removes_the_bias_of_few_examples():
    """More features than examples: plain linear CKA calls independent random features
    similar; the unbiased HSIC estimator does not, and identical ones still score 1."""
    for seed in range(3):
        r = rng(seed)
        x, y = r.normal(size=(50, 500)), r.normal(size=(50, 500))
        assert LinearCKA()(x, y) > 0.5
        assert LinearCKADebiased()(x, y) < 0.05
        assert LinearCKA()(x, x) == pytest.approx(1.0, abs=1e-10)
        assert LinearCKADebiased()(x, x) == pytest.approx(1.0, abs=1e-10)
        assert LinearCKADebiased()(x, 3.0 * x @ orthogonal(500, seed)) == pytest.approx(1.0)


def test_debiased_cka_matches_unbiased_hsic_formula():
    x, y = correlated(80, p=9, q=5, seed=2)
    k, l = x @ x.T, y @ y.T  # uncentered: the unbiased HSIC of a linear kernel does not care
    expected = unbiased_hsic(k, l) / np.sqrt(unbiased_hsic(k, k) * unbiased_hsic(l, l))
    assert 0.1 < expected < 0.9
    assert LinearCKADebiased()(x, y) == pytest.approx(expected, abs=1e-10)
    # one batch: the streaming accumulator is the same estimate
    assert similarity_matrix(LinearCKADebiased(), [[x]], [[y]])[0, 0] == pytest.approx(
        expected, abs=1e-10)
    assert BUILTIN_SIMILARITIES["linear_cka_debiased"] is LinearCKADebiased


def test_debiased_cka_needs_four_examples():
    m = LinearCKADebiased()
    assert m.min_examples == 4 and m.accumulator(1, 1).min_batch_size == 4
    x, y = correlated(3)
    with pytest.raises(ValueError, match="Need at least 4 examples"):
        m(x, y)
    with pytest.raises(ValueError, match="needs at least 4 examples per batch"):
        m.accumulator(1, 1).update([x], [y])


def test_separation():
    flat = np.full((4, 3), 0.97) + np.linspace(0, 0.01, 12).reshape(4, 3)
    check = separation(flat)
    assert not check.separates and check.spread < 0.02 and check.threshold == 0.02
    assert check.best == pytest.approx(tuple(flat.max(axis=1)))
    clear = np.array([[0.9, 0.2], [0.3, 0.4], [0.1, 0.8]])
    check = separation(clear)
    assert check.separates and check.spread == pytest.approx(0.5)
    assert not separation(clear, threshold=0.6).separates
    assert separation([[0.5, 0.5]]).separates  # one row: nothing to choose between
    for bad in ([], [1.0, 2.0], [[np.nan, 0.1]]):
        with pytest.raises(ValueError, match="`S`"):
            separation(bad)


def test_rbf_cka_is_not_linear_cka():
    x, y = correlated(200)
    assert abs(RBFCKA()(x, np.exp(y)) - LinearCKA()(x, np.exp(y))) > 1e-3
    assert RBFCKA(0.5).get_config() == {"sigma_fraction": 0.5}


def test_cosine_of_means():
    x = np.array([[1.0, 0.0], [1.0, 0.0]])
    assert CosineSimilarity()(x, -x) == 0.0
    assert CosineSimilarity()(x, x[:, ::-1]) == pytest.approx(0.5)


# ---------------------------------------------------------------------------- accumulators


def test_minibatch_cka_converges_to_full_batch():
    x, y = correlated(2000)
    acc = LinearCKA().accumulator(1, 1)
    for xs, ys in zip(batches([x], 200), batches([y], 200)):
        acc.update(xs, ys)
    assert acc.num_batches == 10 and acc.num_examples == 2000
    assert acc.result()[0, 0] == pytest.approx(LinearCKA()(x, y), abs=0.02)


def test_minibatch_cka_equals_summed_unbiased_hsic():
    x, y = correlated(600, p=10, q=7, seed=5)
    x2 = np.tanh(x[:, :4])
    xs, ys = [x, x2], [y]
    got = similarity_matrix(LinearCKA(), batches(xs, 100), batches(ys, 100))
    expected = np.zeros((2, 1))
    for i, a in enumerate(xs):
        for j, c in enumerate(ys):
            kl = kk = ll = 0.0
            for s in range(0, 600, 100):
                k, l = a[s : s + 100] @ a[s : s + 100].T, c[s : s + 100] @ c[s : s + 100].T
                kl += unbiased_hsic(k, l)
                kk += unbiased_hsic(k, k)
                ll += unbiased_hsic(l, l)
            expected[i, j] = kl / np.sqrt(kk * ll)
    assert np.all(expected > 0.1)
    np.testing.assert_allclose(got, expected, atol=1e-10)


@pytest.mark.parametrize("name", ALL)
def test_accumulator_shape_and_symmetry(name):
    r = rng(7)
    xs = [r.normal(size=(64, 8)) + i for i in range(3)]
    ys = [xs[0] @ orthogonal(8) + 0.1 * r.normal(size=(64, 8)), r.normal(size=(64, 8))]
    m = metric(name)
    s_xy = similarity_matrix(m, batches(xs, 16), batches(ys, 16))
    s_yx = similarity_matrix(m, batches(ys, 16), batches(xs, 16))
    assert s_xy.shape == (3, 2) and s_xy.dtype == np.float64
    assert np.all(np.isfinite(s_xy)) and np.all((s_xy >= 0) & (s_xy <= 1))
    np.testing.assert_allclose(s_xy, s_yx.T, atol=1e-12)


@pytest.mark.parametrize("name", ALL)
def test_accumulator_streaming_flag(name):
    m = metric(name)
    acc = m.accumulator(1, 1)
    assert m.streaming == (type(acc).__name__ != "_ConcatAccumulator")


def test_default_accumulator_equals_full_batch_call():
    x, y = correlated(300)
    m = RBFCKA()
    assert not m.streaming
    got = similarity_matrix(m, batches([x, y], 64), batches([y], 64))
    np.testing.assert_allclose(got, [[m(x, y)], [m(y, y)]], atol=1e-12)


def test_cosine_accumulator_equals_full_batch_call():
    x, y = correlated(300, p=8, q=8)
    got = similarity_matrix(CosineSimilarity(), batches([x], 50), batches([y], 50))
    assert got[0, 0] == pytest.approx(CosineSimilarity()(x, y), abs=1e-12)


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize("name", ALL)
def test_rejects_bad_inputs(name):
    m = metric(name)
    x = rng().normal(size=(20, 4))
    with pytest.raises(ValueError, match=r"2-D \(examples, features\).*shape \(20,\).*Pool"):
        m(x[:, 0], x)
    with pytest.raises(ValueError, match=r"shape \(20, 4, 1\)"):
        m(x, x[..., None])
    with pytest.raises(ValueError, match="20 rows in x .* 19 rows in y.*same probe inputs"):
        m(x, x[:19])
    bad = x.copy()
    bad[3, 1], bad[4, 2] = np.nan, np.inf
    with pytest.raises(ValueError, match="`y` contains 2 NaN/inf"):
        m(x, bad)


@pytest.mark.parametrize("name", CKAS)
def test_rejects_single_example(name):
    need = metric(name).min_examples
    with pytest.raises(ValueError, match=f"at least {need} examples.*got 1"):
        metric(name)(np.ones((1, 3)), np.ones((1, 3)))


def test_cosine_needs_equal_widths():
    x = rng().normal(size=(20, 4))
    msg = r"needs equal feature sizes, got \[4\] \(x\) and \[3\] \(y\).*linear_cka"
    with pytest.raises(ValueError, match=msg):
        CosineSimilarity()(x, x[:, :3])
    with pytest.raises(ValueError, match=msg):
        CosineSimilarity().accumulator(1, 1).update([x], [x[:, :3]])


def test_minibatch_cka_rejects_small_batches():
    x = rng().normal(size=(3, 4))
    with pytest.raises(ValueError, match="batch of 3.*unbiased HSIC.*at least 4"):
        LinearCKA().accumulator(1, 1).update([x], [x])


def test_accumulator_validation():
    x = rng().normal(size=(8, 4))
    acc = LinearCKA().accumulator(2, 1)
    with pytest.raises(ValueError, match="No batches"):
        acc.result()
    with pytest.raises(ValueError, match="`xs` must be a list of 2 feature arrays.*got 1"):
        acc.update([x], [x])
    with pytest.raises(ValueError, match=r"row counts \[8, 7\] \(xs\) and \[8\] \(ys\)"):
        acc.update([x, x[:7]], [x])
    nan_x = x.copy()
    nan_x[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"`xs\[1\]` contains 1 NaN"):
        acc.update([x, nan_x], [x])
    acc.update([x, x], [x])
    with pytest.raises(ValueError, match=r"Feature sizes changed.*\[4, 4, 4\].*\[4, 3, 4\]"):
        acc.update([x, x[:, :3]], [x])
    with pytest.raises(ValueError, match="positive integer, got 0"):
        LinearCKA().accumulator(0, 1)


def test_similarity_matrix_needs_matching_batches():
    x = rng().normal(size=(8, 4))
    with pytest.raises(ValueError, match="same number of batches.*ys_batches ran out"):
        similarity_matrix(LinearCKA(), [[x], [x]], [[x]])
    with pytest.raises(ValueError, match="empty"):
        similarity_matrix(LinearCKA(), [], [])


# ---------------------------------------------------------------------------- plugins


def test_as_similarity():
    def mean_product(x, y):
        return float(np.clip(np.mean(x) * np.mean(y), 0, 1))

    wrapped = as_similarity(mean_product)
    assert isinstance(wrapped, FunctionSimilarity) and wrapped.name == "mean_product"
    assert as_similarity(lambda x, y: 0.5, name="half").name == "half"
    assert isinstance(as_similarity(LinearCKA), LinearCKA)
    instance = RBFCKA(0.5)
    assert as_similarity(instance) is instance
    with pytest.raises(TypeError, match="name 'linear_cka'.*BUILTIN_SIMILARITIES"):
        as_similarity("linear_cka")
    with pytest.raises(TypeError, match="got 3"):
        as_similarity(3)


def test_function_similarity_checks_output():
    x = rng().normal(size=(10, 3))
    assert FunctionSimilarity(lambda a, b: 0.25)(x, x) == 0.25
    with pytest.raises(ValueError, match="returned 1.5.*in \\[0, 1\\]"):
        FunctionSimilarity(lambda a, b: 1.5, name="bad")(x, x)
    with pytest.raises(ValueError, match="returned nan"):
        FunctionSimilarity(lambda a, b: float("nan"))(x, x)
    s = similarity_matrix(lambda a, b: 0.75, [[x, x]], [[x]])
    np.testing.assert_array_equal(s, [[0.75], [0.75]])


def test_subclass_plugin():
    class MeanAbsCorrelation(Similarity):
        name = "mean_abs_corr"

        def score(self, x, y):
            c = np.corrcoef(x.T, y.T)[: x.shape[1], x.shape[1] :]
            return float(np.mean(np.abs(c)))

    x, y = correlated(100, p=4, q=3)
    assert 0.0 < as_similarity(MeanAbsCorrelation)(x, y) < 1.0
    s = similarity_matrix(MeanAbsCorrelation(), batches([x], 25), batches([y], 25))
    assert s.shape == (1, 1)
