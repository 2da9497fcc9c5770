"""The benchmark report of protocol v2 (see `_report` for the v1 one).

Per data set and architecture (splits pooled), the four claims for the focus
method (Auto Learngene by default) against scratch, each from paired
differences over episodes (a method and scratch train on the same episode
with the same seed) with a 95% Student-t interval (`_stats.interval`); a
claim holds only when its interval clears the target:

1. converge faster: per episode, the first checkpoint step at which a run's
   test accuracy reaches 99% of scratch's plateau accuracy, scratch's over
   the method's (a speedup); geometric mean over episodes, interval of the
   log ratios; holds when the low end is >= 6 (1/6 of the steps);
2. less sensitive: per episode, the std of the plateau accuracy over the
   learning-rate x batch grid, the method's over scratch's; holds when the
   high end is <= 1/3;
3. perform better: plateau accuracy, the method minus scratch (and minus
   front-k, back-k, weight selection, the random chains), pooled over every
   N and K; holds when the low end is > 0;
4. fewer samples: at the smallest K, the method minus scratch, holds when the
   low end is >= +15 points; and the smallest K at which the method matches
   scratch's accuracy at the largest K (low end of the paired difference
   >= -1 point), which must be <= 1/4 of the largest K.

"Plateau accuracy" is `_stats.plateau` of each run (decided on validation
images, reported on test images); "at equal budget" is the last checkpoint.

Rows may be recipes `<method>+<parts>` (the runner's `Recipe`, e.g.
`auto+identity+head`); each group then also reports, per recipe, its
accuracy at step 0 (before training, where the profile has that checkpoint)
and its final accuracy minus its method's (the paper's inheritance of the
same learngene) and minus the linear probe on the ancestry's features.
"""

import math

import numpy as np

from keras_learngene.bench import _report, _stats
from keras_learngene.bench._profiles import PROBES

TARGETS = {
    "reach_fraction": 0.99,  # 1. accuracy to reach, as a fraction of scratch's plateau
    "speedup": 6.0,  # 1. scratch's steps / the method's, low end at least
    "sensitivity_ratio": 1 / 3,  # 2. the method's std over the grid / scratch's, high end
    "better_points": 0.0,  # 3. the method minus each other, low end above
    "few_shot_points": 15.0,  # 4. the method minus scratch at the smallest K, low end
    "match_points": -1.0,  # 4. "matches": low end of the paired difference at least
    "samples_fraction": 0.25,  # 4. ...at a K of at most this share of the largest K
    "condense_epochs": 1.0,  # cost: condensing time in ancestry epochs, at most
    "overhead_percent": 3.0,  # cost: library throughput below plain Keras, at most
}
OTHERS = ("front", "back", "weight_selection", "random")
NOT_MEASURED = "not measured"
NAMES = {"scratch": "scratch", "ancestry": "whole ancestry (fine-tuned)",
         "random": "random chain (null)", "probe_pixels": "linear probe: pixels",
         "probe_ancestry": "linear probe: ancestry features",
         "probe_learngene": "linear probe: learngene features"}
ARCH_NAMES = {"vit": "ViT", "cnn": "CNN"}


def _name(method):
    return NAMES.get(method, method)


def _group_name(key):
    data, arch = key.split("/")
    return f"{data}, {ARCH_NAMES.get(arch, arch)}"


def _plateau_acc(record):
    p = record.get("plateau")
    return p["accuracy"] if p else record["final_accuracy"]


def _pct(result):
    """An interval in points."""
    return {k: (100 * v if k != "n" and v is not None else v) for k, v in result.items()}


def _fmt(result, signed=False, unit=""):
    if not result or result.get("mean") is None:
        return "—"
    f = "{:+.1f}" if signed else "{:.1f}"
    text = f.format(result["mean"]) + unit
    if result.get("low") is not None:
        text += f" [{f.format(result['low'])}, {f.format(result['high'])}]"
    return text + f" (n={result['n']})"


def _fmt_ratio(result):
    if not result or result.get("mean") is None:
        return "—"
    text = f"{result['mean']:.2f}x"
    if result.get("low") is not None:
        text += f" [{result['low']:.2f}, {result['high']:.2f}]"
    return text + f" (n={result['n']})"


_verdict = _report._verdict  # one wording of a verdict for both report versions


def _cell(ways, shots):
    return f"N{ways}K{shots}"


