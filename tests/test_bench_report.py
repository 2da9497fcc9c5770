"""The benchmark report on synthetic records whose answers are known (no training)."""

import json
import re

import numpy as np
import pytest

from keras_learngene import plotting
from keras_learngene.bench import _report

pytestmark = pytest.mark.once  # backend-independent (conftest.ONCE_BACKEND)

STEPS = 300
CHECKPOINTS = [10, 25, 50, 100, 200, 300]
SHOTS = [10, 50, 200, 1000]
SEEDS = [0, 1, 2]
GRID = {"learning_rate": [1e-4, 3e-4, 1e-3, 3e-3], "batch_size": [16, 64]}
PROFILE = {
    "name": "test", "archs": ["vit", "cnn"],
    "methods": ["scratch", "front", "back", "auto", "heur", "weight_selection"],
    "shots": SHOTS, "seeds": SEEDS, "steps": STEPS, "checkpoints": CHECKPOINTS,
    "default": {"learning_rate": 1e-3, "batch_size": 64}, "grid": GRID,
    "sensitivity_shots": 200, "sensitivity_methods": ["scratch", "auto"], "k": 3, "n_fresh": 3,
}
# ViT: mean final accuracy per method and K, and the step at which each curve plateaus.
VIT_FINAL = {
    "scratch": {10: 0.50, 50: 0.60, 200: 0.70, 1000: 0.80},
    "auto": {10: 0.70, 50: 0.80, 200: 0.78, 1000: 0.85},
    "front": {10: 0.65, 50: 0.75, 200: 0.77, 1000: 0.84},
    "back": {10: 0.72, 50: 0.78, 200: 0.79, 1000: 0.83},
    "weight_selection": {10: 0.60, 50: 0.70, 200: 0.75, 1000: 0.82},
}
PLATEAU = {"scratch": 300, "auto": 50, "front": 100, "back": 100, "weight_selection": 200}
# Sensitivity (ViT, K=200): mean final accuracy per learning rate (the same at both batch
# sizes); the default point (1e-3, 64) is the main run above.
VIT_GRID = {"scratch": {1e-4: 0.60, 3e-4: 0.70, 1e-3: 0.70, 3e-3: 0.80},
            "auto": {1e-4: 0.76, 3e-4: 0.78, 1e-3: 0.78, 3e-3: 0.80}}
# CNN: auto is only +9.8 points at K=10 and never reaches 99% of scratch's final accuracy.
CNN_FINAL = {"scratch": {10: 0.50, 50: 0.60, 200: 0.70, 1000: 0.80},
             "auto": {10: 0.598, 50: 0.65, 200: 0.70, 1000: 0.75}}


def run(arch, method, shots, seed, final, plateau, lr=1e-3, bs=64, experiment="main"):
    """A finished run whose accuracy rises linearly to `final` (+-1 point per seed) at
    step `plateau`."""
    accuracy = final + (seed - 1) * 0.01
    return {
        "run_id": f"{arch}/{experiment}/{method}/K{shots}/lr{lr:g}/bs{bs}/seed{seed}",
        "arch": arch, "experiment": experiment, "method": method, "shots": shots,
        "seed": seed, "learning_rate": lr, "batch_size": bs, "steps": STEPS,
        "checkpoints": [{"step": s, "accuracy": accuracy * min(1.0, s / plateau)}
                        for s in CHECKPOINTS],
        "final_accuracy": accuracy, "train_seconds": 30.0, "images_per_second": 600.0,
        "params": 53636, "inherited_params": 0 if method == "scratch" else 27808,
        "units": None if method == "scratch" else [0, 1, 2], "backend": "numpy",
    }


def make_records():
    records = [run("vit", m, k, seed, acc, PLATEAU[m])
               for m, per_k in VIT_FINAL.items() for k, acc in per_k.items() for seed in SEEDS]
    records += [run("vit", m, 200, seed, acc, PLATEAU[m], lr=lr, bs=bs,
                    experiment="sensitivity")
                for m, per_lr in VIT_GRID.items() for lr, acc in per_lr.items()
                for bs in GRID["batch_size"] for seed in SEEDS if (lr, bs) != (1e-3, 64)]
    records += [run("cnn", m, k, seed, acc, 300)
                for m, per_k in CNN_FINAL.items() for k, acc in per_k.items() for seed in SEEDS]
    return records


