"""The benchmark's statistics, in numpy: deterministic, no scipy or scikit-learn.

- `log_checkpoints`: log-spaced evaluation steps of a run;
- `plateau`: the plateau rule (on validation accuracy, never the test set);
- `interval` / `ratio_interval`: 95% Student-t intervals of paired differences
  (and of ratios, through their logarithms);
- `ridge_probe`: a linear probe (closed-form ridge regression on one-hot
  targets, its penalty chosen on the validation images).
"""

import math

import numpy as np

# Student-t 0.975 quantiles for 1..30 degrees of freedom (two-sided 95%).
_T975 = (12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
         2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
         2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423)
_Z975 = 1.959964


def t_quantile(df):
    """The 0.975 quantile of Student's t with `df` degrees of freedom (a table
    to 30, then the Cornish-Fisher expansion, exact to 1e-4)."""
    if df < 1:
        raise ValueError(f"df must be >= 1, got {df}.")
    if df <= 30:
        return _T975[int(df) - 1]
    z = _Z975
    return (z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)
            + (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / (384 * df ** 3))


def interval(values):
    """Mean and 95% t interval of paired differences (one value per task).

    Returns:
        `{"mean", "low", "high", "n"}`; `low` and `high` are None for n < 2
        (no interval: no claim can rest on it).
    """
    values = np.asarray([v for v in values if v is not None], dtype=float)
    n = int(values.size)
    if n == 0:
        return {"mean": None, "low": None, "high": None, "n": 0}
    mean = float(values.mean())
    if n < 2:
        return {"mean": mean, "low": None, "high": None, "n": n}
    half = t_quantile(n - 1) * float(values.std(ddof=1)) / math.sqrt(n)
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": n}


def ratio_interval(numerators, denominators):
    """Geometric-mean ratio and its 95% interval, from the t interval of the
    paired log ratios; pairs with a zero or missing side are left out."""
    logs = [math.log(a / b) for a, b in zip(numerators, denominators)
            if a is not None and b is not None and a > 0 and b > 0]
    result = interval(logs)
    return {key: (math.exp(v) if key != "n" and v is not None else v)
            for key, v in result.items()}


def clears(result, target, above=True):
    """Whether an interval clears a target: its low end above it (or its high
    end below it); False without an interval."""
    bound = result.get("low" if above else "high")
    if bound is None:
        return False
    return bound > target if above else bound < target


def log_checkpoints(steps, count=12, first_fraction=0.02):
    """`count` log-spaced steps from `first_fraction * steps` (at least 1) to
    `steps`, rounded, duplicates removed (fewer when the budget is tiny)."""
    first = max(1, round(first_fraction * steps))
    points = np.geomspace(first, steps, count)
    return tuple(int(s) for s in dict.fromkeys(np.round(points).astype(int).tolist()))


def plateau(checkpoints, tol=0.01, val_examples=None):
    """The plateau rule, on validation accuracy (never the test set).

    The plateau step is the first checkpoint whose validation accuracy is
    within `tol` (or one validation image, if that is more) of the best
    validation accuracy of the run. The plateau accuracy is the mean test
    accuracy over the checkpoints from that step on. The run reached its
    plateau if that step is not the last checkpoint (otherwise it was still
    rising: the budget was too short).

    Args:
        checkpoints: `[{"step", "accuracy" (test), "val_accuracy"}, ...]`.
        tol: tolerance, a fraction (0.01: one point).
        val_examples: validation images per checkpoint (sets the one-image floor).

    Returns:
        `{"step", "accuracy", "val_accuracy", "tol", "reached"}`.
    """
    if not checkpoints:
        return None
    if val_examples:
        tol = max(tol, 1.0 / val_examples)
    val = np.array([c["val_accuracy"] for c in checkpoints], dtype=float)
    test = np.array([c["accuracy"] for c in checkpoints], dtype=float)
    i = int(np.flatnonzero(val >= val.max() - tol - 1e-12)[0])
    return {"step": int(checkpoints[i]["step"]), "accuracy": float(test[i:].mean()),
            "val_accuracy": float(val[i:].mean()), "tol": float(tol),
            "reached": i < len(checkpoints) - 1}


def steps_to_reach(checkpoints, threshold):
    """The first checkpoint step whose test accuracy reaches `threshold`, or None."""
    for c in checkpoints:
        if c["accuracy"] >= threshold - 1e-9:
            return int(c["step"])
    return None


# ------------------------------------------------------------------ linear probe
_PENALTIES = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)


def _fit_ridge(x, y_onehot, penalties):
    """Ridge weights for each penalty (relative to the mean squared row norm),
    in the primal or the dual form, whichever matrix is smaller."""
    mean_x, mean_y = x.mean(0), y_onehot.mean(0)
    xc, yc = x - mean_x, y_onehot - mean_y
    scale = float((xc ** 2).sum(1).mean()) or 1.0
    n, d = xc.shape
    out = []
    if d <= n:
        s, v = np.linalg.eigh(xc.T @ xc)
        xty = v.T @ (xc.T @ yc)
        for lam in penalties:
            w = v @ (xty / (s + lam * scale)[:, None])
            out.append((w, mean_y - mean_x @ w))
    else:
        s, v = np.linalg.eigh(xc @ xc.T)
        vty = v.T @ yc
        for lam in penalties:
            w = xc.T @ (v @ (vty / (s + lam * scale)[:, None]))
            out.append((w, mean_y - mean_x @ w))
    return out


def ridge_probe(x_train, y_train, x_val, y_val, x_test, y_test, num_classes=None):
    """A linear classifier by closed-form ridge regression on one-hot targets,
    its penalty chosen on the validation set (ties: the larger penalty).

    Features are flattened; nothing is standardised (the penalty is relative
    to the mean squared norm of the centred training rows).

    Returns:
        `{"accuracy": test accuracy, "val_accuracy", "penalty"}`.
    """
    def flat(a):
        return np.asarray(a, dtype=np.float64).reshape(len(a), -1)

    x_train, x_val, x_test = flat(x_train), flat(x_val), flat(x_test)
    y_train, y_val, y_test = (np.asarray(y, dtype=np.int64) for y in (y_train, y_val, y_test))
    c = num_classes or int(max(y_train.max(), y_val.max(initial=0), y_test.max(initial=0))) + 1
    fits = _fit_ridge(x_train, np.eye(c)[y_train], _PENALTIES)
    scores = [float(np.mean(np.argmax(x_val @ w + b, 1) == y_val)) if len(y_val) else 0.0
              for w, b in fits]
    best = max(range(len(fits)), key=lambda i: (scores[i], i))
    w, b = fits[best]
    return {"accuracy": float(np.mean(np.argmax(x_test @ w + b, 1) == y_test)),
            "val_accuracy": scores[best], "penalty": _PENALTIES[best]}
