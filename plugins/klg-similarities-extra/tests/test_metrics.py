"""Tests for klg-similarities-extra: the metrics against independent computations, their
invariances, and the plugin's discovery through keras-learngene's entry points."""

import importlib.metadata

import klg_similarities_extra
import numpy as np
import pytest
import scipy.linalg
from klg_similarities_extra import PWCCA, SVCCA, OrthogonalProcrustes, canonical_correlations
from klg_similarities_extra import plugin as extra_plugin

from keras_learngene import plugins
from keras_learngene.similarity import Similarity, similarity_matrix

METRICS = {"svcca": SVCCA, "pwcca": PWCCA, "procrustes": OrthogonalProcrustes}
ALL = sorted(METRICS)
DIST = "klg-similarities-extra"
EP_NAME = "similarities_extra"


def rng(seed=0):
    return np.random.default_rng(seed)


def orthogonal(p, seed=1):
    return np.linalg.qr(rng(seed).normal(size=(p, p)))[0]


def correlated(n=600, p=10, q=7, seed=0):
    """x with a clear spectrum (6 strong directions, 4 weak ones) and a noisy y built from
    x's strong directions, so the SVD step of SVCCA keeps exactly 6 directions of x."""
    r = rng(seed)
    z = r.normal(size=(n, p))
    scales = np.array([10.0, 8.0, 6.0, 5.0, 4.0, 3.0, 0.05, 0.04, 0.03, 0.02])[:p]
    x = (z * scales) @ orthogonal(p, seed + 1) + 3.0
    y = np.tanh(z[:, :6] @ r.normal(size=(6, q))) + 0.3 * r.normal(size=(n, q))
    return x, y


def installed():
    try:
        importlib.metadata.distribution(DIST)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


needs_install = pytest.mark.skipif(
    not installed(), reason=f"{DIST} is not installed: pip install ./plugins/{DIST}"
)


# ---------------------------------------------------------------------------- references
# Written independently of the package: covariance eigendecompositions and scipy's
# principal angles / Procrustes solver instead of the package's SVD-of-data route.


def centered(a):
    return a - a.mean(axis=0)


def ref_canonical_correlations(x, y):
    """Cosines of the principal angles between the centered column spaces, descending."""
    return np.sort(np.cos(scipy.linalg.subspace_angles(centered(x), centered(y))))[::-1]


def ref_svcca(x, y, keep=0.99):
    def top(a):
        ac = centered(a)
        w, v = np.linalg.eigh(ac.T @ ac)
        w, v = w[::-1], v[:, ::-1]
        k = int(np.argmax(np.cumsum(w) / w.sum() >= keep - 1e-12)) + 1
        return ac @ v[:, :k]

    tx, ty = top(x), top(y)
    return np.mean(np.cos(scipy.linalg.subspace_angles(tx, ty))), tx.shape[1], ty.shape[1]


def ref_pwcca(x, y):
    """Morcos et al.'s PWCCA from the covariance formulation of CCA."""
    xc, yc = centered(x), centered(y)

    def inv_sqrt(c):
        w, v = np.linalg.eigh(c)
        return (v / np.sqrt(w)) @ v.T

    ixx, iyy = inv_sqrt(xc.T @ xc), inv_sqrt(yc.T @ yc)
    u, rho, _ = np.linalg.svd(ixx @ (xc.T @ yc) @ iyy)
    k = min(x.shape[1], y.shape[1])
    h = xc @ (ixx @ u[:, :k])  # canonical variates of x, unit norm
    np.testing.assert_allclose(np.linalg.norm(h, axis=0), 1.0, rtol=1e-8)
    alpha = np.abs(h.T @ xc).sum(axis=1)
    return np.sum(alpha * rho[:k]) / np.sum(alpha)


def ref_procrustes(x, y):
    """1 - min_R ||x R - y||_F^2 / 2 over orthogonal R, on centered, unit-norm inputs
    (the narrower one zero-padded), solved by scipy."""
    xn, yn = centered(x), centered(y)
    xn, yn = xn / np.linalg.norm(xn), yn / np.linalg.norm(yn)
    width = max(xn.shape[1], yn.shape[1])
    xn = np.pad(xn, ((0, 0), (0, width - xn.shape[1])))
    yn = np.pad(yn, ((0, 0), (0, width - yn.shape[1])))
    r, _ = scipy.linalg.orthogonal_procrustes(xn, yn)
    distance = np.linalg.norm(xn @ r - yn) ** 2
    return 1.0 - distance / 2.0


# ---------------------------------------------------------------------------- values


def test_canonical_correlations_match_principal_angles():
    x, y = correlated()
    np.testing.assert_allclose(
        canonical_correlations(x, y), ref_canonical_correlations(x, y), atol=1e-10
    )