META = {
    "profile": PROFILE, "command": "klg bench --profile test", "commit": "abc1234",
    "backend": "numpy", "machine": "2 CPU cores", "started": "t0", "finished": "t1",
    "methods": {"front": {"title": "front-k"}, "back": {"title": "back-k"},
                "auto": {"title": "Auto Learngene"},
                "weight_selection": {"title": "weight selection"}},
    "ancestries": {"vit": {"preset": "vit_tiny", "params": 70790, "base_test_accuracy": 0.9427,
                           "train_seconds": 2186.0}},
    "condense": {"vit": {
        "auto": {"seconds": 16.4, "units": [0, 1, 2], "learngene_bytes": 221616,
                 "heatmap": {"matrix": np.eye(6)[:, :3].tolist(), "xlabel": "pseudo",
                             "ylabel": "unit", "colorbar": "linear_cka",
                             "boxes": [[0, 0], [1, 2], [2, 1]], "columns": [],
                             "title": None}},
        "front": {"seconds": 0.1, "units": [0, 1, 2], "heatmap": None,
                  "learngene_bytes": 221000},
        "auto_units_by_seed": {"0": [0, 1, 2], "1": [0, 1, 3]}}},
    "cost": {"vit": {"ancestry_epoch_seconds": 165.0, "condense_seconds": 16.5,
                     "library_images_per_second": 600.0, "plain_keras_images_per_second": 620.0,
                     "learngene_bytes": 221616, "descendant_bytes": 443232}},
}


