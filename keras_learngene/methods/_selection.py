"""Selection rules: which ancestry units a similarity or stability score picks.

Every rule returns increasing unit indices that *chain*: each unit's input
shape is the previous one's output shape (or the form can bridge the two),
so the learngene runs as one model. The rules are shared by the built-in
methods and open to plugin methods.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

SELECTIONS = ("align", "top_k", "window")


def chain_test(anatomy, form=None):
    """`ok(prev, nxt)`: whether unit `nxt` can follow unit `prev` (`None` is
    the stem): `prev`'s output shape is `nxt`'s input shape, or `form` can
    bridge the two with a fresh layer (`Form.bridge`)."""
    ins = [tuple(t.shape[1:]) for t in anatomy.unit_inputs]
    outs = [tuple(t.shape[1:]) for t in anatomy.unit_outputs]
    stem = tuple(anatomy.stem_output.shape[1:])
    bridgeable = {}

    def ok(prev, nxt):
        pair = (stem if prev is None else outs[prev], ins[nxt])
        if pair[0] == pair[1]:
            return True
        if form is not None and pair not in bridgeable:
            bridgeable[pair] = form.bridge(*pair, "bridge_probe") is not None
        return bridgeable.get(pair, False)

    return ok


def check_selection(rule, k, pseudo_depth=None):
    """Raises `ValueError` for an unknown rule, or an `align` that needs a
    deeper pseudo descendant; cheap, so methods call it before any work."""
    if rule not in SELECTIONS:
        raise ValueError(f"Unknown selection rule {rule!r}; one of {', '.join(SELECTIONS)}.")
    if rule == "align" and pseudo_depth is not None and k > pseudo_depth:
        raise ValueError(
            f"selection='align' matches each learngene unit to one of the pseudo descendant's "
            f"{pseudo_depth} units, so {k} units need a pseudo descendant of depth >= {k} "
            "(pseudo_depth)."
        )


def select_units(S: np.ndarray, k: int, rule: str = "align",
                 compatible: Callable[[int | None, int], bool] | None = None,
                 ) -> tuple[list[int], list[int]]:
    """Chooses `k` ancestry units from a score matrix.

    Args:
        S: `(L, D)` score of ancestry unit `i` against pseudo-descendant unit
            `j` (a similarity, or a learned pair weight).
        k: number of units to select.
        rule: `"align"` (default): the order-preserving alignment of `k`
            ancestry units to `k` pseudo-descendant units with the highest
            summed score, so each learngene unit plays the role of one
            descendant layer, in order; `"top_k"`: the `k` units with the
            highest best-match score; `"window"`: the contiguous run of
            `k` units with the highest summed best-match score.
        compatible: junction test `ok(prev, nxt)` (`prev=None`: the stem);
            default: every chain fits.

    Returns:
        `(indices, matches)`: the selected ancestry units in order, and for
            each the pseudo-descendant unit it matches.

    Raises:
        ValueError: unknown rule, impossible `k`, or no chain of `k` units.
    """
    S = np.asarray(S, dtype="float64")
    L, D = S.shape
    ok = compatible or (lambda prev, nxt: True)
    check_selection(rule, k)
    if not 1 <= k <= L:
        raise ValueError(f"Cannot select k={k} units out of {L}; choose 1 <= k <= {L}.")
    check_selection(rule, k, D)
    best = S.max(axis=1)
    if rule == "window":
        starts = [i for i in range(L - k + 1)
                  if ok(None, i) and all(ok(j, j + 1) for j in range(i, i + k - 1))]
        if not starts:
            raise ValueError(no_chain(k))
        start = max(starts, key=lambda i: best[i:i + k].sum())  # ties: the earliest
        path = [(i, int(np.argmax(S[i]))) for i in range(start, start + k)]
    else:
        # Dynamic programme over increasing chains; a state is (ancestry unit,
        # matched pseudo unit) and keeps its best path. For top_k the pseudo
        # index is free, so each unit is worth its best match.
        align = rule == "align"
        states = {}
        for i in range(L):
            if ok(None, i):
                for j in (range(D) if align else [int(np.argmax(S[i]))]):
                    states[(i, j)] = (S[i, j], [(i, j)])
        for _ in range(k - 1):
            grown = {}
            for (i, j), (value, path) in states.items():
                for i2 in range(i + 1, L):
                    if not ok(i, i2):
                        continue
                    for j2 in (range(j + 1, D) if align else [int(np.argmax(S[i2]))]):
                        candidate = value + S[i2, j2]
                        if (i2, j2) not in grown or candidate > grown[(i2, j2)][0] + 1e-12:
                            grown[(i2, j2)] = (candidate, path + [(i2, j2)])
            states = grown
        if not states:
            raise ValueError(no_chain(k))
        path = max(states.values(), key=lambda entry: entry[0] + 1e-9 * -entry[1][0][0])[1]
    return [int(i) for i, _ in path], [int(j) for _, j in path]


def most_stable_chain(instability, k, ok):
    """The `k` units of lowest `instability` that chain: units are taken in
    order of increasing instability, skipping any that would break the chain."""
    chosen = []
    for i in np.argsort(instability, kind="stable"):
        candidate = sorted(chosen + [int(i)])
        if all(ok(a, b) for a, b in zip([None] + candidate[:-1], candidate)):
            chosen = candidate
        if len(chosen) == k:
            return chosen
    raise ValueError(no_chain(k))


def no_chain(k):
    """The message for a selection that finds no chain of `k` units."""
    return (
        f"No chain of {k} units fits together after the stem (their shapes change between "
        "downsampling stages); choose a smaller num_units or another method."
    )