def test_first_canonical_correlation_matches_sklearn():
    cross_decomposition = pytest.importorskip("sklearn.cross_decomposition")
    x, y = correlated(seed=3)
    cca = cross_decomposition.CCA(n_components=1, scale=False, max_iter=10_000, tol=1e-14)
    xs, ys = cca.fit(x, y).transform(x, y)
    expected = abs(np.corrcoef(xs[:, 0], ys[:, 0])[0, 1])
    assert canonical_correlations(x, y)[0] == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("keep", [0.99, 0.9, 1.0])
def test_svcca_matches_independent_computation(keep):
    x, y = correlated(seed=1)
    expected, kx, _ = ref_svcca(x, y, keep)
    if keep == 0.99:
        assert kx == 6  # the SVD step really drops x's weak directions
    assert SVCCA(keep_variance=keep)(x, y) == pytest.approx(expected, abs=1e-10)


def test_svcca_drops_low_variance_noise():
    # A strong shared signal plus weak independent noise directions: plain CCA averages
    # the noise correlations in, SVCCA does not.
    x, y = correlated(seed=2)
    assert SVCCA()(x, y) > SVCCA(keep_variance=1.0)(x, y)


@pytest.mark.parametrize("seed", [0, 1])
def test_pwcca_matches_covariance_formulation(seed):
    x, y = correlated(seed=seed)
    assert PWCCA()(x, y) == pytest.approx(ref_pwcca(x, y), abs=1e-8)
    assert PWCCA()(y, x) == pytest.approx(ref_pwcca(y, x), abs=1e-8)


def test_pwcca_weights_favour_x_dominant_directions():
    # The canonical correlations of (x, y) and (y, x) are the same; the weights are not.
    x, y = correlated(seed=4)
    mean_cca = np.mean(canonical_correlations(x, y))
    assert PWCCA()(x, y) != pytest.approx(PWCCA()(y, x), abs=1e-3)
    assert PWCCA()(x, y) != pytest.approx(mean_cca, abs=1e-3)


@pytest.mark.parametrize("q", [10, 7, 13])
def test_procrustes_matches_scipy_orthogonal_procrustes(q):
    x, _ = correlated(seed=5)
    y = np.tanh(x @ rng(6).normal(size=(x.shape[1], q)) / 5) + 0.2 * rng(7).normal(size=(len(x), q))
    assert OrthogonalProcrustes()(x, y) == pytest.approx(ref_procrustes(x, y), abs=1e-10)
    assert OrthogonalProcrustes()(y, x) == pytest.approx(ref_procrustes(x, y), abs=1e-10)


def test_procrustes_wide_features():
    # More features than examples: computed on n columns, the value must not change.
    r = rng(8)
    x = r.normal(size=(40, 300))
    y = x[:, :200] + 0.5 * r.normal(size=(40, 200))
    assert OrthogonalProcrustes()(x, y) == pytest.approx(ref_procrustes(x, y), abs=1e-10)


# ---------------------------------------------------------------------------- properties


@pytest.mark.parametrize("name", ALL)
def test_identical_inputs_score_one(name):
    x, _ = correlated(seed=9)
    assert METRICS[name]()(x, x) == pytest.approx(1.0, abs=1e-10)


@pytest.mark.parametrize("name", ALL)
def test_orthogonal_copy_scores_one(name):
    x = rng(10).normal(size=(500, 12))
    assert METRICS[name]()(x, 2.5 * x @ orthogonal(12, 11) - 1.0) == pytest.approx(1.0, abs=1e-10)


@pytest.mark.parametrize("name", ["svcca", "procrustes"])
def test_invariant_to_orthogonal_transforms_scaling_and_translation(name):
    x, y = correlated(seed=12)
    metric = METRICS[name]()
    base = metric(x, y)
    moved_x = 0.01 * x @ orthogonal(x.shape[1], 13) + 7.0
    moved_y = 40.0 * y @ orthogonal(y.shape[1], 14) - 2.0
    assert metric(moved_x, moved_y) == pytest.approx(base, abs=1e-10)
    assert metric(y, x) == pytest.approx(base, abs=1e-10)  # symmetric


def test_pwcca_invariances():
    x, y = correlated(seed=15)
    base = PWCCA()(x, y)
    r = rng(16)
    signed_permutation = np.eye(x.shape[1])[r.permutation(x.shape[1])] * r.choice(
        [-1.0, 1.0], size=x.shape[1]
    )
    moved_x = 0.01 * x @ signed_permutation + 7.0
    moved_y = 40.0 * y @ orthogonal(y.shape[1], 17) - 2.0
    assert PWCCA()(moved_x, moved_y) == pytest.approx(base, abs=1e-10)
    # Any invertible map of y leaves the CCA subspace of y, hence the score, unchanged.
    invertible = r.normal(size=(y.shape[1], y.shape[1])) + 3 * np.eye(y.shape[1])
    assert PWCCA()(x, y @ invertible) == pytest.approx(base, abs=1e-8)