# ------------------------------------------------------------------ summary
def summarize(records, meta):
    """Every number of a v2 report, as JSON-serializable data."""
    profile = meta.get("profile") or {}
    for m, v in (meta.get("methods") or {}).items():
        NAMES.setdefault(m, v.get("title") or m)
    focus = profile.get("focus", "auto")
    data_order = [d["name"] for d in profile.get("data", [])]
    arch_order = list(profile.get("ancestries", {}))
    present = sorted({(r["data"], r["arch"]) for r in records},
                     key=lambda da: (data_order.index(da[0]) if da[0] in data_order else 99,
                                     arch_order.index(da[1]) if da[1] in arch_order else 99))
    groups = {f"{d}/{a}": _group([r for r in records if r["data"] == d and r["arch"] == a],
                                 profile, focus) for d, a in present}
    return {
        "version": 2,
        "header": _header(meta, records),
        "focus": focus,
        "targets": dict(TARGETS),
        "archs": groups,
        "ancestries": meta.get("ancestries") or {},
        "data": meta.get("data") or {},
        "transfer": meta.get("transfer") or {},
        "selection": _selection(records, meta, profile),
        "cost": {key: _cost(c, [r for r in records if r["experiment"] == "main"
                                and key == f"{r['data']}/s{r['split']}/{r['arch']}"])
                 for key, c in (meta.get("cost") or {}).items()},
        "claims": _claims(groups, focus),
    }


def _header(meta, records):
    profile = meta.get("profile") or {}
    keys = ("command", "commit", "backend", "machine", "started", "finished")
    return {"profile": profile.get("name"), "version": profile.get("version"),
            **{key: meta.get(key) for key in keys}, "records": len(records),
            "runs": meta.get("runs"), "schedule": profile.get("schedule"),
            "warmup_steps": profile.get("warmup_steps"), "default": profile.get("default")}


def _pair_key(r):
    return (r["split"], r["ways"], r["shots"], r["task"])


def _group(runs, profile, focus):
    """The numbers of one data set x architecture."""
    default = profile.get("default") or {}
    main = [r for r in runs if r["experiment"] in ("main", "probe")]
    methods = [m for m in profile.get("methods", []) if any(r["method"] == m for r in main)]
    methods += [m for m in PROBES if any(r["method"] == m for r in main)]
    cells = sorted({(r["ways"], r["shots"]) for r in main})
    by = {(r["method"], _pair_key(r)): r for r in main}
    table = {}
    for m in methods:
        table[m] = {}
        for ways, shots in cells:
            rs = [r for r in main if r["method"] == m and (r["ways"], r["shots"]) == (ways, shots)]
            if not rs:
                continue
            trained = [r for r in rs if r["experiment"] == "main"]
            table[m][_cell(ways, shots)] = {
                "plateau": _pct(_stats.interval([_plateau_acc(r) for r in rs])),
                "budget": _pct(_stats.interval([r["final_accuracy"] for r in rs])),
                "reached": (sum(r["plateau"]["reached"] for r in trained) / len(trained)
                            if trained else None),
                "plateau_step": (float(np.median([r["plateau"]["step"] for r in trained]))
                                 if trained else None),
                "steps": trained[0]["steps"] if trained else None,
            }
    curves = {}
    for ways, shots in cells:
        curves[_cell(ways, shots)] = {
            m: _curve([r for r in main if r["method"] == m and r["experiment"] == "main"
                       and (r["ways"], r["shots"]) == (ways, shots)]) for m in methods}
        curves[_cell(ways, shots)] = {m: c for m, c in curves[_cell(ways, shots)].items() if c}
    return {
        "methods": methods, "cells": [_cell(w, k) for w, k in cells],
        "ways": sorted({w for w, _ in cells}), "table": table, "curves": curves,
        "params": _params([r for r in main if r["experiment"] == "main"]),
        "converge": _converge(main, by, cells, methods, focus),
        "better": _better(main, by, cells, methods, focus),
        "vs_scratch": _minus(main, by, cells, methods, "scratch"),
        "samples": _samples(main, by, cells, methods, focus),
        "sensitivity": _sensitivity(runs, profile, focus, default),
        "headstart": _headstart(main, by, cells, methods),
    }


def _base(method):
    return method.split("+", 1)[0]


def _headstart(main, by, cells, methods):
    """Per trained row: test accuracy at step 0 (before training) per cell;
    per recipe `<method>+<parts>`: final test accuracy minus its method's
    (paired, per cell and pooled) and minus the ancestry-feature probe."""
    keys = sorted({_pair_key(r) for r in main})
    trained = [m for m in methods if m not in PROBES]
    step0 = {}
    for m in trained:
        per_cell = {}
        for ways, shots in cells:
            accs = [c["accuracy"] for r in main if r["method"] == m and r["experiment"] == "main"
                    and (r["ways"], r["shots"]) == (ways, shots)
                    for c in r["checkpoints"][:1] if c["step"] == 0]
            if accs:
                per_cell[_cell(ways, shots)] = _pct(_stats.interval(accs))
        if per_cell:
            step0[m] = per_cell
    vs_base, vs_probe = {}, {}
    final = lambda r: r["final_accuracy"]  # noqa: E731
    for m in [m for m in trained if "+" in m]:
        for table, other in ((vs_base, _base(m)), (vs_probe, "probe_ancestry")):
            per_cell = {}
            for ways, shots in cells:
                diffs = _paired(by, m, other, [k for k in keys if k[1:3] == (ways, shots)],
                                final)
                if diffs:
                    per_cell[_cell(ways, shots)] = _stats.interval(diffs)
            pooled = _stats.interval(_paired(by, m, other, keys, final))
            if pooled["mean"] is not None:
                table[m] = {"other": other, "per_cell": per_cell, "pooled": pooled}
    return {"step0": step0, "vs_base": vs_base, "vs_probe": vs_probe}


