"""Draws the family page's figure from the family run's committed records.

    python scripts/family_figure.py [RESULTS] [PNG]

RESULTS defaults to docs/results/family (its runs.jsonl and meta.json), PNG to
docs/images/family_minus_scratch.png. The numbers are the report's own
(`keras_learngene.bench._report2.summarize`, the `vs_scratch` entries): each
method's paired plateau-accuracy difference from scratch, in points, with its 95%
t-interval over the episodes, pooled over K. docs/family.md's table shows the same
numbers; tests/test_docs.py runs this script and checks the page shows its PNG.
"""

import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results" / "family"
PNG = ROOT / "docs" / "images" / "family_minus_scratch.png"
# The page's table order; probes are not condensing methods and are left out.
METHODS = ("front", "auto", "auto_distill", "tleg", "sws", "heur", "random")


def differences(results=RESULTS):
    """`{arch title: [(method title, mean, low, high) or (method title, None...)]}`."""
    from keras_learngene.bench import _report2

    records = [json.loads(line) for line in
               (results / "runs.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    meta = json.loads((results / "meta.json").read_text(encoding="utf-8"))
    summary = _report2.summarize(records, meta)
    out = {}
    for key, group in summary["archs"].items():
        rows = []
        for m in METHODS:
            v = group["vs_scratch"].get(m, {}).get("pooled")
            rows.append((_report2._name(m), *(
                (v["mean"], v["low"], v["high"]) if v else (None, None, None))))
        out[_report2._group_name(key)] = rows
    return out


def draw(diffs, path=PNG):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 11, "svg.hashsalt": "klg", "path.simplify": False})
    fig, axes = plt.subplots(1, len(diffs), figsize=(4.2 * len(diffs), 3.6), sharey=True)
    axes = list(getattr(axes, "flat", [axes]))
    for ax, (title, rows) in zip(axes, diffs.items()):
        ys = list(range(len(rows)))[::-1]
        for y, (_name, mean, low, high) in zip(ys, rows):
            if mean is None:
                ax.text(0.03, y, "not run on this ancestry", va="center", fontsize=9,
                        color="grey", transform=ax.get_yaxis_transform())
                continue
            color = "C0" if low > 0 else ("C3" if high < 0 else "grey")
            ax.errorbar([mean], [y], xerr=[[mean - low], [high - mean]], fmt="o",
                        color=color, capsize=4, ms=6)
        ax.axvline(0, color="black", lw=1)
        ax.set_yticks(ys, [name for name, *_ in rows])
        ax.set_title(title)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle("Each method minus scratch, paired over the same episodes (95% intervals)",
                 fontsize=11)
    fig.supxlabel("plateau test accuracy minus scratch's (points), pooled over K", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
    return path


def main(argv):
    results = pathlib.Path(argv[0]) if argv else RESULTS
    path = pathlib.Path(argv[1]) if len(argv) > 1 else PNG
    print(draw(differences(results), path))


if __name__ == "__main__":
    main(sys.argv[1:])
