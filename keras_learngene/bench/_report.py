"""The benchmark report: the raw records of `klg bench` as Markdown and plots.

`klg bench` appends one JSON line per finished training run to `runs.jsonl`
and keeps the context of the benchmark in `meta.json` (profile, command,
machine, ancestries, condensing, cost figures). This module reads them back
and measures, per architecture, the four claims made for a descendant built
from a learngene (Auto Learngene, method "auto") against the same
architecture trained from scratch:

1. converge faster: the first checkpoint at which the mean-over-seeds accuracy
   reaches 99% of scratch's final mean accuracy, against the step budget;
2. less sensitive: the spread (std and range) of the final accuracy over the
   learning-rate x batch-size grid, against scratch's;
3. perform better: the final accuracy at the default hyperparameters, per K,
   against scratch and the front-k, back-k and weight-selection baselines;
4. fewer samples: the margin over scratch at the smallest K, and the smallest
   K at which a method matches scratch's accuracy at the largest K.

Each claim gets a verdict, "holds" or "does not hold" with the measured
margin, against `TARGETS`; whatever was not measured says "not measured".
Means and standard deviations are over seeds (`np.std`, ddof=0). In the
summary, accuracies are fractions, fields ending in `_points` are percentage
points, and K keys are strings (so the summary round-trips through JSON).
"""

import json
import math
import warnings
from pathlib import Path

import numpy as np

from keras_learngene import plotting

TARGETS = {
    "reach_fraction": 0.99,  # 1. accuracy to reach, as a fraction of scratch's final one
    "step_fraction": 1 / 6,  # 1. ...within this fraction of the step budget, at most
    "sensitivity_ratio": 1 / 3,  # 2. auto's std over the grid / scratch's, at most
    "better_points": 0.0,  # 3. auto minus each other method at every K, at least
    "few_shot_points": 15.0,  # 4. auto minus scratch at the smallest K, at least
    "samples_shots": 50,  # 4. K at which auto matches scratch's largest-K accuracy, at most
    "condense_epochs": 1.0,  # cost: condensing time in ancestry epochs, at most
    "overhead_percent": 3.0,  # cost: library throughput below plain Keras, at most
}
BASELINES = ("front", "back", "weight_selection")
NOT_MEASURED = "not measured"
# display names: the benchmark's own baselines; a method's title comes from
# the registry (recorded in meta.json by the runner), else its name
METHOD_NAMES = {"scratch": "scratch", "ancestry": "whole ancestry (fine-tuned)"}
ARCH_NAMES = {"vit": "ViT", "cnn": "CNN"}
_EPS = 1e-9  # float slack when an accuracy is compared with a threshold
_DPI = 110