def write_out(path, records, meta):
    path.mkdir(exist_ok=True)
    (path / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (path / "meta.json").write_text(json.dumps(meta))
    return path


@pytest.fixture(scope="module")
def summary():
    return _report.summarize(make_records(), META)


def test_summary_is_json(summary):
    assert json.loads(json.dumps(summary, allow_nan=False)) == summary


def test_perform_better(summary):
    vit = summary["archs"]["vit"]
    auto = vit["final"]["auto"]
    assert auto["10"]["mean"] == pytest.approx(0.70)
    assert auto["10"]["std"] == pytest.approx(0.01 * np.sqrt(2 / 3))  # ddof=0
    assert auto["10"]["n"] == 3
    assert vit["methods"] == ["scratch", "front", "back", "auto", "weight_selection"]
    vs = vit["better"]["vs"]
    assert vs["scratch"]["margins_points"] == pytest.approx(
        {"10": 20.0, "50": 20.0, "200": 8.0, "1000": 5.0})
    assert vs["scratch"]["mean_margin_points"] == pytest.approx(13.25)
    assert vs["scratch"]["verdict"] == (
        "holds: +5.0 points vs scratch at K=1000, target >= 0 at every K")
    assert vs["front"]["verdict"].startswith("holds: +1.0 points vs front-k at K=200")
    assert vs["back"]["margins_points"] == pytest.approx(
        {"10": -2.0, "50": 2.0, "200": -1.0, "1000": 2.0})
    assert vit["better"]["baselines_verdict"] == (
        "does not hold: -2.0 points vs back-k at K=10, target >= 0 at every K")
    assert vit["better"]["baselines_measured"] == (
        "front-k +1.0, back-k -2.0, weight selection +3.0")


def test_converge_faster(summary):
    converge = summary["archs"]["vit"]["converge"]
    reach = converge["per_shots"]["1000"]
    assert reach["threshold"] == pytest.approx(0.99 * 0.80)
    assert reach["steps"] == {"scratch": 300, "auto": 50, "front": 100, "back": 100,
                              "weight_selection": 200}
    assert reach["speedup"] == pytest.approx(
        {"scratch": 1.0, "auto": 6.0, "front": 3.0, "back": 3.0, "weight_selection": 1.5})
    assert set(converge["per_shots"]) == {"10", "50", "200", "1000"}
    assert (converge["shots"], converge["auto_step"], converge["target_step"]) == (1000, 50, 50)
    assert converge["verdict"] == (
        "holds: step 50 of 300 (6.0x faster than scratch) at K=1000, target <= 50")


def test_never_reaching_the_threshold(summary):
    cnn = summary["archs"]["cnn"]
    reach = cnn["converge"]["per_shots"]["1000"]
    assert reach["steps"]["auto"] is None and reach["speedup"]["auto"] is None
    assert cnn["converge"]["auto_step"] is None
    assert cnn["converge"]["verdict"] == (
        "does not hold: never reaches 79.2% in 300 steps at K=1000, target <= 50")
    assert cnn["samples"]["few_shot"]["verdict"] == (
        "does not hold: +9.8 points at K=10, target +15")
    assert cnn["samples"]["match"]["shots"] == {"scratch": 1000, "auto": None}
    assert cnn["samples"]["match"]["verdict"].startswith("does not hold: never reaches")
    # only the default grid point was run: no spread to measure
    assert cnn["sensitivity"]["verdict"] == "not measured"


def test_fewer_samples(summary):
    samples = summary["archs"]["vit"]["samples"]
    assert samples["few_shot"]["points"] == pytest.approx(20.0)
    assert samples["few_shot"]["verdict"] == "holds: +20.0 points at K=10, target +15"
    assert samples["match"]["reference"] == pytest.approx(0.80)
    assert samples["match"]["shots"] == {"scratch": 1000, "front": 1000, "back": 1000,
                                         "auto": 50, "weight_selection": 1000}
    assert samples["match"]["verdict"] == "holds: K=50 (scratch: K=1000), target K <= 50"


def test_less_sensitive(summary):
    sens = summary["archs"]["vit"]["sensitivity"]
    scratch, auto = sens["methods"]["scratch"], sens["methods"]["auto"]
    assert len(scratch["points"]) == len(auto["points"]) == sens["grid_size"] == 8
    default = [p for p in scratch["points"] if (p["learning_rate"], p["batch_size"]) == (1e-3, 64)]
    assert default[0]["mean"] == pytest.approx(0.70) and default[0]["n"] == 3  # the main run
    assert scratch["std"] == pytest.approx(np.sqrt(0.005))
    assert scratch["range"] == pytest.approx(0.20)
    assert auto["std"] == pytest.approx(np.sqrt(0.0002))
    assert sens["ratio"] == pytest.approx(0.2)
    assert sens["verdict"] == (
        "holds: std 1.4 vs 7.1 points (ratio 0.20) at K=200, target <= 0.33")


def test_less_sensitive_says_when_the_grid_is_partial():
    records = [r for r in make_records()
               if not (r["experiment"] == "sensitivity" and r["learning_rate"] == 1e-4)]
    sens = _report.summarize(records, META)["archs"]["vit"]["sensitivity"]
    assert sens["measured"].endswith(", only 6 of 8 grid points run")
    flat = [dict(r, final_accuracy=0.7) if r["method"] == "scratch" and r["shots"] == 200
            else r for r in make_records()]
    sens = _report.summarize(flat, META)["archs"]["vit"]["sensitivity"]
    assert sens["ratio"] is None and sens["verdict"].startswith("does not hold")
    assert "scratch's std is 0" in sens["measured"]


def test_cost_and_claims(summary):
    cost = summary["cost"]["vit"]
    assert cost["condense_epochs"] == pytest.approx(0.1)
    assert cost["condense_verdict"] == "holds: 0.10 epochs, target <= 1 epoch"
    assert cost["overhead_percent"] == pytest.approx(20 / 620 * 100)
    assert cost["overhead_verdict"] == "does not hold: 3.2%, target <= 3%"
    assert cost["bytes_ratio"] == pytest.approx(0.5)
    assert summary["cost"]["cnn"]["condense_verdict"] == "not measured"
    assert [row["claim"][:2] for row in summary["claims"]] == ["1.", "2.", "3.", "3.", "4.", "4."]
    assert all(set(row["archs"]) == {"vit", "cnn"} for row in summary["claims"])


def test_write_report(tmp_path):
    pytest.importorskip("matplotlib")
    out = write_out(tmp_path / "out", make_records(), META)
    path = _report.write_report(out)
    assert path == str(out / "report.md")
    text = (out / "report.md").read_text()
    images = re.findall(r"\]\((images/[^)]+)\)", text)
    assert set(images) == {f"images/curves_vit_K{k}.png" for k in SHOTS} | {
        f"images/curves_cnn_K{k}.png" for k in SHOTS} | {
        "images/shots_vit.png", "images/shots_cnn.png", "images/sensitivity_vit.png",
        "images/sensitivity_cnn.png", "images/heatmap_vit_auto.png"}
    for image in images:
        assert (out / image).read_bytes().startswith(b"\x89PNG")
    assert "| claim | target | measured (ViT) | verdict (ViT) | measured (CNN) |" in text
    assert "holds: +20.0 points at K=10, target +15" in text
    assert "does not hold: +9.8 points at K=10, target +15" in text
    assert "| 70.0 ± 0.8 |" in text
    assert "ddof=0" in text
    assert "not measured" in text  # the CNN's ancestry, condensing and cost


def test_missing_meta_and_no_matplotlib(tmp_path, monkeypatch):
    def no_pyplot():
        raise ImportError("no matplotlib")

    monkeypatch.setattr(plotting, "_pyplot", no_pyplot)
    meta = {"profile": {**PROFILE, "archs": ["vit"]}}
    records = [r for r in make_records() if r["arch"] == "vit" and r["method"] == "scratch"]
    out = write_out(tmp_path / "out", records, meta)
    text = open(_report.write_report(out)).read()
    assert "Plots were skipped" in text and "](images/" not in text
    assert not (out / "images").exists()
    summary = _report.summarize(records, meta)
    assert summary["ancestries"]["vit"] is None and summary["condense"]["vit"] == {}
    for row in summary["claims"]:
        assert row["archs"]["vit"] == {"measured": "not measured", "verdict": "not measured"}
    for section in ("## Ancestries", "## Condensing", "## Cost"):
        assert "not measured" in text.split(section)[1].split("##")[0]
    assert "| commit | not measured |" in text


def test_load_records_truncated_last_line(tmp_path):
    records = make_records()[:3]
    lines = [json.dumps(r) for r in records]
    (tmp_path / "runs.jsonl").write_text(
        lines[0] + "\n\n" + lines[1] + "\n" + lines[2] + "\n" + lines[2][:40])
    with pytest.warns(UserWarning, match="truncated"):
        assert _report.load_records(tmp_path) == records
    (tmp_path / "runs.jsonl").write_text(lines[0][:40] + "\n" + lines[1] + "\n")
    with pytest.raises(ValueError, match="line 1"):
        _report.load_records(tmp_path)
    assert _report.load_records(tmp_path / "missing") == []


def test_a_v1_report_says_it_is_one(tmp_path):
    out = write_out(tmp_path / "v1", make_records(), META)
    text = open(_report.write_report(out)).read()
    assert text.startswith("# Learngene benchmark report (protocol v1)")
    assert "now runs protocol v2" in text


# ------------------------------------------------------------------ protocol v2
from keras_learngene.bench import _report2, _stats  # noqa: E402


def test_t_quantiles_and_intervals():
    assert _stats.t_quantile(1) == pytest.approx(12.706, abs=1e-3)
    assert _stats.t_quantile(10) == pytest.approx(2.228, abs=1e-3)
    assert _stats.t_quantile(31) == pytest.approx(2.0395, abs=1e-3)  # the expansion
    assert _stats.t_quantile(100) == pytest.approx(1.9840, abs=1e-3)
    result = _stats.interval([1, 2, 3, 4])
    half = 3.1824 * np.std([1, 2, 3, 4], ddof=1) / 2
    assert result == pytest.approx({"mean": 2.5, "low": 2.5 - half, "high": 2.5 + half, "n": 4})
    assert _stats.interval([3.0]) == {"mean": 3.0, "low": None, "high": None, "n": 1}
    assert not _stats.clears(_stats.interval([3.0]), 0)  # no interval, no claim
    ratio = _stats.ratio_interval([2, 4, 8], [1, 2, 4])
    assert ratio == pytest.approx({"mean": 2.0, "low": 2.0, "high": 2.0, "n": 3})
    assert _stats.ratio_interval([2, 0], [1, 1])["n"] == 1  # a zero has no log


def test_log_checkpoints():
    steps = _stats.log_checkpoints(300)
    assert len(steps) == 12 and steps[-1] == 300 and steps[0] <= 15
    ratios = np.diff(np.log(steps))
    assert np.allclose(ratios, ratios.mean(), atol=0.1)  # evenly spaced in log


def test_plateau_rule():
    def curve(val, test=None):
        test = test or val
        return [{"step": s, "val_accuracy": v, "accuracy": t}
                for s, v, t in zip((10, 20, 40, 80, 160), val, test)]

    flat = _stats.plateau(curve([0.2, 0.5, 0.795, 0.80, 0.79], [0.3, 0.5, 0.7, 0.8, 0.9]))
    assert flat["step"] == 40 and flat["reached"]  # within one point of the best (0.80)
    assert flat["accuracy"] == pytest.approx(0.8)  # the test mean from step 40 on
    rising = _stats.plateau(curve([0.2, 0.4, 0.6, 0.7, 0.8]))
    assert rising["step"] == 160 and not rising["reached"]
    # with 10 validation images one image (0.1) is the tolerance
    coarse = _stats.plateau(curve([0.2, 0.4, 0.6, 0.7, 0.8]), val_examples=10)
    assert coarse["step"] == 80 and coarse["tol"] == pytest.approx(0.1)


def test_ridge_probe():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 50)) * 3

    def draw(n):
        y = np.arange(n) % 3
        return centres[y] + rng.normal(size=(n, 50)), y

    (xa, ya), (xv, yv), (xt, yt) = draw(9), draw(30), draw(60)
    dual = _stats.ridge_probe(xa, ya, xv, yv, xt, yt)  # n < d: the dual form
    assert dual["accuracy"] == 1.0 and dual["penalty"] in _stats._PENALTIES
    (xb, yb) = draw(300)
    primal = _stats.ridge_probe(xb, yb, xv, yv, xt, yt)  # n > d: the primal form
    assert primal["accuracy"] == 1.0
    for d in (7, 12):  # the primal (d <= n) and the dual (d > n) form: one estimator
        x, y1 = rng.normal(size=(8, d)), np.eye(2)[np.arange(8) % 2]
        (w, b), = _stats._fit_ridge(x, y1, (0.5,))
        xc, yc = x - x.mean(0), y1 - y1.mean(0)
        scale = (xc ** 2).sum(1).mean()
        expected = np.linalg.solve(xc.T @ xc + 0.5 * scale * np.eye(d), xc.T @ yc)
        np.testing.assert_allclose(w, expected, atol=1e-8)
        np.testing.assert_allclose(b, y1.mean(0) - x.mean(0) @ expected, atol=1e-8)
    assert _stats.ridge_probe(xa, ya, xv, yv, xt, yt) == dual  # deterministic