def _params(runs):
    first = {}
    for r in runs:
        first.setdefault(r["method"], r)
    return {m: {"params": r.get("params"), "inherited_params": r.get("inherited_params")}
            for m, r in first.items()}


def _curve(runs):
    if not runs:
        return None
    by_step = [{c["step"]: c["accuracy"] for c in r["checkpoints"]} for r in runs]
    steps = sorted(set.intersection(*(set(b) for b in by_step)))
    acc = np.array([[b[s] for s in steps] for b in by_step], dtype=float).reshape(len(runs), -1)
    return {"steps": steps, "mean": acc.mean(0).tolist(), "low": np.percentile(acc, 10, 0).tolist(),
            "high": np.percentile(acc, 90, 0).tolist(), "n": len(runs)}


def _paired(by, a, b, keys, value=_plateau_acc):
    """Paired differences a - b (points) over the episodes both ran."""
    return [100 * (value(by[a, k]) - value(by[b, k])) for k in keys
            if (a, k) in by and (b, k) in by]


# 1. converge faster
def _speedups(by, keys, method):
    """Per episode: scratch's steps to 99% of its plateau over the method's
    (a method that never gets there counts the whole budget: optimistic; one
    already there at step 0, before training, counts 1 step: a finite,
    conservative ratio)."""
    num, den, never = [], [], 0
    for k in keys:
        if ("scratch", k) not in by or (method, k) not in by:
            continue
        scratch, other = by["scratch", k], by[method, k]
        if not scratch["checkpoints"] or not other["checkpoints"]:
            continue
        threshold = TARGETS["reach_fraction"] * _plateau_acc(scratch)
        s = _stats.steps_to_reach(scratch["checkpoints"], threshold)
        m = _stats.steps_to_reach(other["checkpoints"], threshold)
        if m is None:
            never += 1
            m = other["steps"]
        num.append(max(s, 1))
        den.append(max(m, 1))
    return num, den, never


def _converge(main, by, cells, methods, focus):
    trained = [m for m in methods if m not in PROBES]
    per_cell = {}
    for ways, shots in cells:
        keys = sorted({_pair_key(r) for r in main if (r["ways"], r["shots"]) == (ways, shots)})
        per_cell[_cell(ways, shots)] = {}
        for m in trained:
            num, den, never = _speedups(by, keys, m)
            if num:
                per_cell[_cell(ways, shots)][m] = {**_stats.ratio_interval(num, den),
                                                   "never": never,
                                                   "scratch_steps": float(np.median(num))}
    keys = sorted({_pair_key(r) for r in main})
    num, den, never = _speedups(by, keys, focus)
    pooled = {**_stats.ratio_interval(num, den), "never": never}
    target = TARGETS["speedup"]
    if pooled["mean"] is None:
        measured, verdict = NOT_MEASURED, NOT_MEASURED
    else:
        measured = f"{_fmt_ratio(pooled)} scratch's steps to 99% of its plateau"
        if never:
            measured += f", {never} episodes never reached it"
        verdict = _verdict(_stats.clears(pooled, target - 1e-9), measured,
                           f"low end >= {target:g}x")
    return {"per_cell": per_cell, "pooled": pooled, "measured": measured, "verdict": verdict}


# 3. perform better
def _minus(main, by, cells, methods, reference):
    """Every method minus `reference`: paired plateau differences (points) per
    cell and pooled (the family side by side, whatever the focus)."""
    keys = sorted({_pair_key(r) for r in main})
    out = {}
    for m in [m for m in methods if m != reference]:
        per_cell = {}
        for ways, shots in cells:
            diffs = _paired(by, m, reference, [k for k in keys if k[1:3] == (ways, shots)])
            if diffs:
                per_cell[_cell(ways, shots)] = _stats.interval(diffs)
        pooled = _stats.interval(_paired(by, m, reference, keys))
        if pooled["mean"] is not None:
            out[m] = {"per_cell": per_cell, "pooled": pooled}
    return out