# ------------------------------------------------------------------ input
def load_records(out_dir):
    """Reads `out_dir/runs.jsonl`: one dict per finished run ([] if none yet).

    Blank lines are skipped; a corrupt last line (a write cut short by an
    interrupted benchmark) is ignored with a warning; a corrupt line elsewhere
    raises `ValueError`.
    """
    path = Path(out_dir) / "runs.jsonl"
    if not path.is_file():
        return []
    lines = [(i, line) for i, line in enumerate(path.read_text().splitlines(), 1)
             if line.strip()]
    records = []
    for n, (i, line) in enumerate(lines, 1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            if n < len(lines):
                raise ValueError(f"{path}, line {i}: not a JSON record ({exc}).") from exc
            warnings.warn(f"{path}, line {i}: ignoring a truncated last record.", stacklevel=2)
    return records


def _load_meta(out_dir):
    path = Path(out_dir) / "meta.json"
    if not path.is_file():
        warnings.warn(f"{path} is missing; the report says 'not measured' for its parts.",
                      stacklevel=3)
        return {}
    return json.loads(path.read_text())


# ------------------------------------------------------------------ numbers
def summarize(records, meta):
    """Every number of the report, as a JSON-serializable dict.

    Args:
        records: the runs, as returned by `load_records`.
        meta: the content of `meta.json` (any part may be missing).

    Returns:
        A dict with `header`, `targets`, `steps` (the step budget), per-arch
        `ancestries`, `condense`, `cost` and `archs` (the four claims'
        numbers and verdicts), and `claims` (the rows of the summary table).
    """
    profile = meta.get("profile") or {}
    if _version(meta) >= 2:
        from keras_learngene.bench import _report2

        return _report2.summarize(records, meta)
    METHOD_NAMES.update({m: v["title"] for m, v in (meta.get("methods") or {}).items()})
    steps = profile.get("steps") or max((r.get("steps", 0) for r in records), default=None)
    archs = _ordered(profile.get("archs") or list(profile.get("ancestries") or {}),
                     {r["arch"] for r in records}, keep_all=True)
    per_arch = {arch: _summarize_arch([r for r in records if r["arch"] == arch], profile, steps)
                for arch in archs}
    return {
        "header": _header(meta, records),
        "targets": dict(TARGETS),
        "steps": steps,
        "ancestries": {arch: (meta.get("ancestries") or {}).get(arch) for arch in archs},
        "condense": {arch: _condense((meta.get("condense") or {}).get(arch)) for arch in archs},
        "cost": {arch: _cost((meta.get("cost") or {}).get(arch)) for arch in archs},
        "archs": per_arch,
        "claims": _claims(per_arch, steps),
    }


def _ordered(preferred, present, keep_all=False):
    """`preferred`'s order first (only those present unless `keep_all`), then the rest."""
    preferred = list(preferred or [])
    first = preferred if keep_all else [x for x in preferred if x in present]
    return first + sorted(set(present) - set(preferred))


def _stats(values):
    values = np.asarray(values, dtype=float)
    return {"mean": float(values.mean()), "std": float(values.std()), "n": int(values.size)}


def _points(difference):
    return 100.0 * difference


def _verdict(ok, measured, target):
    return f"{'holds' if ok else 'does not hold'}: {measured}, target {target}"


def _header(meta, records):
    profile = meta.get("profile") or {}
    keys = ("command", "commit", "backend", "machine", "started", "finished")
    return {"profile": profile.get("name"), **{key: meta.get(key) for key in keys},
            "records": len(records), "runs": meta.get("runs")}


def _summarize_arch(runs, profile, steps):
    main = [r for r in runs if r.get("experiment") == "main"]
    methods = _ordered(profile.get("methods"), {r["method"] for r in main})
    shots = sorted({r["shots"] for r in main})
    groups = {}
    for r in main:
        groups.setdefault((r["method"], r["shots"]), []).append(r)
    final = {m: {str(k): _stats([r["final_accuracy"] for r in groups[m, k]])
                 for k in shots if (m, k) in groups} for m in methods}
    curves = {str(k): {m: _curve(groups[m, k]) for m in methods if (m, k) in groups}
              for k in shots}
    return {
        "methods": methods,
        "shots": shots,
        "final": final,
        "params": _params(main),
        "curves": curves,
        "converge": _converge(curves, steps),
        "sensitivity": _sensitivity(runs, profile),
        "better": _better(final),
        "samples": _samples(final, shots),
    }


def _params(runs):
    """Parameters (all and inherited) of each method's descendant."""
    first = {}
    for r in runs:
        first.setdefault(r["method"], r)
    return {m: {"params": r.get("params"), "inherited_params": r.get("inherited_params")}
            for m, r in first.items()}


def _curve(runs):
    """Accuracy per checkpoint step over the runs' seeds (steps all runs have)."""
    by_step = [{c["step"]: c["accuracy"] for c in r.get("checkpoints") or []} for r in runs]
    steps = sorted(set.intersection(*(set(b) for b in by_step)))
    acc = np.array([[b[s] for s in steps] for b in by_step], dtype=float).reshape(len(runs), -1)
    return {"steps": steps, "mean": acc.mean(0).tolist(), "std": acc.std(0).tolist(),
            "min": acc.min(0).tolist(), "max": acc.max(0).tolist(), "n": len(runs)}


# 1. converge faster
def _reach(curves):
    """First step at which each method's mean curve reaches 99% of scratch's final mean."""
    scratch = curves.get("scratch")
    if not scratch or not scratch["steps"]:
        return None
    threshold = TARGETS["reach_fraction"] * scratch["mean"][-1]
    steps = {m: next((s for s, a in zip(c["steps"], c["mean"]) if a >= threshold - _EPS), None)
             for m, c in curves.items()}
    return {"scratch_final": scratch["mean"][-1], "threshold": threshold, "steps": steps,
            "speedup": {m: steps["scratch"] / s if s else None for m, s in steps.items()}}


def _converge(curves, steps_total):
    per_shots = {k: _reach(c) for k, c in curves.items()}
    measured = [k for k, r in per_shots.items() if r and "auto" in r["steps"]]
    target = steps_total * TARGETS["step_fraction"] if steps_total else None
    result = {"per_shots": per_shots, "shots": None, "auto_step": None, "auto_speedup": None,
              "target_step": target, "measured": NOT_MEASURED, "verdict": NOT_MEASURED}
    if not measured or target is None:
        return result
    k = max(measured, key=int)
    reach = per_shots[k]
    step, speedup = reach["steps"]["auto"], reach["speedup"]["auto"]
    if step is None:
        measured = (f"never reaches {100 * reach['threshold']:.1f}% in {steps_total} steps "
                    f"at K={k}")
    else:
        measured = f"step {step} of {steps_total} ({speedup:.1f}x faster than scratch) at K={k}"
    return {**result, "shots": int(k), "auto_step": step, "auto_speedup": speedup,
            "measured": measured,
            "verdict": _verdict(step is not None and step <= target, measured, f"<= {target:.3g}")}


# 2. less sensitive
def _sensitivity(runs, profile):
    shots = profile.get("sensitivity_shots")
    at_k = [r for r in runs if r["shots"] == shots]
    grid = profile.get("grid") or {}
    points = [(lr, bs) for lr in grid.get("learning_rate", []) for bs in grid.get("batch_size", [])]
    points = points or sorted({(r["learning_rate"], r["batch_size"]) for r in at_k})
    methods = profile.get("sensitivity_methods") or ["scratch", "auto"]
    spreads = {m: _spread([r for r in at_k if r["method"] == m], points) for m in methods}
    spreads = {m: s for m, s in spreads.items() if s["points"]}
    result = {"shots": shots, "grid_size": len(points), "methods": spreads, "ratio": None,
              "measured": NOT_MEASURED, "verdict": NOT_MEASURED}
    auto, scratch = (spreads.get(m, {}).get("std") for m in ("auto", "scratch"))
    if auto is None or scratch is None:
        return result
    target = TARGETS["sensitivity_ratio"]
    if scratch > 0:
        ratio = auto / scratch
        ok, how = ratio <= target + _EPS, f"ratio {ratio:.2f}"
    else:  # scratch never moved over the grid: only an equally flat auto matches it
        ratio, ok, how = None, auto <= _EPS, "scratch's std is 0"
    measured = f"std {_points(auto):.1f} vs {_points(scratch):.1f} points ({how}) at K={shots}"
    covered = min(len(spreads[m]["points"]) for m in ("auto", "scratch"))
    if covered < len(points):  # an interrupted benchmark
        measured += f", only {covered} of {len(points)} grid points run"
    return {**result, "ratio": ratio, "measured": measured,
            "verdict": _verdict(ok, measured, f"<= {target:.2f}")}


def _spread(runs, points):
    """Per grid point the final accuracy over seeds; std and range over the points."""
    cells = []
    for lr, bs in points:
        acc = [r["final_accuracy"] for r in runs
               if math.isclose(r["learning_rate"], lr, rel_tol=1e-6) and r["batch_size"] == bs]
        if acc:
            cells.append({"learning_rate": lr, "batch_size": bs, **_stats(acc)})
    means = np.array([c["mean"] for c in cells])
    enough = len(cells) >= 2
    return {"points": cells, "std": float(means.std()) if enough else None,
            "range": float(np.ptp(means)) if enough else None}


# 3. perform better
def _better(final):
    auto = final.get("auto", {})
    vs = {}
    for other in ("scratch", *BASELINES):
        theirs = final.get(other, {})
        margins = {k: _points(auto[k]["mean"] - theirs[k]["mean"]) for k in auto if k in theirs}
        vs[other] = {"margins_points": margins,
                     "mean_margin_points": float(np.mean(list(margins.values())))
                     if margins else None,
                     "verdict": _margin_verdict({other: margins})}
    measured = [o for o in BASELINES if vs[o]["margins_points"]]
    return {
        "vs": vs,
        "scratch_measured": ", ".join(f"K={k} {p:+.1f}"
                                      for k, p in vs["scratch"]["margins_points"].items())
        or NOT_MEASURED,
        "baselines_measured": ", ".join(
            f"{_name(o)} {min(vs[o]['margins_points'].values()):+.1f}" for o in measured)
        or NOT_MEASURED,
        "baselines_verdict": _margin_verdict({o: vs[o]["margins_points"] for o in measured}),
    }


def _margin_verdict(margins):
    """Holds if auto is at least as good as each method at every K; quotes the worst margin."""
    cells = [(p, other, k) for other, per_k in margins.items() for k, p in per_k.items()]
    if not cells:
        return NOT_MEASURED
    p, other, k = min(cells)
    target = TARGETS["better_points"]
    return _verdict(p >= target - _EPS,
                    f"{p:+.1f} points vs {_name(other)} at K={k}",
                    f">= {target:g} at every K")


# 4. fewer samples
def _samples(final, shots):
    auto, scratch = final.get("auto", {}), final.get("scratch", {})
    common = [k for k in map(str, shots) if k in auto and k in scratch]
    few = {"shots": None, "points": None, "measured": NOT_MEASURED, "verdict": NOT_MEASURED}
    if common:
        k = common[0]
        points = _points(auto[k]["mean"] - scratch[k]["mean"])
        measured = f"{points:+.1f} points at K={k}"
        target = TARGETS["few_shot_points"]
        few = {"shots": int(k), "points": points, "measured": measured,
               "verdict": _verdict(points >= target - _EPS, measured, f"{target:+g}")}
    match = {"reference_shots": None, "reference": None, "shots": {},
             "measured": NOT_MEASURED, "verdict": NOT_MEASURED}
    if scratch:
        ref_k = max(scratch, key=int)
        reference = scratch[ref_k]["mean"]
        match.update(reference_shots=int(ref_k), reference=reference, shots={
            m: next((int(k) for k in map(str, shots)
                     if k in per_k and per_k[k]["mean"] >= reference - _EPS), None)
            for m, per_k in final.items()})
    if auto and scratch:
        k = match["shots"]["auto"]
        measured = (f"K={k} (scratch: K={match['shots']['scratch']})" if k is not None else
                    f"never reaches scratch's K={ref_k} accuracy ({100 * reference:.1f}%)")
        target = TARGETS["samples_shots"]
        match.update(measured=measured, verdict=_verdict(
            k is not None and k <= target, measured, f"K <= {target}"))
    return {"few_shot": few, "match": match}


# cost and context
def _condense(per_method):
    """The condensing entries of one arch (`<method>_units_by_seed` kept with its method)."""
    per_method = per_method or {}
    return {m: {"units": c.get("units"), "seconds": c.get("seconds"),
                "learngene_bytes": c.get("learngene_bytes"),
                "units_by_seed": per_method.get(f"{m}_units_by_seed")}
            for m, c in per_method.items() if isinstance(c, dict) and "units" in c}


def _cost(cost):
    cost = cost or {}

    def ratio(a, b):
        a, b = cost.get(a), cost.get(b)
        return a / b if a is not None and b else None

    library, plain = (cost.get(k) for k in ("library_images_per_second",
                                            "plain_keras_images_per_second"))
    epochs = ratio("condense_seconds", "ancestry_epoch_seconds")
    overhead = (plain - library) / plain * 100 if library is not None and plain else None
    return {**cost, "condense_epochs": epochs, "overhead_percent": overhead,
            "bytes_ratio": ratio("learngene_bytes", "descendant_bytes"),
            "condense_verdict": NOT_MEASURED if epochs is None else _verdict(
                epochs <= TARGETS["condense_epochs"], f"{epochs:.2f} epochs",
                f"<= {TARGETS['condense_epochs']:g} epoch"),
            "overhead_verdict": NOT_MEASURED if overhead is None else _verdict(
                overhead <= TARGETS["overhead_percent"], f"{overhead:.1f}%",
                f"<= {TARGETS['overhead_percent']:g}%")}


def _claims(archs, steps):
    """The rows of the summary table: claim, target, and per arch measured and verdict."""
    t = TARGETS
    step = f" (step <= {steps * t['step_fraction']:.3g} of {steps})" if steps else ""
    rows = [
        ("1. Converge faster",
         f"auto reaches {t['reach_fraction']:.0%} of scratch's final accuracy in <= "
         f"1/{1 / t['step_fraction']:g} of the steps{step}",
         lambda s: s["converge"]),
        ("2. Less sensitive",
         f"auto's std over the lr x batch grid <= 1/{1 / t['sensitivity_ratio']:g} of scratch's",
         lambda s: s["sensitivity"]),
        ("3. Perform better (vs scratch)", "auto >= scratch at every K",
         lambda s: {"measured": s["better"]["scratch_measured"],
                    "verdict": s["better"]["vs"]["scratch"]["verdict"]}),
        ("3. Perform better (vs other initialisations)",
         "auto >= front-k, back-k, weight selection at every K (smallest margins shown)",
         lambda s: {"measured": s["better"]["baselines_measured"],
                    "verdict": s["better"]["baselines_verdict"]}),
        ("4. Fewer samples (few-shot)",
         f"auto - scratch >= {t['few_shot_points']:+g} points at the smallest K",
         lambda s: s["samples"]["few_shot"]),
        ("4. Fewer samples (to match scratch)",
         f"auto matches scratch's largest-K accuracy at K <= {t['samples_shots']}",
         lambda s: s["samples"]["match"]),
    ]
    return [{"claim": claim, "target": target,
             "archs": {arch: {key: get(s)[key] for key in ("measured", "verdict")}
                       for arch, s in archs.items()}}
            for claim, target, get in rows]


# ------------------------------------------------------------------ report
def write_report(out_dir):
    """Writes `out_dir/report.md` and its plots under `out_dir/images/`.

    Plots need matplotlib (`pip install 'keras-learngene[plots]'`); without
    it the report is written without them and says so.

    Returns:
        The path of `report.md`.
    """
    out_dir = Path(out_dir)
    meta = _load_meta(out_dir)
    summary = summarize(load_records(out_dir), meta)
    path = out_dir / "report.md"
    if _version(meta) >= 2:
        from keras_learngene.bench import _report2

        images = _report2.plots(summary, meta, out_dir / "images")
        path.write_text(_report2.markdown(summary, images))
        return str(path)
    images = _plots(summary, meta, out_dir / "images")
    path.write_text(_markdown(summary, images))
    return str(path)


def _version(meta):
    """The protocol of a results folder: 1 (docs/results/full) or 2."""
    return int((meta.get("profile") or {}).get("version") or 1)


def _name(method):
    return METHOD_NAMES.get(method, method)


def _arch_name(arch):
    return ARCH_NAMES.get(arch, arch)


def _or(value, fmt="{}"):
    return NOT_MEASURED if value is None else fmt.format(value)


def _in_points(fraction):
    return _or(None if fraction is None else _points(fraction), "{:.1f}")


def _cell(stats):
    return f"{100 * stats['mean']:.1f} ± {100 * stats['std']:.1f}" if stats else "—"


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows] + [""]


