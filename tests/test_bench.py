"""The benchmark runner: planning, step budgets, checkpoints, compiled-model
reuse, resuming, cost figures, and the quick profile through `klg bench`."""

import dataclasses
import json
import os

import keras
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import TINY_BUILDERS, tiny_data

from keras_learngene import bench, training
from keras_learngene.bench import _cost, _runner
from keras_learngene.cli import cli

# A profile small enough for every backend: tiny ancestries on the shipped subset.
TINY = dataclasses.replace(
    bench.PROFILES["quick"],
    name="tiny",
    ancestries={
        "vit": {"preset": "vit_tiny", "epochs": 1,
                "overrides": {"patch_size": 7, "num_layers": 3, "hidden_dim": 8,
                              "num_heads": 2, "mlp_dim": 16}},
    },
    methods=("scratch", "front", "back", "auto", "weight_selection", "ancestry"),
    k=1, n_fresh=1, shots=(10,), seeds=(0,), steps=4, checkpoints=(2, 4),
    grid={"learning_rate": (1e-3, 3e-3), "batch_size": (16,)}, sensitivity_shots=10,
    probe_size=128, cost_steps=2,
)


def test_plan_covers_every_method_shot_seed_and_grid_point_once():
    p = bench.PROFILES["full"]
    runs = bench.plan_runs(p)
    ids = [r["run_id"] for r in runs]
    assert len(ids) == len(set(ids))
    main = [r for r in runs if r["experiment"] == "main"]
    assert len(main) == len(p.ancestries) * len(p.methods) * len(p.shots) * len(p.seeds) == 168
    sens = [r for r in runs if r["experiment"] == "sensitivity"]
    # 8 grid points, the default one already covered by the main runs at K=200
    assert len(sens) == len(p.ancestries) * 7 * len(p.sensitivity_methods) * len(p.seeds)
    assert all(r["shots"] == p.sensitivity_shots for r in sens)
    assert runs.index(sens[0]) == len(main)  # every main run comes first
    short = dataclasses.replace(p, ancestries={
        "vit": p.ancestries["vit"], "cnn": {**p.ancestries["cnn"], "shots": (10,),
                                            "sensitivity": False}})
    runs = bench.plan_runs(short)
    assert {r["shots"] for r in runs if r["arch"] == "cnn"} == {10}
    assert {r["arch"] for r in runs if r["experiment"] == "sensitivity"} == {"vit"}


def test_step_batches_give_exact_budget_from_reshuffled_passes():
    x, y = tiny_data(n=10)
    batches = training.AugmentedBatches(x, y, 3, batch_size=4, augment=False, steps=7)
    assert len(batches) == 7 and batches.examples == 28
    seen = np.concatenate([batches._indices(i) for i in range(7)])
    assert len(seen) == 28
    for start in (0, 10, 20):  # every pass over the 10 examples is a permutation
        assert sorted(seen[start:start + 10][: 28 - start]) == sorted(
            set(seen[start:start + 10][: 28 - start]))
    assert sorted(seen[:10]) == list(range(10)) and sorted(seen[10:20]) == list(range(10))
    assert all(b[0].shape[0] == 4 for b in (batches[i] for i in range(7)))


def test_checkpoints_evaluate_the_weights_of_that_step():
    x, y = tiny_data(n=64)
    model = TINY_BUILDERS["vgg"](3)
    training.compile_model(model, total_steps=6, jit_compile=False)
    batches = training.AugmentedBatches(x, y, 3, batch_size=16, augment=False, steps=6)
    cb = _runner._Checkpoints((3, 6), x, y)
    model.fit(batches, epochs=1, callbacks=[cb], verbose=0)
    assert [c["step"] for c in cb.accuracy] == [3, 6]
    # the last checkpoint saw the final weights (on JAX too, where fit keeps its own state)
    assert cb.accuracy[-1]["accuracy"] == pytest.approx(training.evaluate(model, x, y), abs=1e-4)


