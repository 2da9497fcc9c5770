"""Property-based tests (hypothesis): the invariants of every registered
similarity metric, and of `select_units` against a brute force.

Examples are kept small (a few dozen per property, tiny matrices) so the file
runs in seconds on every backend; everything here is numpy.
"""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from keras_learngene import plugins, select_units
from keras_learngene.similarity import as_similarity

SETTINGS = settings(max_examples=40, deadline=None)

METRICS = plugins.registry("similarities").names()
# The metrics whose score(x, y) == score(y, x), and the CKAs (invariant to orthogonal
# transforms and isotropic scaling of either input).
SYMMETRIC = {"linear_cka", "linear_cka_debiased", "rbf_cka", "cosine"}
CKAS = {"linear_cka", "linear_cka_debiased", "rbf_cka"}


def metric(name):
    return as_similarity(plugins.get_similarity(name))


def _finite(shape):
    return hnp.arrays(np.float64, shape, elements=st.floats(
        -1e3, 1e3, allow_nan=False, allow_infinity=False, allow_subnormal=False))


@st.composite
def feature_pair(draw, same_width=False):
    """Two arbitrary finite feature matrices (n, p), (n, q) of the same n inputs,
    degenerate ones included (constant columns, repeated rows, zeros)."""
    n = draw(st.integers(4, 10))
    p = draw(st.integers(1, 5))
    q = p if same_width else draw(st.integers(1, 5))
    return draw(_finite((n, p))), draw(_finite((n, q)))


@st.composite
def well_conditioned(draw, same_width=False):
    """Gaussian features (n, p) and a correlated (n, q), from a drawn seed: numerically
    tame, so invariances hold to tight tolerances."""
    seed = draw(st.integers(0, 2**32 - 1))
    n, p = draw(st.integers(8, 30)), draw(st.integers(1, 6))
    q = p if same_width else draw(st.integers(1, 6))
    r = np.random.default_rng(seed)
    x = r.normal(size=(n, p)) * r.uniform(0.1, 10)
    y = x @ r.normal(size=(p, q)) + r.uniform(0, 2) * r.normal(size=(n, q))
    return x, y, r


def _requires_equal_widths(name):
    return name == "cosine"


# ---------------------------------------------------------------------------- similarity


@pytest.mark.parametrize("name", METRICS)
@SETTINGS
@given(data=st.data())
def test_every_metric_scores_in_the_unit_interval(name, data):
    x, y = data.draw(feature_pair(same_width=True))
    value = metric(name)(x, y)
    assert isinstance(value, float) and 0.0 <= value <= 1.0


@pytest.mark.parametrize("name", sorted(SYMMETRIC & set(METRICS)))
@SETTINGS
@given(data=st.data())
def test_symmetric_metrics_are_symmetric(name, data):
    x, y = data.draw(feature_pair(same_width=_requires_equal_widths(name)))
    m = metric(name)
    assert m(x, y) == pytest.approx(m(y, x), abs=1e-9)


@pytest.mark.parametrize("name", sorted(CKAS & set(METRICS)))
@SETTINGS
@given(data=st.data())
def test_cka_is_invariant_to_orthogonal_transforms_and_isotropic_scaling(name, data):
    x, y, r = data.draw(well_conditioned())
    m = metric(name)
    q_x = np.linalg.qr(r.normal(size=(x.shape[1], x.shape[1])))[0]
    q_y = np.linalg.qr(r.normal(size=(y.shape[1], y.shape[1])))[0]
    scale = data.draw(st.floats(1e-2, 1e2))
    base = m(x, y)
    assert m(x @ q_x, y) == pytest.approx(base, abs=1e-7)
    assert m(x, y @ q_y) == pytest.approx(base, abs=1e-7)
    assert m(scale * x, y) == pytest.approx(base, abs=1e-7)
    assert m(x, y / scale) == pytest.approx(base, abs=1e-7)