def _better(main, by, cells, methods, focus):
    keys = sorted({_pair_key(r) for r in main})
    vs = {}
    for other in [m for m in methods if m != focus]:
        per_cell = {}
        for ways, shots in cells:
            ks = [k for k in keys if k[1:3] == (ways, shots)]
            diffs = _paired(by, focus, other, ks)
            if diffs:
                per_cell[_cell(ways, shots)] = _stats.interval(diffs)
        pooled = _stats.interval(_paired(by, focus, other, keys))
        if pooled["mean"] is None:
            continue
        ok = _stats.clears(pooled, TARGETS["better_points"])
        vs[other] = {"per_cell": per_cell, "pooled": pooled,
                     "verdict": _verdict(ok, f"{_fmt(pooled, True)} points",
                                         f"low end > {TARGETS['better_points']:g}")}
    baselines = [o for o in ("front", "back", "weight_selection") if o in vs]
    if baselines:
        worst = min(baselines, key=lambda o: vs[o]["pooled"]["low"]
                    if vs[o]["pooled"]["low"] is not None else -math.inf)
        ok = all(_stats.clears(vs[o]["pooled"], TARGETS["better_points"]) for o in baselines)
        measured = ", ".join(f"{_name(o)} {_fmt(vs[o]['pooled'], True)}" for o in baselines)
        baselines_verdict = _verdict(ok, f"worst {_name(worst)}: "
                                     f"{_fmt(vs[worst]['pooled'], True)} points",
                                     "low end > 0 against each")
    else:
        measured, baselines_verdict = NOT_MEASURED, NOT_MEASURED
    return {"vs": vs, "baselines_measured": measured, "baselines_verdict": baselines_verdict}


# 4. fewer samples
def _samples(main, by, cells, methods, focus):
    ways = min({w for w, _ in cells}, default=None)
    shots = sorted(k for w, k in cells if w == ways)
    few = {"measured": NOT_MEASURED, "verdict": NOT_MEASURED, "interval": None}
    match = {"measured": NOT_MEASURED, "verdict": NOT_MEASURED, "shots": {}}
    if not shots:
        return {"few_shot": few, "match": match}
    keys = sorted({_pair_key(r) for r in main})
    smallest = [k for k in keys if k[1:3] == (ways, shots[0])]
    diffs = _paired(by, focus, "scratch", smallest)
    if diffs:
        result = _stats.interval(diffs)
        target = TARGETS["few_shot_points"]
        measured = f"{_fmt(result, True)} points at N={ways}, K={shots[0]}"
        few = {"interval": result, "measured": measured,
               "verdict": _verdict(_stats.clears(result, target - 1e-9), measured,
                                   f"low end >= {target:+g}")}
    k_max = shots[-1]
    ref = {(k[0], k[3]): by["scratch", k] for k in keys
           if k[1:3] == (ways, k_max) and ("scratch", k) in by}
    if not ref:
        return {"few_shot": few, "match": match}
    for m in methods:
        found = None
        for k_shots in shots:
            d = [100 * (_plateau_acc(by[m, k]) - _plateau_acc(ref[k[0], k[3]]))
                 for k in keys if k[1:3] == (ways, k_shots) and (m, k) in by
                 and (k[0], k[3]) in ref]
            result = _stats.interval(d)
            if result["low"] is not None and result["low"] >= TARGETS["match_points"]:
                found = {"shots": k_shots, "interval": result}
                break
        match["shots"][m] = found
    limit = TARGETS["samples_fraction"] * k_max
    got = match["shots"].get(focus)
    if focus in match["shots"]:
        measured = (f"K={got['shots']} ({_fmt(got['interval'], True)} points vs scratch at "
                    f"K={k_max})" if got else f"no K matches scratch at K={k_max}")
        match.update(reference_shots=k_max, ways=ways, measured=measured,
                     verdict=_verdict(bool(got) and got["shots"] <= limit, measured,
                                      f"K <= {limit:g}"))
    return {"few_shot": few, "match": match}


# 2. less sensitive
def _sensitivity(runs, profile, focus, default):
    s = profile.get("sensitivity") or {}
    grid = profile.get("grid") or {}
    points = [(lr, bs) for lr in grid.get("learning_rate", []) for bs in grid.get("batch_size", [])]
    chosen = [r for r in runs if r["ways"] == s.get("ways") and r["shots"] == s.get("shots")
              and r["task"] < s.get("tasks", 0) and r["experiment"] in ("main", "sensitivity")]
    methods = [m for m in s.get("methods", []) if any(r["method"] == m for r in chosen)]
    result = {"ways": s.get("ways"), "shots": s.get("shots"), "grid_size": len(points),
              "methods": {}, "ratio": None, "measured": NOT_MEASURED, "verdict": NOT_MEASURED}
    if not methods:
        return result
    stds = {}
    for m in methods:
        cells, per_task = [], {}
        for lr, bs in points:
            rs = [r for r in chosen if r["method"] == m and r["batch_size"] == bs
                  and math.isclose(r["learning_rate"], lr, rel_tol=1e-6)]
            if rs:
                cells.append({"learning_rate": lr, "batch_size": bs,
                              **_pct(_stats.interval([_plateau_acc(r) for r in rs]))})
            for r in rs:
                per_task.setdefault((r["split"], r["task"]), {})[(lr, bs)] = _plateau_acc(r)
        full = {t: v for t, v in per_task.items() if len(v) == len(points)}
        stds[m] = {t: float(np.std(list(v.values()))) for t, v in full.items()}
        result["methods"][m] = {
            "points": cells, "tasks": len(full),
            "std": _pct(_stats.interval(list(stds[m].values()))),
            "range": _pct(_stats.interval([np.ptp(list(v.values())) for v in full.values()]))}
    if focus not in stds or "scratch" not in stds:
        return result
    tasks = sorted(set(stds[focus]) & set(stds["scratch"]))
    ratio = _stats.ratio_interval([stds[focus][t] for t in tasks],
                                  [stds["scratch"][t] for t in tasks])
    target = TARGETS["sensitivity_ratio"]
    if ratio["mean"] is None:
        return result
    measured = (f"std ratio {_fmt_ratio(ratio)} over {len(points)} grid points at "
                f"N={s.get('ways')}, K={s.get('shots')}")
    return {**result, "ratio": ratio, "measured": measured,
            "verdict": _verdict(_stats.clears(ratio, target + 1e-9, above=False), measured,
                                f"high end <= {target:.2f}")}


