"""Plots (matplotlib is an optional extra: `pip install keras-learngene[plots]`)."""


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


def plot_similarity(learngene, path):
    """Writes the condensing step's matrix as a PNG heatmap, with the selected
    ancestry units marked.

    For Auto Learngene the matrix is the similarity of ancestry units (rows)
    to pseudo-descendant units (columns); for Heur Learngene it is the
    above-threshold gradient fraction of each unit (columns) in each task (rows).

    Args:
        learngene: a `Learngene`.
        path: destination `.png` file.

    Returns:
        `path`.
    """
    import numpy as np

    p = learngene.provenance
    if not p.get("matrix"):
        raise ValueError(
            f"This learngene was condensed with method {p.get('method')!r}, which records no "
            "matrix to plot; condense with method 'auto' or 'heur'."
        )
    plt = _pyplot()
    matrix = np.asarray(p["matrix"])
    heur = p["method"] == "heur"
    fig, ax = plt.subplots(figsize=(1.2 + 0.55 * matrix.shape[1], 1.2 + 0.45 * matrix.shape[0]))
    image = ax.imshow(matrix, cmap="viridis", aspect="auto")
    fig.colorbar(image, ax=ax, label="gradient fraction" if heur else p.get("similarity", ""))
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if matrix[i, j] < matrix.mean() else "black")
    if heur:
        ax.set(xlabel="ancestry unit", ylabel="task")
        for i in p["source_units"]:
            ax.axvline(i, color="red", lw=2, alpha=0.6)
    else:
        ax.set(xlabel="pseudo-descendant unit", ylabel="ancestry unit")
        for i, j in zip(p["source_units"], p.get("matches") or []):
            ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="red", lw=2))
    ax.set_title(f"{p['method']} learngene: units {p['source_units']}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