@pytest.mark.parametrize("name", ALL)
def test_independent_inputs_score_low(name):
    r = rng(18)
    x, y = r.normal(size=(5000, 8)), r.normal(size=(5000, 6))
    assert 0.0 <= METRICS[name]()(x, y) < 0.1


@pytest.mark.parametrize("name", ALL)
def test_shared_signal_scores_higher_than_independent(name):
    x, y = correlated(seed=19)
    independent = rng(20).normal(size=y.shape)
    assert METRICS[name]()(x, y) > METRICS[name]()(x, independent) + 0.2


@pytest.mark.parametrize("name", ALL)
def test_constant_input_scores_zero(name):
    x = rng(21).normal(size=(100, 5))
    assert METRICS[name]()(x, np.full((100, 3), 4.2)) == 0.0
    assert METRICS[name]()(np.zeros((100, 5)), x) == 0.0


@pytest.mark.parametrize("name", ALL)
def test_float32_and_lists_accepted(name):
    x, y = correlated(seed=22)
    value = METRICS[name]()(x.astype(np.float32).tolist(), y.astype(np.float32))
    assert value == pytest.approx(METRICS[name]()(x, y), abs=1e-4)


def test_rank_deficient_inputs():
    # Dead (constant) and duplicated units add no dimensions: the CCA metrics see the
    # same column space, and more features than examples are fine while the rank is low.
    r = rng(23)
    a = r.normal(size=(60, 5))
    y = a @ r.normal(size=(5, 4)) + 0.5 * r.normal(size=(60, 4))
    wide = np.hstack([a, a @ r.normal(size=(5, 95)), np.zeros((60, 20))])  # 120 features
    np.testing.assert_allclose(
        canonical_correlations(wide, y), canonical_correlations(a, y), atol=1e-8
    )
    for metric in (SVCCA(keep_variance=1.0), PWCCA()):
        value = metric(wide, y)
        assert 0.0 < value <= 1.0
    assert SVCCA(keep_variance=1.0)(wide, y) == pytest.approx(
        SVCCA(keep_variance=1.0)(a, y), abs=1e-8
    )


@pytest.mark.parametrize("name", ["svcca", "pwcca"])
def test_too_few_examples_raise(name):
    r = rng(24)
    x, y = r.normal(size=(50, 30)), r.normal(size=(50, 30))
    with pytest.raises(ValueError, match=r"probe examples.*linear_cka"):
        METRICS[name]()(x, y)
    with pytest.raises(ValueError, match="more than 60 probe examples"):
        METRICS[name](**({"keep_variance": 1.0} if name == "svcca" else {}))(x, y)
    # More features than examples is always degenerate.
    with pytest.raises(ValueError, match="probe examples"):
        METRICS[name]()(r.normal(size=(20, 40)), r.normal(size=(20, 2)))


def test_procrustes_needs_no_more_examples_than_features():
    r = rng(25)
    assert 0.0 <= OrthogonalProcrustes()(r.normal(size=(10, 50)), r.normal(size=(10, 30))) <= 1