V2_CHECKPOINTS = (10, 20, 50, 100, 200, 500, 1000)
V2_PROFILE = {
    "version": 2, "name": "test", "focus": "auto", "k": 3,
    "data": [{"name": "glyphs", "splits": [0], "ways": [5], "shots": [1, 5], "tasks": 4,
              "steps": 1000, "checkpoints": list(V2_CHECKPOINTS)}],
    "ancestries": {"vit": {"preset": "vit_tiny"}},
    "methods": ["scratch", "random", "front", "auto"],
    "default": {"learning_rate": 1e-3, "batch_size": 32}, "schedule": "constant",
    "warmup_steps": 10, "grid": {"learning_rate": [1e-3, 3e-3], "batch_size": [32]},
    "sensitivity": {"data": "glyphs", "ways": 5, "shots": 5, "tasks": 4,
                    "methods": ["scratch", "auto"]},
}


def v2_run(method, shots, task, plateau, reach, lr=1e-3, experiment="main", units=None):
    """A run whose validation and test accuracy rise linearly to `plateau` at step `reach`."""
    curve = [{"step": s, "accuracy": plateau * min(1.0, s / reach),
              "val_accuracy": plateau * min(1.0, s / reach)} for s in V2_CHECKPOINTS]
    return {"run_id": f"{method}/{experiment}/K{shots}/t{task}/lr{lr:g}", "data": "glyphs",
            "split": 0, "arch": "vit", "experiment": experiment, "method": method, "ways": 5,
            "shots": shots, "task": task, "seed": task, "learning_rate": lr, "batch_size": 32,
            "steps": 1000, "checkpoints": curve, "final_accuracy": curve[-1]["accuracy"],
            "plateau": _stats.plateau(curve), "images_per_second": 500.0, "params": 100,
            "inherited_params": 0 if method == "scratch" else 60, "units": units,
            "backend": "numpy"}