def test_compiled_model_reuse_resets_weights_and_optimizer():
    x, y = tiny_data(n=64)
    compiled = _runner._CompiledModels(steps=4)
    first, traced = compiled.get(TINY_BUILDERS["vit"](3), 1e-3, 16)
    assert traced
    first.fit(training.AugmentedBatches(x, y, 3, 16, augment=False, steps=4), verbose=0)
    assert int(keras.ops.convert_to_numpy(first.optimizer.iterations)) == 4
    keras.utils.set_random_seed(1)
    other = TINY_BUILDERS["vit"](3)
    again, traced = compiled.get(other, 1e-3, 16)
    assert again is first and not traced
    assert int(keras.ops.convert_to_numpy(again.optimizer.iterations)) == 0
    for a, b in zip(again.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert all(not np.any(keras.ops.convert_to_numpy(v)) for v in again.optimizer.variables)
    _, traced = compiled.get(TINY_BUILDERS["vit"](3), 3e-3, 16)
    assert traced  # another learning rate is another compiled model


def test_plain_twins_match_the_library_descendants_parameter_for_parameter():
    vit = keras.saving.load_model(os.path.join(os.path.dirname(bench.__file__), "..",
                                               "assets", "ancestry_vit_tiny.keras"))
    from keras_learngene import condense, inherit

    for ancestry in (vit, keras_learngene_vgg_iso()):
        descendant = inherit(condense(ancestry, num_units=2, method="front"), 2, num_classes=4)
        twin = _cost.plain_twin(ancestry, 4, 4)
        assert twin.count_params() == descendant.count_params()
        assert twin.output_shape == descendant.output_shape
    assert _cost.plain_twin(TINY_BUILDERS["resnet"](3), 2, 4) is None


def keras_learngene_vgg_iso():
    from keras_learngene.models import build_preset

    return build_preset("vgg_iso", filters=(8, 8, 8, 8), stem_filters=8, num_classes=6)


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    """One benchmark per test session: on the torch pass (the fastest here
    for tiny models, which it runs eagerly) the quick profile through
    `klg bench`, the CI smoke test of both architectures and every method; on
    the other backends a tinier ViT-only profile."""
    out = tmp_path_factory.mktemp("bench")
    if keras.backend.backend() != "torch":
        bench.run_bench(TINY, out, log=open(os.devnull, "w"))
        return out, TINY, None
    result = CliRunner().invoke(cli, ["bench", "--profile", "quick", "--out", str(out),
                                      "--json"])
    assert result.exit_code == 0, result.output
    return out, bench.PROFILES["quick"], json.loads(result.stdout[result.stdout.index("{"):])


def test_benchmark_records_every_planned_run(bench_run):
    out, profile, _ = bench_run
    records = bench.load_records(out)
    planned = bench.plan_runs(profile)
    assert sorted(r["run_id"] for r in records) == sorted(r["run_id"] for r in planned)
    shots = {run["run_id"]: run["shots"] for run in planned}
    for r in records:
        assert [c["step"] for c in r["checkpoints"]] == list(profile.checkpoints)
        assert 0.0 <= r["final_accuracy"] <= 1.0
        assert r["final_accuracy"] == r["checkpoints"][-1]["accuracy"]
        assert r["train_examples"] == 4 * shots[r["run_id"]] and r["test_examples"] == 600
        assert r["images_per_second"] > 0 and r["backend"] == keras.backend.backend()
    k = profile.k
    for arch in profile.ancestries:
        by = {r["method"]: r for r in records
              if r["experiment"] == "main" and r["arch"] == arch and r["shots"] == 10}
        # one descendant architecture for every method but the whole ancestry
        assert len({by[m]["params"] for m in profile.methods if m != "ancestry"}) == 1
        assert by["scratch"]["inherited_params"] == 0 and by["scratch"]["units"] is None
        units = by["ancestry"]["units"]
        assert by["front"]["units"] == units[:k] and by["back"]["units"] == units[-k:]
        # the registered method: a learngene of the first k units (front-k's at equal widths)
        assert by["weight_selection"]["units"] == list(range(k))
        assert by["ancestry"]["params"] > by["front"]["params"]
        assert 0 < by["auto"]["inherited_params"] < by["auto"]["params"]
        assert len(by["auto"]["units"]) == k


def test_report_has_every_claim_and_its_plots(bench_run):
    out, profile, payload = bench_run
    report = (out / "report.md").read_text()
    for heading in ("Converge faster", "Less sensitive", "Perform better", "Fewer samples"):
        assert heading.lower() in report.lower()
    images = [line.split("(images/")[1].split(")")[0] for line in report.splitlines()
              if "(images/" in line]
    assert any(name.startswith("heatmap_") for name in images)
    for name in images:
        assert (out / "images" / name).read_bytes().startswith(b"\x89PNG")
    if payload is not None:  # the CLI's --json summary
        assert payload["report"] == str(out / "report.md")
        assert set(payload["summary"]["archs"]) == set(profile.ancestries)
        rows = payload["summary"]["claims"]
        assert [row["claim"][0] for row in rows] == ["1", "2", "3", "3", "4", "4"]
        for row in rows:
            for arch in profile.ancestries:
                verdict = row["archs"][arch]["verdict"]
                assert verdict.startswith(("holds", "does not hold")), (row["claim"], verdict)


def test_meta_has_ancestries_condensing_and_costs(bench_run):
    out, profile, _ = bench_run
    meta = json.loads((out / "meta.json").read_text())
    assert meta["profile"] == profile.to_json()
    assert meta["backend"] == keras.backend.backend()
    planned = len(bench.plan_runs(profile))
    assert meta["runs"] == {"planned": planned, "done": planned}
    for arch, spec in profile.ancestries.items():
        units = spec["overrides"].get("num_layers") or len(spec["overrides"]["filters"])
        assert 0 <= meta["ancestries"][arch]["base_test_accuracy"] <= 1
        assert meta["ancestries"][arch]["units"] == units
        assert set(meta["condense"][arch]) >= {"auto", "front", "back"} | (
            {"heur"} if "heur" in profile.methods else set())
        auto = meta["condense"][arch]["auto"]
        assert np.asarray(auto["heatmap"]["matrix"]).shape == (units, profile.k)
        assert len(auto["units"]) == profile.k
        cost = meta["cost"][arch]
        assert cost["ancestry_epoch_seconds"] > 0 and cost["condense_seconds"] > 0
        assert cost["descendant_bytes"] > cost["learngene_bytes"] > 0
        assert cost["library_images_per_second"] > 0 and cost["plain_keras_images_per_second"] > 0
        assert cost["plain_keras_params"] == cost["descendant_params"]


def test_resume_recomputes_nothing_and_refuses_another_profile(bench_run):
    out, profile, _ = bench_run
    before = (out / "runs.jsonl").read_text()
    log = _Log()
    bench.run_bench(profile, out, log=log, report=False)
    assert (out / "runs.jsonl").read_text() == before
    assert f"{len(bench.plan_runs(profile))} already done, 0 to go" in log.text
    other = dataclasses.replace(profile, steps=6, checkpoints=(3, 6))
    with pytest.raises(ValueError, match="another benchmark configuration"):
        bench.run_bench(other, out, report=False)


def test_interrupted_benchmark_continues_where_it_stopped(bench_run, tmp_path):
    out, profile, _ = bench_run
    records = (out / "runs.jsonl").read_text().splitlines()
    (tmp_path / "runs.jsonl").write_text("\n".join(records[:-2]) + "\n" + records[-2][:40])
    (tmp_path / "meta.json").write_text((out / "meta.json").read_text())
    log = _Log()
    bench.run_bench(profile, tmp_path, cache=out / "cache", log=log, report=False)
    assert f"{len(records) - 2} already done, 2 to go" in log.text
    assert "training the" not in log.text and "condensing" not in log.text  # all cached
    done = bench.load_records(tmp_path)
    assert sorted(r["run_id"] for r in done) == sorted(json.loads(r)["run_id"] for r in records)


class _Log:
    def __init__(self):
        self.text = ""

    def write(self, s):
        self.text += s

    def flush(self):
        pass


def test_cli_bench_report_only_needs_results(tmp_path):
    result = CliRunner().invoke(cli, ["bench", "--report-only", "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "holds no benchmark results" in result.output




def test_cli_report_only_rewrites_the_report_and_prints_the_claims(bench_run):
    out, _, _ = bench_run
    (out / "report.md").unlink()
    result = CliRunner().invoke(cli, ["bench", "--report-only", "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[0] == f"report: {out / 'report.md'}" and (out / "report.md").is_file()
    claims = [line for line in lines[1:] if line[:2] in ("1.", "2.", "3.", "4.")]
    assert len(claims) == 6 and all("vit: " in line for line in claims)