@pytest.mark.parametrize(
    "kwargs", [{"keep_variance": 0.0}, {"keep_variance": 1.5}, {"rank_tol": -1.0}]
)
def test_svcca_bad_arguments(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        SVCCA(**kwargs)


def test_pwcca_bad_arguments():
    with pytest.raises(ValueError, match="rank_tol"):
        PWCCA(rank_tol=float("nan"))


@pytest.mark.parametrize("name", ALL)
def test_is_a_similarity_with_config_round_trip(name):
    metric = METRICS[name]()
    assert isinstance(metric, Similarity)
    assert metric.name == name
    clone = type(metric)(**metric.get_config())
    x, y = correlated(seed=26)
    assert clone(x, y) == metric(x, y)
    assert "arxiv.org/abs/" in type(metric).__doc__


@pytest.mark.parametrize("name", ALL)
def test_accumulator_matches_full_batch(name):
    x, y = correlated(n=300, seed=27)
    xs_batches = [[x[i : i + 64], x[i : i + 64] ** 2] for i in range(0, 300, 64)]
    ys_batches = [[y[i : i + 64]] for i in range(0, 300, 64)]
    s = similarity_matrix(METRICS[name](), xs_batches, ys_batches)
    assert s.shape == (2, 1)
    metric = METRICS[name]()
    np.testing.assert_allclose(s[:, 0], [metric(x, y), metric(x**2, y)], atol=1e-12)


# ---------------------------------------------------------------------------- the plugin


@pytest.fixture
def fresh_plugins(monkeypatch):
    """The plugin manager as in a new process (only the built-ins registered, nothing
    loaded yet); the previous state comes back afterwards.

    Uses the manager's private `pm` and `_state`; a public reset in the core would do.
    """
    state = plugins._state
    saved_state = {k: (dict(v) if isinstance(v, dict) else v) for k, v in state.items()}
    saved_plugins = {plugins.pm.get_name(p): p for p in plugins.pm.get_plugins()}

    def reset():
        for name in [plugins.pm.get_name(p) for p in plugins.pm.get_plugins()]:
            if name not in plugins.DEFAULT_PLUGINS:
                plugins.pm.unregister(name=name)
        for key, value in state.items():
            if isinstance(value, dict):
                value.clear()
            elif isinstance(value, bool):
                state[key] = False

    monkeypatch.delenv("KLG_LOAD_PLUGINS", raising=False)
    reset()
    yield plugins
    reset()
    for name, plugin in saved_plugins.items():
        if plugins.pm.get_plugin(name) is None:
            plugins.pm.register(plugin, name=name)
    for key, value in saved_state.items():
        if isinstance(value, dict):
            state[key].clear()
            state[key].update(value)
        else:
            state[key] = value


def collect_registrations():
    registered = {}
    extra_plugin.register_similarities(register=lambda name, obj: registered.setdefault(name, obj))
    return registered


def test_hook_registers_the_three_metrics():
    registered = collect_registrations()
    assert sorted(registered) == ALL
    for name, obj in registered.items():
        assert issubclass(obj, Similarity) and obj.name == name


def test_registered_by_hand_without_entry_points(fresh_plugins, monkeypatch):
    monkeypatch.setenv("KLG_LOAD_PLUGINS", "")  # no installed plugin loads
    assert "svcca" not in fresh_plugins.registry("similarities").names()
    fresh_plugins.register_plugin(extra_plugin, name="extra_by_hand")
    reg = fresh_plugins.registry("similarities")
    assert set(ALL) <= set(reg.names())
    assert {"linear_cka", "rbf_cka", "cosine"} <= set(reg.names())
    assert reg.plugin_of("pwcca") == "extra_by_hand"
    x, y = correlated(seed=28)
    assert fresh_plugins.get_similarity("pwcca")(x, y) == PWCCA()(x, y)


@needs_install
def test_entry_point_is_installed():
    eps = importlib.metadata.entry_points(group=plugins.ENTRY_POINT_GROUP)
    assert EP_NAME in eps.names
    (ep,) = [ep for ep in eps if ep.name == EP_NAME]
    assert ep.value == "klg_similarities_extra.plugin"
    assert ep.load().register_similarities is extra_plugin.register_similarities
    assert importlib.metadata.version(DIST) == klg_similarities_extra.__version__


@needs_install
def test_discovered_when_klg_load_plugins_is_unset(fresh_plugins):
    reg = fresh_plugins.registry("similarities")
    assert set(ALL) <= set(reg.names()), fresh_plugins.plugin_errors()
    for name in ALL:
        assert reg.plugin_of(name) == EP_NAME
        assert isinstance(reg.get(name), METRICS[name])
    assert EP_NAME not in fresh_plugins.plugin_errors()
    (row,) = [r for r in fresh_plugins.describe_plugins() if r["name"] == EP_NAME]
    assert row["similarities"] == ALL
    assert row["version"] == klg_similarities_extra.__version__


@needs_install
@pytest.mark.parametrize("allow, loaded", [("", False), (EP_NAME, True), ("other", False)])
def test_klg_load_plugins_selects_the_plugin(fresh_plugins, monkeypatch, allow, loaded):
    monkeypatch.setenv("KLG_LOAD_PLUGINS", allow)
    names = fresh_plugins.registry("similarities").names()
    assert ("svcca" in names) is loaded
    assert "linear_cka" in names  # the built-ins always load


@needs_install
def test_get_similarity_gives_the_same_number_as_the_metric(fresh_plugins):
    x, y = correlated(seed=29)
    for name in ALL:
        assert fresh_plugins.get_similarity(name)(x, y) == METRICS[name]()(x, y)
    direct = OrthogonalProcrustes()(x, y)
    assert fresh_plugins.get_similarity("procrustes")(x, y) == direct
    assert direct == pytest.approx(ref_procrustes(x, y), abs=1e-10)