def v2_records():
    """Known answers: auto = scratch + 20 +- 1 points at K=1 (+5 +- 1 at K=5) and reaches
    scratch's plateau 10x sooner; front = auto - 2; random = auto - 3 +- 5; the pixel
    probe is at 90%; at lr 3e-3 scratch loses 10 points, auto 1 (std ratio 0.1)."""
    records = []
    for shots, base, gain in ((1, 0.50, 0.20), (5, 0.70, 0.05)):
        for t in range(4):
            sign = 1 if t % 2 == 0 else -1
            scratch = base + 0.02 * t
            auto = scratch + gain + 0.01 * sign
            records += [v2_run("scratch", shots, t, scratch, 500),
                        v2_run("auto", shots, t, auto, 50, units=[0, 1, 2]),
                        v2_run("front", shots, t, auto - 0.02, 50, units=[0, 1, 2]),
                        v2_run("random", shots, t, auto - 0.03 + 0.05 * sign, 100,
                               units=[0, 1, 2] if t == 0 else [1, 3, 5])]
            probe = dict(v2_run("probe_pixels", shots, t, 0.9, 1), experiment="probe",
                         steps=0, checkpoints=[], final_accuracy=0.9)
            probe["plateau"] = {"step": 0, "accuracy": 0.9, "reached": True}
            records.append(probe)
            if shots == 5:
                records += [v2_run("scratch", 5, t, scratch - 0.10, 500, lr=3e-3,
                                   experiment="sensitivity"),
                            v2_run("auto", 5, t, auto - 0.01, 50, lr=3e-3,
                                   experiment="sensitivity")]
    return records