# selection null, cost
def _selection(records, meta, profile):
    """Per setting: each method's units by seed and how often they equal
    front-k's; the random chains' rate (and its chance level)."""
    k = profile.get("k")
    out = {}
    for key, per_method in (meta.get("condense") or {}).items():
        units_total = ((meta.get("ancestries") or {}).get(key) or {}).get("units")
        front = list(range(k)) if k else None
        row = {}
        for m, c in per_method.items():
            if not isinstance(c, dict) or "units" not in c:
                continue
            by_seed = per_method.get(f"{m}_units_by_seed") or {"0": c["units"]}
            same = [u == front for u in by_seed.values()]
            row[m] = {"units_by_seed": by_seed, "front_fraction": sum(same) / len(same)}
        data, split, arch = key.split("/")
        chains = [r["units"] for r in records if r["method"] == "random"
                  and r["experiment"] == "main" and r["data"] == data
                  and f"s{r['split']}" == split and r["arch"] == arch]
        if chains:
            row["random"] = {"units_by_seed": {}, "chains": len(chains),
                             "distinct": len({tuple(u) for u in chains}),
                             "front_fraction": sum(u == front for u in chains) / len(chains),
                             "chance": (1 / math.comb(units_total, k)
                                        if units_total and k else None)}
        out[key] = row
    return out


def _cost(cost, runs):
    """v1's cost figures and verdicts, plus the runs' median training throughput."""
    ips = [r["images_per_second"] for r in runs if r.get("images_per_second")]
    return {**_report._cost(cost), "run_images_per_second": float(np.median(ips)) if ips else None}


def _claims(groups, focus):
    t = TARGETS
    f = _name(focus)
    rows = [
        ("1. Converge faster",
         f"{f} reaches {t['reach_fraction']:.0%} of scratch's plateau in <= 1/{t['speedup']:g} "
         "of scratch's steps (interval of the speedup)", lambda s: s["converge"]),
        ("2. Less sensitive", f"{f}'s std over the lr x batch grid <= "
         f"1/{1 / t['sensitivity_ratio']:g} of scratch's (high end)", lambda s: s["sensitivity"]),
        ("3. Perform better (vs scratch)", f"{f} - scratch, plateau accuracy over every N, K "
         "(low end > 0)",
         lambda s: _vs(s, "scratch")),
        ("3. Perform better (vs other initialisations)",
         f"{f} - front-k, back-k, weight selection (low end > 0 against each)",
         lambda s: {"measured": s["better"]["baselines_measured"],
                    "verdict": s["better"]["baselines_verdict"]}),
        ("3. Perform better (vs random chains)", f"{f} - random valid chains of k units "
         "(the selection's null; low end > 0)", lambda s: _vs(s, "random")),
        ("4. Fewer samples (few-shot)", f"{f} - scratch >= {t['few_shot_points']:+g} points at "
         "the smallest K (low end)", lambda s: s["samples"]["few_shot"]),
        ("4. Fewer samples (to match scratch)",
         f"{f} matches scratch's largest-K accuracy (low end >= {t['match_points']:g} point) at "
         f"K <= {t['samples_fraction']:g} x the largest K", lambda s: s["samples"]["match"]),
    ]
    return [{"claim": claim, "target": target,
             "archs": {key: {k: get(s)[k] for k in ("measured", "verdict")}
                       for key, s in groups.items()}}
            for claim, target, get in rows]


def _vs(s, other):
    v = s["better"]["vs"].get(other)
    if v is None:
        return {"measured": NOT_MEASURED, "verdict": NOT_MEASURED}
    return {"measured": f"{_fmt(v['pooled'], True)} points", "verdict": v["verdict"]}


# ------------------------------------------------------------------ markdown
def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows] + [""]


def _or(value, fmt="{}"):
    return NOT_MEASURED if value is None else fmt.format(value)