def _image(images, arch, key, caption):
    name = (images or {}).get(arch, {}).get(key)
    return [f"![{caption}](images/{name})", ""] if name else []


_HOW_TO_READ = (
    "Every descendant of an architecture has the same layers and the same training recipe "
    "(optimizer steps, schedule, augmentation); only its initialisation differs: *scratch* "
    "is random, *front-k* / *back-k* inherit the first / last k ancestry units, *Auto "
    "Learngene* (`auto`) the k units most similar to a pseudo descendant, *Heur Learngene* "
    "the k units with the most stable gradients, *weight selection* a uniform selection of "
    "the ancestry's weights, and *whole ancestry* fine-tunes the full ancestry (an upper "
    "bound on reuse, at full size). K is the number of training images per novel class. "
    "Accuracies are test accuracies in percent on all novel-class test images, written "
    "mean ± std over seeds (`np.std`, ddof=0); margins are in percentage points. A verdict "
    "says whether the measured figure meets the target, with the margin; \"—\" means no run "
    "and \"not measured\" that the benchmark recorded no data for that figure (a quick or "
    "interrupted run)."
)


def _markdown(summary, images):
    h = summary["header"]
    runs = h["runs"] or {}
    lines = ["# Learngene benchmark report (protocol v1)", "",
             "These results follow protocol v1 (Fashion-MNIST tops, three checkpoints, a "
             "cosine schedule tied to the budget, verdicts from seed means without "
             "intervals); `klg bench` now runs protocol v2 (docs/benchmark.md).", ""]
    lines += _table(["", ""], [
        ("profile", _or(h["profile"])), ("command", _or(h["command"], "`{}`")),
        ("commit", _or(h["commit"])), ("backend", _or(h["backend"])),
        ("machine", _or(h["machine"])), ("started", _or(h["started"])),
        ("finished", _or(h["finished"])),
        ("runs", f"{h['records']} recorded" + (f" of {runs['planned']} planned"
                                               if runs.get("planned") else "")),
    ])
    if images is None:
        lines += ["Plots were skipped: matplotlib is not installed "
                  "(`pip install 'keras-learngene[plots]'`).", ""]
    lines += ["## How to read", "", _HOW_TO_READ, ""]
    lines += _summary_table(summary)
    lines += _context_tables(summary)
    for arch, s in summary["archs"].items():
        lines += _arch_section(arch, s, summary["steps"], images)
    return "\n".join(lines)