V2_META = {
    "profile": V2_PROFILE, "backend": "numpy", "commit": "abc1234",
    "ancestries": {"glyphs/s0/vit": {"preset": "vit_tiny", "units": 6, "params": 1000,
                                     "base_classes": 300, "base_test_accuracy": 0.6}},
    "condense": {"glyphs/s0/vit": {"auto": {"units": [0, 1, 2], "seconds": 2.0},
                                   "auto_units_by_seed": {"0": [0, 1, 2], "1": [0, 1, 3]}}},
    "transfer": {"glyphs/s0/vit": {"ways": 5, "shots": {"1": {
        "pixels": {"mean": 0.7, "low": 0.6, "high": 0.8, "n": 4},
        "units": [{"name": "unit 0", "accuracy": {"mean": 0.75, "low": 0.7, "high": 0.8, "n": 4},
                   "minus_pixels": {"mean": 0.05, "low": 0.01, "high": 0.09, "n": 4}}]}}}},
    "cost": {"glyphs/s0/vit": {"backend": "numpy", "condense_seconds": 2.0,
                               "ancestry_epoch_seconds": 20.0}},
}


@pytest.fixture(scope="module")
def v2():
    return _report.summarize(v2_records(), V2_META)


def test_v2_summary_is_json_and_dispatched(v2):
    assert v2["version"] == 2 and list(v2["archs"]) == ["glyphs/vit"]
    assert json.loads(json.dumps(v2, allow_nan=False)) == v2


def test_v2_few_shot_interval(v2):
    few = v2["archs"]["glyphs/vit"]["samples"]["few_shot"]
    half = 3.1824 * np.std([21, 19, 21, 19], ddof=1) / 2
    assert few["interval"] == pytest.approx({"mean": 20.0, "low": 20 - half, "high": 20 + half,
                                             "n": 4})
    assert few["verdict"].startswith("holds: +20.0 [+18.2, +21.8] (n=4) points at N=5, K=1")