_HOW_TO_READ = (
    "Protocol v2. Every descendant of a setting has the same layers and recipe (AdamW, a "
    "constant learning rate after a short linear warm-up, label smoothing, random "
    "translation; horizontal flips only where the profile says so); only the "
    "initialisation differs. Each run trains one N-way K-shot episode of the novel classes "
    "(K training images per class) and is evaluated at log-spaced checkpoints on the "
    "episode's validation images (held-out images of its classes, never the test images) "
    "and on its test images. *Plateau accuracy*: the mean test accuracy from the plateau "
    "step on, the plateau step being the first checkpoint within one point (or one "
    "validation image) of the run's best validation accuracy; *at budget*: the last "
    "checkpoint. Every figure is `mean [low, high] (n=...)`: the mean over episodes and "
    "its 95% Student-t interval; a verdict compares a *paired* interval (the method and "
    "scratch on the same episode and seed) with its target and holds only when the "
    "interval clears it. *random chain*: a random valid chain of k ancestry units (the null "
    "of the selection); *linear probe*: closed-form ridge regression on one-hot targets, "
    "its penalty chosen on the validation images, on raw pixels, on the frozen ancestry's "
    "last-unit features or on the learngene's features (pooled)."
)


def markdown(summary, images):
    h = summary["header"]
    runs = h["runs"] or {}
    lines = ["# Learngene benchmark report (protocol v2)", ""]
    lines += _table(["", ""], [
        ("profile", _or(h["profile"])), ("command", _or(h["command"], "`{}`")),
        ("commit", _or(h["commit"])), ("backend", _or(h["backend"])),
        ("machine", _or(h["machine"])), ("started", _or(h["started"])),
        ("finished", _or(h["finished"])),
        ("schedule", f"{_or(h['schedule'])} after {_or(h['warmup_steps'])} warm-up steps"),
        ("default hyperparameters", _or(h["default"])),
        ("runs", f"{h['records']} recorded" + (f" of {runs['planned']} planned"
                                               if runs.get("planned") else "")),
    ])
    if images is None:
        lines += ["Plots were skipped: matplotlib is not installed "
                  "(`pip install 'keras-learngene[plots]'`).", ""]
    lines += ["## How to read", "", _HOW_TO_READ, ""]
    groups = list(summary["archs"])
    header = ["claim", "target"] + [f"{col} ({_group_name(g)})" for g in groups
                                    for col in ("measured", "verdict")]
    lines += ["## Summary of the four claims", ""]
    lines += _table(header, [[row["claim"], row["target"]]
                             + [row["archs"][g][c] for g in groups
                                for c in ("measured", "verdict")]
                             for row in summary["claims"]])
    lines += _context(summary)
    for key, s in summary["archs"].items():
        lines += _group_section(key, s, summary["focus"], images)
    return "\n".join(lines)


def _context(summary):
    lines = ["## Ancestries and the unit-transfer precondition", ""]
    lines += _table(["setting", "preset", "params", "base classes", "base-class test accuracy",
                     "training time", "novel classes"],
                    [(key, _or(i.get("preset")), _or(i.get("params"), "{:,}"),
                      _or(i.get("base_classes")), _or(i.get("base_test_accuracy"), "{:.2%}"),
                      _or(i.get("train_seconds"), "{:.0f} s"), _or(i.get("novel_classes")))
                     for key, i in summary["ancestries"].items()])
    for key, t in summary["transfer"].items():
        lines += [f"Unit transfer, {key}: a linear probe on each unit's pooled features minus "
                  f"the same probe on raw pixels, {t['ways']}-way novel episodes (points; the "
                  "ancestry can only pass on what beats pixels):", ""]
        shots = list(t["shots"])
        rows = [["pixels"] + [_fmt(_pct(t["shots"][k]["pixels"])) for k in shots]]
        names = [u["name"] for u in t["shots"][shots[0]]["units"]]
        for i, n in enumerate(names):
            rows.append([f"{n} - pixels"] + [_fmt(_pct(t["shots"][k]["units"][i]["minus_pixels"]),
                                                  True) for k in shots])
        lines += _table(["features"] + [f"K={k}" for k in shots], rows)
    lines += ["## Selection: which units each method chose", ""]
    rows = []
    for key, per in summary["selection"].items():
        for m, c in per.items():
            if m == "random":
                rows.append((key, _name(m), f"{c['chains']} chains, {c['distinct']} distinct",
                             f"{c['front_fraction']:.0%}",
                             _or(c["chance"], "chance {:.1%}")))
            else:
                rows.append((key, _name(m), ", ".join(f"seed {s}: {u}" for s, u in
                                                       c["units_by_seed"].items()),
                             f"{c['front_fraction']:.0%}", ""))
    lines += _table(["setting", "method", "units", "same as front-k", "note"], rows)
    lines += ["## Cost", ""]
    rows = []
    for key, c in summary["cost"].items():
        rows += [
            (key, "backend; median training img/s of the runs", _or(c.get("backend")),
             _or(c.get("run_images_per_second"), "{:.0f} img/s"), ""),
            (key, f"condensing ({_or(c.get('condense_method'))}) vs one ancestry epoch",
             f"{_or(c.get('condense_seconds'), '{:.1f} s')} vs "
             f"{_or(c.get('ancestry_epoch_seconds'), '{:.1f} s')}",
             _or(c["condense_epochs"], "{:.2f} epochs"), c["condense_verdict"]),
            (key, "library vs plain Keras throughput",
             f"{_or(c.get('library_images_per_second'), '{:.0f} img/s')} vs "
             f"{_or(c.get('plain_keras_images_per_second'), '{:.0f} img/s')}",
             _or(c["overhead_percent"], "{:.1f}% overhead"), c["overhead_verdict"]),
            (key, "learngene vs descendant size",
             f"{_or(c.get('learngene_bytes'), '{:,} B')} vs "
             f"{_or(c.get('descendant_bytes'), '{:,} B')}", _or(c["bytes_ratio"], "{:.0%}"),
             "(no target)"),
        ]
    return lines + _table(["setting", "figure", "measured", "ratio", "verdict"], rows)