def _summary_table(summary):
    archs = list(summary["archs"])
    header = ["claim", "target"] + [f"{col} ({_arch_name(a)})" for a in archs
                                    for col in ("measured", "verdict")]
    rows = [[row["claim"], row["target"]] + [row["archs"][a][col] for a in archs
                                             for col in ("measured", "verdict")]
            for row in summary["claims"]]
    return ["## Summary of the four claims", ""] + _table(header, rows)


def _context_tables(summary):
    lines = ["## Ancestries", ""]
    lines += _table(["arch", "preset", "params", "base-class test accuracy", "training time"], [
        (_arch_name(a), _or(i.get("preset")), _or(i.get("params"), "{:,}"),
         _or(i.get("base_test_accuracy"), "{:.2%}"), _or(i.get("train_seconds"), "{:.0f} s"))
        if i else (_arch_name(a), *[NOT_MEASURED] * 4)
        for a, i in summary["ancestries"].items()])
    lines += ["## Condensing", ""]
    rows = [(_arch_name(a), _name(m), c["units"], _or(c["seconds"], "{:.1f} s"),
             _or(c["learngene_bytes"], "{:,}"),
             ", ".join(f"{seed}: {u}" for seed, u in (c["units_by_seed"] or {}).items()) or "—")
            for a, per_method in summary["condense"].items() for m, c in per_method.items()]
    rows += [(_arch_name(a), NOT_MEASURED, "", "", "", "")
             for a, per_method in summary["condense"].items() if not per_method]
    lines += _table(["arch", "method", "units selected (seed 0)", "seconds", "learngene bytes",
                     "units by seed"], rows)
    lines += ["## Cost", ""]
    rows = []
    for a, c in summary["cost"].items():
        if all(c[k] is None for k in ("condense_epochs", "overhead_percent", "bytes_ratio")):
            rows.append((_arch_name(a), NOT_MEASURED, "", "", ""))
            continue
        rows += [
            (_arch_name(a), "condensing vs one ancestry epoch",
             f"{_or(c.get('condense_seconds'), '{:.1f} s')} vs "
             f"{_or(c.get('ancestry_epoch_seconds'), '{:.1f} s')}",
             _or(c["condense_epochs"], "{:.2f} epochs"), c["condense_verdict"]),
            (_arch_name(a), "library vs plain Keras throughput",
             f"{_or(c.get('library_images_per_second'), '{:.0f} img/s')} vs "
             f"{_or(c.get('plain_keras_images_per_second'), '{:.0f} img/s')}",
             _or(c["overhead_percent"], "{:.1f}% overhead"), c["overhead_verdict"]),
            (_arch_name(a), "learngene vs descendant size",
             f"{_or(c.get('learngene_bytes'), '{:,} B')} vs "
             f"{_or(c.get('descendant_bytes'), '{:,} B')}",
             _or(c["bytes_ratio"], "{:.0%}"), "(no target)"),
        ]
    return lines + _table(["arch", "figure", "measured", "ratio", "verdict"], rows)