def test_v2_converge_speedup(v2):
    c = v2["archs"]["glyphs/vit"]["converge"]
    assert c["pooled"] == pytest.approx({"mean": 10.0, "low": 10.0, "high": 10.0, "n": 8,
                                         "never": 0})
    assert c["verdict"].startswith("holds: 10.00x [10.00, 10.00] (n=8)")
    assert c["per_cell"]["N5K1"]["random"]["mean"] == pytest.approx(5.0)


def test_v2_better_null_and_probes(v2):
    vs = v2["archs"]["glyphs/vit"]["better"]["vs"]
    assert vs["scratch"]["pooled"]["mean"] == pytest.approx(12.5)
    assert vs["scratch"]["verdict"].startswith("holds")
    assert vs["front"]["pooled"] == pytest.approx({"mean": 2.0, "low": 2.0, "high": 2.0,
                                                   "n": 8})
    assert vs["random"]["pooled"]["mean"] == pytest.approx(3.0)
    assert vs["random"]["verdict"].startswith("does not hold")  # +3 +- 5: the interval spans 0
    assert vs["probe_pixels"]["pooled"]["mean"] < 0  # the linear model is better here
    table = v2["archs"]["glyphs/vit"]["table"]
    assert table["probe_pixels"]["N5K1"]["plateau"]["mean"] == pytest.approx(90.0)
    assert table["scratch"]["N5K1"]["reached"] == 1.0


def test_v2_every_method_minus_scratch(v2):
    """front = scratch + gain - 2 points: +18 at K=1, +3 at K=5, +10.5 pooled, whatever
    the focus method is."""
    minus = v2["archs"]["glyphs/vit"]["vs_scratch"]
    assert "scratch" not in minus and {"auto", "front", "random", "probe_pixels"} <= set(minus)
    assert minus["front"]["per_cell"]["N5K1"]["mean"] == pytest.approx(18.0)
    assert minus["front"]["per_cell"]["N5K5"]["mean"] == pytest.approx(3.0)
    assert minus["front"]["pooled"]["mean"] == pytest.approx(10.5)
    assert minus["auto"]["pooled"]["mean"] == pytest.approx(
        v2["archs"]["glyphs/vit"]["better"]["vs"]["scratch"]["pooled"]["mean"])


def test_v2_match_and_sensitivity(v2):
    match = v2["archs"]["glyphs/vit"]["samples"]["match"]
    assert match["shots"]["auto"]["shots"] == 5  # at K=1 the low end is -1.8 points
    assert match["shots"]["scratch"]["shots"] == 5
    assert match["verdict"].startswith("does not hold: K=5")
    sens = v2["archs"]["glyphs/vit"]["sensitivity"]
    assert sens["ratio"] == pytest.approx({"mean": 0.1, "low": 0.1, "high": 0.1, "n": 4})
    assert sens["methods"]["scratch"]["std"]["mean"] == pytest.approx(5.0)
    assert sens["verdict"].startswith("holds")


def test_v2_selection_null(v2):
    sel = v2["selection"]["glyphs/s0/vit"]
    assert sel["auto"]["front_fraction"] == 0.5
    assert sel["random"]["front_fraction"] == pytest.approx(2 / 8)
    assert sel["random"]["chance"] == pytest.approx(1 / 20)  # C(6, 3)


def test_v2_write_report(tmp_path):
    pytest.importorskip("matplotlib")
    out = write_out(tmp_path / "v2", v2_records(), V2_META)
    text = open(_report.write_report(out)).read()
    assert text.startswith("# Learngene benchmark report (protocol v2)")
    assert "+20.0 [+18.2, +21.8] (n=4)" in text and "unit 0 - pixels" in text
    assert "random chain (null)" in text and "linear probe: pixels" in text
    assert "Every method minus scratch" in text
    assert re.search(r"\| front(-k)? \| \+18\.0 \[\+16\.2, \+19\.8\] \(n=4\) \| \+3\.0 ", text)
    images = re.findall(r"\]\((images/[^)]+)\)", text)
    assert "images/curves_glyphs_vit_N5K1.png" in images
    for image in images:
        assert (out / image).read_bytes().startswith(b"\x89PNG")
    assert len(_report2.summarize(v2_records(), V2_META)["claims"]) == 7