def _group_section(key, s, focus, images):
    lines = [f"## {_group_name(key)}", ""]
    cells = s["cells"]
    lines += ["### Plateau accuracy (%) per N-way K-shot task", ""]
    lines += _table(["method"] + cells + ["params", "inherited"],
                    [[_name(m)] + [_fmt(s["table"][m].get(c, {}).get("plateau")) for c in cells]
                     + [_or((s["params"].get(m) or {}).get("params"), "{:,}"),
                        _or((s["params"].get(m) or {}).get("inherited_params"), "{:,}")]
                     for m in s["methods"]])
    lines += ["Accuracy at the step budget (last checkpoint), and the share of runs that "
              "reached their plateau before it (median plateau step / budget):", ""]
    trained = [m for m in s["methods"] if s["table"][m] and
               next(iter(s["table"][m].values()))["steps"]]
    lines += _table(["method"] + cells, [
        [_name(m)] + [(f"{_fmt(v['budget'])}; {v['reached']:.0%} at plateau, step "
                       f"{v['plateau_step']:g}/{v['steps']}") if (v := s["table"][m].get(c))
                      else "—" for c in cells] for m in trained])
    lines += _headstart_section(s)
    c = s["converge"]
    lines += ["### 1. Converge faster", "",
              "Per episode, scratch's steps to 99% of its plateau accuracy over the method's "
              "(geometric mean and interval over episodes):", ""]
    lines += _table(["method"] + cells, [[_name(m)] + [_fmt_ratio(c["per_cell"][x].get(m))
                                                       for x in cells]
                                         for m in s["methods"] if m not in PROBES])
    lines += [f"Verdict (every N, K pooled): {c['verdict']}.", ""]
    for x in cells:
        lines += _image(images, key, f"curves_{x}", f"{_group_name(key)}, {x}: accuracy vs step")
    sens = s["sensitivity"]
    lines += ["### 2. Less sensitive to hyperparameters", ""]
    if sens["methods"]:
        methods = list(sens["methods"])
        cellmap = {(m, p["learning_rate"], p["batch_size"]): p for m in methods
                   for p in sens["methods"][m]["points"]}
        points = sorted({k[1:] for k in cellmap})
        lines += [f"Plateau accuracy at N={sens['ways']}, K={sens['shots']} per grid point:", ""]
        lines += _table(["learning rate", "batch size"] + [_name(m) for m in methods],
                        [[f"{lr:g}", bs] + [_fmt(cellmap.get((m, lr, bs))) for m in methods]
                         for lr, bs in points])
        lines += _table(["method", "episodes with the whole grid", "std over the grid (points)",
                         "range (points)"],
                        [[_name(m), v["tasks"], _fmt(v["std"]), _fmt(v["range"])]
                         for m, v in sens["methods"].items()])
    lines += [f"Verdict: {sens['verdict']}.", ""]
    b = s["better"]
    lines += ["### 3. Perform better", "",
              f"{_name(focus)} minus each method, plateau accuracy in points (paired over "
              "episodes):", ""]
    lines += _table(["vs"] + cells + ["pooled", "verdict"],
                    [[_name(o)] + [_fmt(v["per_cell"].get(x), True) for x in cells]
                     + [_fmt(v["pooled"], True), v["verdict"]] for o, v in b["vs"].items()])
    lines += [f"Against front-k, back-k and weight selection: {b['baselines_verdict']}.", ""]
    if len(s.get("vs_scratch", {})) > 1:
        lines += ["Every method minus scratch, plateau accuracy in points (paired over "
                  "episodes; no verdict: the claims are the focus method's):", ""]
        lines += _table(["method"] + cells + ["pooled"],
                        [[_name(m)] + [_fmt(v["per_cell"].get(x), True) for x in cells]
                         + [_fmt(v["pooled"], True)] for m, v in s["vs_scratch"].items()])
    sm = s["samples"]
    lines += ["### 4. Fewer training samples", "",
              f"Few-shot: {sm['few_shot']['verdict']}.", ""]
    if sm["match"]["shots"]:
        lines += [f"Smallest K at which each method matches scratch at K="
                  f"{sm['match'].get('reference_shots')} (N={sm['match'].get('ways')}):", ""]
        lines += _table(["method", "K", "difference (points)"],
                        [[_name(m), v["shots"] if v else "never",
                          _fmt(v["interval"], True) if v else "—"]
                         for m, v in sm["match"]["shots"].items()])
    lines += [f"Verdict: {sm['match']['verdict']}.", ""]
    lines += _image(images, key, "shots", f"{_group_name(key)}: accuracy vs K")
    return lines