def _arch_section(arch, s, steps, images):
    name = _arch_name(arch)
    lines = [f"## {name}", ""]
    if not s["methods"]:
        return lines + ["No runs recorded.", ""]
    shots = [str(k) for k in s["shots"]]
    lines += [f"### Final accuracy at the default hyperparameters ({steps} steps)", ""]
    lines += _table(["method"] + [f"K={k}" for k in shots] + ["params", "inherited params"],
                    [[_name(m)] + [_cell(s["final"][m].get(k)) for k in shots]
                     + [_or(s["params"][m]["params"], "{:,}"),
                        _or(s["params"][m]["inherited_params"], "{:,}")]
                     for m in s["methods"]])
    return (lines + _converge_section(arch, s, images) + _sensitivity_section(arch, s, images)
            + _better_section(s) + _samples_section(arch, s, images)
            + [line for key in sorted((images or {}).get(arch, {})) if key.startswith("heatmap_")
               for line in _image(images, arch, key, f"{name}: what {_name(key[8:])} measured "
                                  "when condensing (seed 0)")])


def _converge_section(arch, s, images):
    c = s["converge"]
    lines = ["### 1. Converge faster", "",
             "First checkpoint step at which the mean accuracy over seeds reaches 99% of "
             "scratch's final mean accuracy (speedup: scratch's step / the method's step).", ""]
    rows = [[f"K={k}", f"{100 * r['threshold']:.1f}%"] + [_reach_cell(r, m) for m in s["methods"]]
            for k, r in c["per_shots"].items() if r]
    lines += _table(["K", "threshold"] + [_name(m) for m in s["methods"]], rows)
    lines += [f"Verdict (K={c['shots']}): {c['verdict']}.", ""]
    for k in s["curves"]:
        lines += _image(images, arch, f"curves_K{k}",
                        f"{_arch_name(arch)}, K={k}: accuracy vs step")
    return lines