@pytest.mark.parametrize("name", sorted(CKAS & set(METRICS)))
@SETTINGS
@given(data=st.data())
def test_cka_of_a_representation_with_itself_is_one(name, data):
    x, _, r = data.draw(well_conditioned())
    q = np.linalg.qr(r.normal(size=(x.shape[1], x.shape[1])))[0]
    assert metric(name)(x, 2.5 * x @ q) == pytest.approx(1.0, abs=1e-7)


# ---------------------------------------------------------------------------- select_units


@st.composite
def selection_problem(draw, rule):
    """A similarity matrix S (L, D), a k the rule accepts, and a random junction test."""
    L, D = draw(st.integers(1, 6)), draw(st.integers(1, 5))
    k = draw(st.integers(1, min(L, D) if rule == "align" else L))
    S = draw(hnp.arrays(np.float64, (L, D), elements=st.floats(0, 1, allow_subnormal=False)))
    # ok[prev + 1, nxt]: row 0 is the stem (prev=None); mostly compatible
    ok = draw(hnp.arrays(np.bool_, (L + 1, L), elements=st.sampled_from([True, True, False])))
    return S, k, ok


def _compatible(ok):
    return lambda prev, nxt: bool(ok[0 if prev is None else prev + 1, nxt])


def _chain_fits(ok, chain):
    prevs = [None] + list(chain[:-1])
    return all(_compatible(ok)(p, n) for p, n in zip(prevs, chain))


def _best_total(S, k, ok, rule):
    """Brute force: the best total similarity over every valid chain, or None."""
    L, D = S.shape
    best_of_row = S.max(axis=1)
    totals = []
    for chain in itertools.combinations(range(L), k):
        if not _chain_fits(ok, chain):
            continue
        if rule == "window" and chain[-1] - chain[0] != k - 1:
            continue
        if rule == "align":
            totals += [S[list(chain), list(m)].sum()
                       for m in itertools.combinations(range(D), k)]
        else:
            totals.append(best_of_row[list(chain)].sum())
    return max(totals) if totals else None


@pytest.mark.parametrize("rule", ["align", "top_k", "window"])
@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_select_units_is_valid_and_optimal(rule, data):
    S, k, ok = data.draw(selection_problem(rule))
    best = _best_total(S, k, ok, rule)
    _check_selection(S, k, ok, rule, best)


def _check_selection(S, k, ok, rule, best):
    if best is None:
        with pytest.raises(ValueError, match="No chain"):
            select_units(S, k, rule, _compatible(ok))
        return
    indices, matches = select_units(S, k, rule, _compatible(ok))
    assert len(indices) == len(matches) == k
    assert all(isinstance(i, int) for i in indices + matches)
    assert all(a < b for a, b in zip(indices, indices[1:])), indices
    assert _chain_fits(ok, indices)
    assert all(0 <= j < S.shape[1] for j in matches)
    if rule == "align":
        assert all(a < b for a, b in zip(matches, matches[1:])), matches
        total = S[indices, matches].sum()
    else:
        assert all(S[i, j] == S[i].max() for i, j in zip(indices, matches))
        total = S[indices].max(axis=1).sum()
    if rule == "window":
        assert indices == list(range(indices[0], indices[0] + k))
    assert total == pytest.approx(best, abs=1e-9)


@pytest.mark.parametrize("rule", ["align", "top_k", "window"])
@SETTINGS
@given(data=st.data())
def test_select_units_without_a_junction_test_takes_any_chain(rule, data):
    S, k, _ = data.draw(selection_problem(rule))
    everything = np.ones((S.shape[0] + 1, S.shape[0]), bool)
    best = _best_total(S, k, everything, rule)
    assert best is not None
    indices, matches = select_units(S, k, rule)
    assert select_units(S, k, rule, _compatible(everything)) == (indices, matches)
    _check_selection(S, k, everything, rule, best)