def _headstart_section(s):
    h = s.get("headstart") or {}
    cells, lines = s["cells"], []
    if h.get("step0"):
        lines += ["### Before training", "",
                  "Test accuracy (%) at step 0, before any training step (chance: 100/N):", ""]
        lines += _table(["method"] + cells, [[_name(m)] + [_fmt(v.get(c)) for c in cells]
                                             for m, v in h["step0"].items()])
    for key, what in (("vs_base", "its method's (the paper's inheritance of the same "
                                  "learngene)"),
                      ("vs_probe", "the linear probe on the ancestry's features")):
        if h.get(key):
            lines += [f"Each recipe's final test accuracy minus {what}, in points (paired over "
                      "episodes):", ""]
            lines += _table(["recipe", "minus"] + cells + ["pooled"],
                            [[_name(m), _name(v["other"])]
                             + [_fmt(v["per_cell"].get(c), True) for c in cells]
                             + [_fmt(v["pooled"], True)] for m, v in h[key].items()])
    return lines


def _image(images, key, name, caption):
    file = (images or {}).get(key, {}).get(name)
    return [f"![{caption}](images/{file})", ""] if file else []


# ------------------------------------------------------------------ plots
def plots(summary, meta, folder):
    """Writes the PNGs; `{group: {name: file}}`, or None without matplotlib."""
    from keras_learngene import plotting

    try:
        plt = plotting._pyplot()
    except ImportError:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    methods = sorted({m for s in summary["archs"].values() for m in s["methods"]})
    colors = {m: f"C{i % 10}" for i, m in enumerate(methods)}
    written = {}
    for key, s in summary["archs"].items():
        slug, files = key.replace("/", "_"), {}
        for cell, curves in s["curves"].items():
            if not curves:
                continue
            fig, ax = plt.subplots(figsize=(5.5, 3.6))
            for m, c in curves.items():
                ax.plot(c["steps"], 100 * np.asarray(c["mean"]), marker="o", ms=2,
                        color=colors[m], label=_name(m))
                ax.fill_between(c["steps"], 100 * np.asarray(c["low"]),
                                100 * np.asarray(c["high"]), color=colors[m], alpha=0.1)
            for m in ("probe_pixels",):
                v = s["table"].get(m, {}).get(cell)
                if v:
                    ax.axhline(v["plateau"]["mean"], color="grey", ls="--", lw=1, label=_name(m))
            if any(c["steps"] and c["steps"][0] == 0 for c in curves.values()):
                ax.set_xscale("symlog", linthresh=1)  # step 0 (before training) at 0
                ax.set_xlim(left=0)
            else:
                ax.set_xscale("log")
            ax.legend(fontsize=6)
            files[f"curves_{cell}"] = _save(plt, fig, ax, folder / f"curves_{slug}_{cell}.png",
                                            f"{_group_name(key)}, {cell} (mean, band 10-90%)",
                                            "optimizer step", "test accuracy (%)")
        fig, ax = plt.subplots(figsize=(5.5, 3.6))
        for m in s["methods"]:
            pts = [(int(c.split("K")[1]), v["plateau"]) for c, v in s["table"][m].items()
                   if c.startswith(f"N{s['ways'][0]}K")]
            if pts:
                ks = [k for k, _ in pts]
                ax.errorbar(ks, [v["mean"] for _, v in pts],
                            yerr=[[v["mean"] - (v["low"] if v["low"] is not None else v["mean"])
                                   for _, v in pts],
                                  [(v["high"] if v["high"] is not None else v["mean"]) - v["mean"]
                                   for _, v in pts]],
                            marker="o", ms=3, capsize=3, color=colors[m], label=_name(m))
        ax.set_xscale("log")
        ax.legend(fontsize=6)
        files["shots"] = _save(plt, fig, ax, folder / f"shots_{slug}.png",
                               f"{_group_name(key)}: plateau accuracy vs K (95% intervals)",
                               "K (training images per class)", "test accuracy (%)")
        written[key] = files
    return written


def _save(plt, fig, ax, path, title, xlabel, ylabel):
    ax.set_title(title, fontsize=9)
    ax.set(xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name