def _reach_cell(reach, method):
    if method not in reach["steps"]:
        return "—"
    step, speedup = reach["steps"][method], reach["speedup"][method]
    if step is None:
        return "never"
    return f"{step} ({speedup:.1f}x)" if speedup is not None else str(step)


def _sensitivity_section(arch, s, images):
    sens = s["sensitivity"]
    lines = ["### 2. Less sensitive to hyperparameters", ""]
    if not sens["methods"]:
        return lines + [f"Verdict: {NOT_MEASURED}.", ""]
    methods = list(sens["methods"])
    cells = {(m, c["learning_rate"], c["batch_size"]): c
             for m in methods for c in sens["methods"][m]["points"]}
    points = sorted({key[1:] for key in cells})
    lines += [f"Final accuracy at K={sens['shots']} per grid point ({sens['grid_size']} "
              "points in the grid):", ""]
    lines += _table(["learning rate", "batch size"] + [_name(m) for m in methods],
                    [[f"{lr:g}", bs] + [_cell(cells.get((m, lr, bs))) for m in methods]
                     for lr, bs in points])
    lines += _table(["method", "grid points", "std over the grid", "range (max - min)"],
                    [[_name(m), len(v["points"]), _in_points(v["std"]), _in_points(v["range"])]
                     for m, v in sens["methods"].items()])
    lines += [f"Verdict: {sens['verdict']}.", ""]
    return lines + _image(images, arch, "sensitivity",
                          f"{_arch_name(arch)}: final accuracy over the grid")


