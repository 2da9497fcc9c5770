"""Plots (matplotlib is an optional extra: `pip install keras-learngene[plots]`)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from keras_learngene.learngene import Learngene


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "Plotting needs matplotlib: pip install 'keras-learngene[plots]'."
        ) from exc
    return plt


def heatmap_figure(spec, title):
    """A matplotlib figure of a method's recorded heatmap (see
    `keras_learngene.methods.heatmap`): the matrix, its values, the chosen
    cells outlined and the chosen columns marked. Returns `(plt, fig)`."""
    import numpy as np

    plt = _pyplot()
    matrix = np.asarray(spec["matrix"], dtype=float)
    rows, cols = matrix.shape
    fig, ax = plt.subplots(figsize=(max(4.8, 2.2 + 0.6 * cols), max(3.2, 1.4 + 0.45 * rows)))
    image = ax.imshow(matrix, cmap="viridis", aspect="auto")
    fig.colorbar(image, ax=ax, label=spec.get("colorbar") or "")
    ax.set_xticks(range(cols))
    ax.set_yticks(range(rows))
    if matrix.size <= 256:
        for (i, j), value in np.ndenumerate(matrix):
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if value < matrix.mean() else "black")
    for i, j in spec.get("boxes") or []:
        ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="red", lw=2))
    for c in spec.get("columns") or []:
        ax.axvline(c, color="red", lw=2, alpha=0.6)
    ax.set(xlabel=spec.get("xlabel", ""), ylabel=spec.get("ylabel", ""))
    ax.set_title(spec.get("title") or title, fontsize=9, wrap=True)
    fig.tight_layout()
    return plt, fig


def plot_similarity(learngene: Learngene, path: str | os.PathLike) -> str | os.PathLike:
    """Writes the matrix a learngene's method recorded (its `heatmap`
    provenance) as a PNG, with the chosen units marked.

    For Auto Learngene it is the similarity of ancestry units (rows) to
    pseudo-descendant units (columns); for Heur Learngene the above-threshold
    gradient fraction of each unit (columns) in each task (rows); a plugin
    method records its own.

    Args:
        learngene: a `Learngene`.
        path: destination `.png` file.

    Returns:
        `path`.
    """
    p = learngene.provenance
    spec = p.get("heatmap")
    if not spec:
        raise ValueError(
            f"This learngene was condensed with method {p.get('method')!r}, which records no "
            "matrix to plot; condense with a method that measures units, such as 'auto' or "
            "'heur'."
        )
    plt, fig = heatmap_figure(spec, f"{p['method']} learngene: units {p['source_units']}")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