def _better_section(s):
    b = s["better"]
    lines = ["### 3. Perform better", "",
             "Auto Learngene minus each method, in points of final accuracy:", ""]
    shots = [str(k) for k in s["shots"]]
    rows = [[_name(o)] + [_or(v["margins_points"].get(k), "{:+.1f}") for k in shots]
            + [_or(v["mean_margin_points"], "{:+.1f}"), v["verdict"]]
            for o, v in b["vs"].items() if v["margins_points"]]
    lines += _table(["vs"] + [f"K={k}" for k in shots] + ["mean over K", "verdict"], rows)
    return lines + [f"Verdict against the other initialisations: {b['baselines_verdict']}.", ""]


def _samples_section(arch, s, images):
    few, match = s["samples"]["few_shot"], s["samples"]["match"]
    lines = ["### 4. Fewer training samples", "",
             f"Few-shot (auto - scratch at the smallest K): {few['verdict']}.", ""]
    if match["reference"] is not None:
        lines += [f"Smallest K at which each method matches scratch's accuracy at "
                  f"K={match['reference_shots']} ({100 * match['reference']:.1f}%):", ""]
        lines += _table(["method", "K"], [[_name(m), _or(k) if k is not None else "never"]
                                         for m, k in match["shots"].items()])
    lines += [f"Verdict: {match['verdict']}.", ""]
    return lines + _image(images, arch, "shots", f"{_arch_name(arch)}: accuracy vs K")


# ------------------------------------------------------------------ plots
def _plots(summary, meta, folder):
    """Writes the PNGs; returns `{arch: {key: file name}}`, or None without matplotlib."""
    try:
        plt = plotting._pyplot()
    except ImportError:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    methods = {m for s in summary["archs"].values()
               for m in [*s["methods"], *s["sensitivity"]["methods"]]}
    colors = {m: f"C{i % 10}" for i, m in enumerate(sorted(methods, key=_method_rank))}
    written = {}
    for arch, s in summary["archs"].items():
        name, files = _arch_name(arch), {}
        for k, curves in s["curves"].items():
            reach = s["converge"]["per_shots"][k]
            files[f"curves_K{k}"] = _plot_curves(
                plt, folder / f"curves_{arch}_K{k}.png", f"{name}, K={k}: accuracy vs step",
                curves, reach and reach["threshold"], colors)
        if s["final"]:
            files["shots"] = _plot_shots(plt, folder / f"shots_{arch}.png",
                                         f"{name}: accuracy vs K", s["final"], colors)
        if s["sensitivity"]["methods"]:
            files["sensitivity"] = _plot_sensitivity(
                plt, folder / f"sensitivity_{arch}.png",
                f"{name}: final accuracy over the lr x batch grid, K={s['sensitivity']['shots']}",
                s["sensitivity"]["methods"], colors)
        for method, c in ((meta.get("condense") or {}).get(arch) or {}).items():
            if isinstance(c, dict) and c.get("heatmap"):
                files[f"heatmap_{method}"] = _plot_heatmap(
                    folder / f"heatmap_{arch}_{method}.png",
                    f"{name}: {_name(method)}, units {c.get('units')}", c["heatmap"])
        written[arch] = files
    return written


def _method_rank(method):
    known = ["scratch", *METHOD_NAMES]
    return (known.index(method), method) if method in known else (len(known), method)


def _save(plt, fig, ax, path, title, xlabel, ylabel, grid=True):
    ax.set_title(title, fontsize=9)
    ax.set(xlabel=xlabel, ylabel=ylabel)
    if grid:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=_DPI)
    plt.close(fig)
    return path.name


def _plot_curves(plt, path, title, curves, threshold, colors):
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for m, c in curves.items():
        pct = {key: 100 * np.asarray(c[key]) for key in ("mean", "min", "max")}
        ax.plot(c["steps"], pct["mean"], marker="o", ms=3, color=colors[m], label=_name(m))
        ax.fill_between(c["steps"], pct["min"], pct["max"], color=colors[m], alpha=0.15)
    if threshold:
        ax.axhline(100 * threshold, color="grey", ls="--", lw=1,
                   label="99% of scratch's final accuracy")
    ax.legend(fontsize=7)
    return _save(plt, fig, ax, path, title + " (mean over seeds, band min..max)",
                 "optimizer step", "test accuracy (%)")


def _plot_shots(plt, path, title, final, colors):
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    shots = sorted({int(k) for per_k in final.values() for k in per_k})
    for m, per_k in final.items():
        ks = sorted(per_k, key=int)
        ax.errorbar([int(k) for k in ks], [100 * per_k[k]["mean"] for k in ks],
                    yerr=[100 * per_k[k]["std"] for k in ks], marker="o", ms=3, capsize=3,
                    color=colors[m], label=_name(m))
    ax.set_xscale("log")
    ax.set_xticks(shots, [str(k) for k in shots])
    ax.minorticks_off()
    ax.legend(fontsize=7)
    return _save(plt, fig, ax, path, title + " (mean ± std over seeds)",
                 "K (training images per class)", "final test accuracy (%)")


def _plot_sensitivity(plt, path, title, spreads, colors):
    fig, ax = plt.subplots(figsize=(1.8 + 1.4 * len(spreads), 3.6))
    for i, (m, v) in enumerate(spreads.items()):
        acc = [100 * c["mean"] for c in v["points"]]
        ax.boxplot(acc, positions=[i], widths=0.5, showfliers=False)
        ax.scatter(i + np.linspace(-0.12, 0.12, len(acc)), acc, s=14, color=colors[m], zorder=3)
        label = "std: not measured" if v["std"] is None else f"std {_points(v['std']):.1f} pts"
        ax.annotate(label, (i, max(acc)), textcoords="offset points", xytext=(0, 8),
                    ha="center", fontsize=8)
    ax.set_xticks(range(len(spreads)), [_name(m) for m in spreads])
    ax.margins(y=0.2)
    return _save(plt, fig, ax, path, title, "method",
                 "final test accuracy (%), one dot per grid point")


def _plot_heatmap(path, title, spec):
    from keras_learngene.plotting import heatmap_figure

    plt, fig = heatmap_figure({**spec, "title": None}, title)
    fig.savefig(path, dpi=_DPI)
    plt.close(fig)
    return path.name
