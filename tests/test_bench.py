"""The benchmark runner (protocol v2): planning, checkpoints and budgets, the
schedule, episodes and their validation split, compiled-model reuse,
resuming, cost and transfer figures, and the quick profile through `klg bench`."""

import dataclasses
import json
import os

import keras
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import TINY_BUILDERS, tiny_data

from keras_learngene import bench, datasets, plugins, training
from keras_learngene.bench import _cost, _runner
from keras_learngene.cli import cli

pytest.importorskip("PIL")  # the glyphs are rendered with Pillow

# A profile small enough for every backend: one tiny ViT on the quick profile's glyphs.
TINY = dataclasses.replace(
    bench.PROFILES["quick"],
    name="tiny",
    data=(bench.Data("glyphs", shots=(1, 5), tasks=2, steps=4, ancestry_epochs=1,
                     ancestry_examples=256, options=bench.PROFILES["quick"].data[0].options),),
    ancestries={"vit": {"preset": "vit_tiny",
                        "overrides": {"patch_size": 7, "num_layers": 3, "hidden_dim": 8,
                                      "num_heads": 2, "mlp_dim": 16}}},
    methods=("scratch", "random", "front", "auto", "ancestry"),
    k=1, grid={"learning_rate": (1e-3, 3e-3), "batch_size": (16,)},
    probe_size=128, cost_steps=2,
)


def test_full_and_gpu_profiles_follow_protocol_v2():
    for name in ("full", "gpu", "pilot"):
        p = bench.PROFILES[name]
        assert p.version == 2 and p.schedule == "constant"
        for d in p.data:
            # the pilot's 60 steps hold 11 distinct log-spaced steps
            assert len(d.checkpoints) >= (11 if name == "pilot" else 12)
            assert d.checkpoints[-1] == d.steps
            assert d.checkpoints[0] <= 0.05 * d.steps  # the first within 5% of the budget
            assert list(d.checkpoints) == sorted(set(d.checkpoints))
            assert d.flip == (d.name == "fashion_mnist")  # no mirrored characters
    for name in ("full", "gpu"):
        p = bench.PROFILES[name]
        glyphs = p.data_of("glyphs")
        assert {n for n, _ in glyphs.tasks_of()} == {5, 20} and glyphs.tasks >= 10
        assert {k for n, k in glyphs.tasks_of() if n == 5} == {1, 5, 10, 20}
        assert "fashion_mnist" in [d.name for d in p.data]
        assert {"scratch", "random", "front", "auto"} <= set(p.methods)
    gpu = bench.PROFILES["gpu"]
    assert len(gpu.data_of("glyphs").splits) == 3 and set(bench.METHODS) <= set(gpu.methods)
    assert len(bench.plan_runs(bench.PROFILES["gpu"])) > len(bench.plan_runs(
        bench.PROFILES["full"]))


def test_family_profile_shares_the_full_profiles_glyph_ancestries():
    family, full = bench.PROFILES["family"], bench.PROFILES["full"]
    g, f = family.data_of("glyphs"), full.data_of("glyphs")
    # the ancestry recipe (`Bench.ancestry`) reads these: equal, so one --cache serves both
    assert (g.options, g.splits, g.ancestry_epochs, g.flip, g.ancestry_examples) == \
        (f.options, f.splits, f.ancestry_epochs, f.flip, f.ancestry_examples)
    assert (g.steps, g.checkpoints, g.tasks) == (f.steps, f.checkpoints, f.tasks)
    assert {"auto", "auto_distill", "tleg", "sws", "heur"} <= set(family.methods)
    assert set(family.methods_of("vit")) >= {"auto", "auto_distill", "tleg", "sws"}
    assert {(r["arch"], r["experiment"]) for r in bench.plan_runs(family)} == {
        ("vit", "probe"), ("vit", "main"), ("cnn", "probe"), ("cnn", "main")}


@pytest.mark.once
def test_every_methods_descendant_is_as_deep_as_scratch():
    """The runner asks every strategy for scratch's depth k + n_fresh (`stack` adds
    depth - k new units to the k inherited ones; TLEG's builds every unit anew; SWS's
    copies each of its S stages over its share of the depth)."""
    depth, counts = 6, {"stack": 3, "linear_expansion": 2, "stage_sharing": 3}
    for name, units in counts.items():
        slots = plugins.get_strategy(name).layout_at_depth(units, depth)
        assert len(slots) == depth, name
    assert plugins.get_strategy("stack").new_units(2, depth) == 4
    assert plugins.get_strategy("linear_expansion").new_units(2, depth) == 6
    assert plugins.get_strategy("stage_sharing").new_units(3, depth) == 3
    with pytest.raises(ValueError, match="depth=2 .* must be at least 3"):
        plugins.get_strategy("stack").layout_at_depth(3, 2)


def test_plan_covers_every_task_method_and_grid_point_once():
    p = bench.PROFILES["full"]
    runs = bench.plan_runs(p)
    ids = [r["run_id"] for r in runs]
    assert len(ids) == len(set(ids))
    main = [r for r in runs if r["experiment"] == "main"]
    expected = sum(len(d.splits) * len(d.tasks_of()) * d.tasks * len(p.methods_of(arch))
                   for d in p.data for arch in p.archs_of(d.name))
    assert len(main) == expected
    probes = [r for r in runs if r["experiment"] == "probe"]
    assert len(probes) == sum(len(d.splits) * len(d.tasks_of()) * d.tasks * 3
                              for d in p.data for _ in p.archs_of(d.name))
    assert p.archs_of("fashion_mnist") == ["cnn"]
    assert "heur" not in p.methods_of("vit") and "heur" in p.methods_of("cnn")
    sens = [r for r in runs if r["experiment"] == "sensitivity"]
    default = (p.default["learning_rate"], p.default["batch_size"])
    points = len(p.grid["learning_rate"]) * len(p.grid["batch_size"])
    points -= default[0] in p.grid["learning_rate"] and default[1] in p.grid["batch_size"]
    s = p.sensitivity
    assert len(sens) == len(p.archs_of(s["data"])) * points * s["tasks"] * len(s["methods"])
    assert all((r["ways"], r["shots"]) == (s["ways"], s["shots"]) for r in sens)
    assert runs.index(sens[0]) == len(main) + len(probes)  # the grid comes last
    assert all(r["seed"] == r["task"] for r in runs)


def test_constant_schedule_and_flip_switch():
    model = TINY_BUILDERS["vit"](3)
    training.compile_model(model, learning_rate=1e-3, total_steps=100, warmup_fraction=0.1,
                           schedule="constant")
    lr = model.optimizer._learning_rate
    assert [float(lr(s)) for s in (10, 50, 99, 1000)] == pytest.approx([1e-3] * 4)
    assert float(lr(0)) < 1e-4
    with pytest.raises(ValueError, match="schedule"):
        training.compile_model(model, schedule="linear")
    x, y = tiny_data(n=8)
    for flip, layers in ((True, 2), (False, 1)):
        batches = training.AugmentedBatches(x, y, 3, batch_size=4, flip=flip)
        assert len(batches.augment.layers) == layers


def test_step_batches_give_exact_budget_from_reshuffled_passes():
    x, y = tiny_data(n=10)
    batches = training.AugmentedBatches(x, y, 3, batch_size=4, augment=False, steps=7)
    assert len(batches) == 7 and batches.examples == 28
    seen = np.concatenate([batches._indices(i) for i in range(7)])
    assert sorted(seen[:10]) == list(range(10)) and sorted(seen[10:20]) == list(range(10))


def test_checkpoints_evaluate_validation_and_test_of_that_step():
    x, y = tiny_data(n=64)
    model = TINY_BUILDERS["vgg"](3)
    training.compile_model(model, total_steps=6, jit_compile=False)
    batches = training.AugmentedBatches(x, y, 3, batch_size=16, augment=False, steps=6)
    before = training.evaluate(model, x[20:], y[20:])
    cb = _runner._Checkpoints((0, 3, 6), x[:20], y[:20], x[20:], y[20:])
    model.fit(batches, epochs=1, callbacks=[cb], verbose=0)
    assert [c["step"] for c in cb.accuracy] == [0, 3, 6]
    assert cb.accuracy[0]["accuracy"] == pytest.approx(before, abs=1e-4)  # before any step
    # the last checkpoint saw the final weights (on JAX too, where fit keeps its own state)
    last = cb.accuracy[-1]
    assert last["accuracy"] == pytest.approx(training.evaluate(model, x[20:], y[20:]), abs=1e-4)
    assert last["val_accuracy"] == pytest.approx(training.evaluate(model, x[:20], y[:20]),
                                                 abs=1e-4)


@pytest.mark.graph  # compiled as the library compiles (conftest)
def test_compiled_model_reuse_resets_weights_and_optimizer():
    x, y = tiny_data(n=64)
    compiled = _runner._CompiledModels(steps=4, schedule="constant", warmup_steps=1)
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
    _, traced = compiled.get(TINY_BUILDERS["vit"](3), 3e-3, 16)
    assert traced  # another learning rate is another compiled model


def test_held_out_split_validates_on_images_the_test_never_sees():
    y = np.repeat(np.arange(5), [1, 2, 3, 10, 11])
    val = _runner._split_held_out(y, 0.5, seed=(5, 1, 0))
    for c, n in enumerate([1, 2, 3, 10, 11]):
        members = val[y == c]
        assert (~members).sum() >= 1  # every class keeps a test image
        assert members.sum() == (0 if n < 2 else min(n - 1, max(1, round(n / 2))))
    assert np.array_equal(val, _runner._split_held_out(y, 0.5, seed=(5, 1, 0)))


def test_plain_twins_match_the_library_descendants_parameter_for_parameter():
    vit = keras.saving.load_model(os.path.join(os.path.dirname(bench.__file__), "..",
                                               "assets", "ancestry_vit_tiny.keras"))
    from keras_learngene import condense, inherit
    from keras_learngene.models import build_preset

    vgg = build_preset("vgg_iso", filters=(8, 8, 8, 8), stem_filters=8, num_classes=6)
    for ancestry in (vit, vgg):
        descendant = inherit(condense(ancestry, num_units=2, method="front"), 2, num_classes=4)
        twin = _cost.plain_twin(ancestry, 4, 4)
        assert twin.count_params() == descendant.count_params()
        assert twin.output_shape == descendant.output_shape
    assert _cost.plain_twin(TINY_BUILDERS["resnet"](3), 2, 4) is None


# the benchmark's bookkeeping is backend-independent: once, on the pass that runs it fastest
ON_TORCH = pytest.mark.once(backend="torch")


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    """One benchmark per test session, the quick profile through `klg bench`
    (the CI smoke test of both architectures and every kind of run), on the
    torch pass: its eager tiny models run it in half TensorFlow's time."""
    out = tmp_path_factory.mktemp("bench")
    result = CliRunner().invoke(cli, ["bench", "--profile", "quick", "--out", str(out),
                                      "--json"])
    assert result.exit_code == 0, result.output
    return out, bench.PROFILES["quick"], json.loads(result.stdout[result.stdout.index("{"):])


@ON_TORCH
def test_benchmark_records_every_planned_run(bench_run):
    out, profile, _ = bench_run
    records = bench.load_records(out)
    planned = bench.plan_runs(profile)
    assert sorted(r["run_id"] for r in records) == sorted(r["run_id"] for r in planned)
    d = profile.data[0]
    for r in records:
        assert 0.0 <= r["final_accuracy"] <= 1.0 and r["backend"] == keras.backend.backend()
        assert r["train_examples"] == r["ways"] * r["shots"]
        assert r["val_examples"] > 0 and r["test_examples"] > 0
        if r["experiment"] == "probe":
            assert r["steps"] == 0 and r["checkpoints"] == []
            continue
        assert [c["step"] for c in r["checkpoints"]] == list(d.checkpoints)
        assert all(0 <= c["val_accuracy"] <= 1 for c in r["checkpoints"])
        assert r["final_accuracy"] == r["checkpoints"][-1]["accuracy"]
        assert r["plateau"]["step"] in d.checkpoints and r["images_per_second"] > 0
    k = profile.k
    for arch in profile.ancestries:
        by = {r["method"]: r for r in records if r["experiment"] in ("main", "probe")
              and r["arch"] == arch and (r["shots"], r["task"]) == (5, 1)}
        # one descendant architecture for every method but the whole ancestry
        assert len({by[m]["params"] for m in profile.methods if m != "ancestry"}) == 1
        assert by["scratch"]["inherited_params"] == 0 and by["scratch"]["units"] is None
        assert by["front"]["units"] == list(range(k))
        assert len(by["random"]["units"]) == k and by["random"]["units"] == sorted(
            by["random"]["units"])
        assert by["ancestry"]["params"] > by["front"]["params"]
        assert by["probe_learngene"]["units"] == by["auto"]["units"]
        assert by["probe_pixels"]["features"] == 28 * 28


@ON_TORCH
def test_report_has_every_claim_intervals_and_plots(bench_run):
    out, profile, payload = bench_run
    report = (out / "report.md").read_text()
    assert "protocol v2" in report and "(n=2)" in report and " [" in report
    for heading in ("Converge faster", "Less sensitive", "Perform better", "Fewer samples",
                    "unit-transfer precondition", "same as front-k", "linear probe: pixels"):
        assert heading.lower() in report.lower(), heading
    images = [line.split("(images/")[1].split(")")[0] for line in report.splitlines()
              if "(images/" in line]
    assert images
    for name in images:
        assert (out / "images" / name).read_bytes().startswith(b"\x89PNG")
    # the CLI's --json summary
    assert payload["report"] == str(out / "report.md")
    assert set(payload["summary"]["archs"]) == {f"glyphs/{a}" for a in profile.ancestries}
    rows = payload["summary"]["claims"]
    assert [row["claim"][0] for row in rows] == ["1", "2", "3", "3", "3", "4", "4"]
    for row in rows:
        for key in payload["summary"]["archs"]:
            verdict = row["archs"][key]["verdict"]
            assert verdict.startswith(("holds", "does not hold")), (row["claim"], verdict)


@ON_TORCH
def test_meta_has_ancestries_transfer_condensing_and_costs(bench_run):
    out, profile, _ = bench_run
    meta = json.loads((out / "meta.json").read_text())
    assert meta["profile"] == profile.to_json()
    assert meta["backend"] == keras.backend.backend()
    planned = len(bench.plan_runs(profile))
    assert meta["runs"] == {"planned": planned, "done": planned}
    assert meta["data"]["glyphs/s0"]["flip"] is False
    for arch, spec in profile.ancestries.items():
        key = f"glyphs/s0/{arch}"
        units = spec["overrides"].get("num_layers") or len(spec["overrides"]["filters"])
        assert 0 <= meta["ancestries"][key]["base_test_accuracy"] <= 1
        assert meta["ancestries"][key]["units"] == units
        transfer = meta["transfer"][key]["shots"][str(profile.transfer_shots[0])]
        assert transfer["pixels"]["n"] == 2 and len(transfer["units"]) == units + 1  # + stem
        assert {"auto", "front"} <= set(meta["condense"][key])
        cost = meta["cost"][key]
        assert cost["backend"] == keras.backend.backend()
        assert cost["ancestry_epoch_seconds"] > 0 and cost["condense_seconds"] > 0
        assert cost["descendant_bytes"] > cost["learngene_bytes"] > 0
        assert cost["library_images_per_second"] > 0


@ON_TORCH
def test_episodes_are_sample_episodes_on_the_novel_classes(bench_run, tmp_path):
    _, profile, _ = bench_run
    b = _runner.Bench(profile, tmp_path)
    setting = _runner._Setting(profile.data[0], 0, b)
    (x, y), (xv, yv), (xt, yt) = setting.images(5, 1, 1)
    direct = datasets.sample_episodes(setting.novel, 5, 1, profile.data[0].tasks, seed=0)[1]
    np.testing.assert_array_equal(x, direct.x_train)
    np.testing.assert_array_equal(y, direct.y_train)
    assert len(yv) + len(yt) == len(direct.y_test)
    assert set(yv) == set(yt) == set(range(5))


@ON_TORCH
def test_resume_recomputes_nothing_and_refuses_another_profile(bench_run):
    out, profile, _ = bench_run
    before = (out / "runs.jsonl").read_text()
    log = _Log()
    bench.run_bench(profile, out, log=log, report=False)
    assert (out / "runs.jsonl").read_text() == before
    assert f"{len(bench.plan_runs(profile))} already done, 0 to go" in log.text
    other = dataclasses.replace(profile, k=profile.k + 1)
    with pytest.raises(ValueError, match="another benchmark configuration"):
        bench.run_bench(other, out, report=False)


@ON_TORCH
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


@ON_TORCH
def test_cli_report_only_rewrites_the_report_and_prints_the_claims(bench_run):
    out, _, _ = bench_run
    (out / "report.md").unlink()
    result = CliRunner().invoke(cli, ["bench", "--report-only", "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[0] == f"report: {out / 'report.md'}" and (out / "report.md").is_file()
    claims = [line for line in lines[1:] if line[:2] in ("1.", "2.", "3.", "4.")]
    assert len(claims) == 7 and all("glyphs/vit: " in line for line in claims)


# ------------------------------------------------------------------ recipes (issue 21)
def test_recipes_parse_in_one_place_and_refuse_unknown_parts():
    recipe = _runner.Recipe.parse("auto+identity+head+gentle")
    assert (recipe.method, recipe.parts, recipe.fresh_init) == (
        "auto", ("identity", "head", "gentle"), "identity")
    assert recipe.identity and recipe.head and recipe.gentle
    assert recipe.record()["inherited_lr_scale"] == _runner.GENTLE_SCALE
    plain = _runner.Recipe.parse("auto")
    assert plain.parts == () and plain.fresh_init == "random" and not plain.head
    assert plain.record()["inherited_lr_scale"] == 1.0
    with pytest.raises(ValueError, match="unknown part 'fancy'.*identity, head, gentle"):
        _runner.Recipe.parse("auto+identity+fancy")
    with pytest.raises(ValueError, match="order 'auto\\+identity\\+head'"):
        _runner.Recipe.parse("auto+head+identity")
    with pytest.raises(ValueError, match="repeats a part"):
        _runner.Recipe.parse("auto+head+head")
    with pytest.raises(ValueError, match="not to the baseline 'scratch'"):
        _runner.Recipe.parse("scratch+head")
    with pytest.raises(ValueError, match="builds its own units"):
        _runner.Recipe.parse("tleg+identity").check()
    _runner.Recipe.parse("tleg+head").check()  # a fitted head suits any strategy
    with pytest.raises(ValueError, match="nope"):
        _runner.Recipe.parse("nope+head").check()
    assert bench.PROFILES["headstart"].reference == "auto"


def test_headstart_profile_reuses_the_full_profiles_recipes_and_checkpoints_step_0():
    hs, full = bench.PROFILES["headstart"], bench.PROFILES["full"]
    for d in hs.data:
        f = full.data_of(d.name)
        # the ancestry recipe (`Bench.ancestry`) reads these: equal, so full's cache serves
        assert (d.options, d.splits, d.ancestry_epochs, d.flip, d.ancestry_examples) == \
            (f.options, f.splits, f.ancestry_epochs, f.flip, f.ancestry_examples)
        assert (d.steps, d.pairs, d.val_fraction) == (f.steps, f.pairs, f.val_fraction)
        assert d.checkpoints == (0,) + f.checkpoints
    for arch, spec in hs.ancestries.items():
        assert spec["preset"] == full.ancestries[arch]["preset"]
        assert spec.get("overrides", {}) == full.ancestries[arch].get("overrides", {})
    assert (hs.k, hs.n_fresh, hs.condense_seeds) == (full.k, full.n_fresh, full.condense_seeds)
    for row in hs.methods:
        _runner.Recipe.parse(row).check()
    assert hs.focus in hs.methods


# the quick profile's tiny ViT, 5-way 5-shot, a checkpoint at step 0, recipes as rows
TINY_HEADSTART = dataclasses.replace(
    TINY, name="tiny-headstart",
    data=(dataclasses.replace(TINY.data[0], shots=(5,), tasks=2, steps=4,
                              checkpoints=(0, 2, 4)),),
    methods=("scratch", "auto", "auto+identity+head", "front+identity+head+gentle"),
    sensitivity={}, transfer_shots=(1,), cost_steps=0,
)


@ON_TORCH
def test_an_unknown_part_is_refused_before_any_training(tmp_path):
    log = _Log()
    bad = dataclasses.replace(TINY_HEADSTART, methods=("scratch", "auto+identity+fancy"))
    with pytest.raises(ValueError, match="unknown part 'fancy'"):
        bench.run_bench(bad, tmp_path, log=log, report=False)
    assert "training the" not in log.text and not (tmp_path / "runs.jsonl").exists()


@ON_TORCH
def test_recipe_rows_run_record_their_parts_and_step_0(tmp_path):
    log = _Log()
    report = bench.run_bench(TINY_HEADSTART, tmp_path, log=log)
    records = bench.load_records(tmp_path)
    assert sorted(r["run_id"] for r in records) == sorted(
        r["run_id"] for r in bench.plan_runs(TINY_HEADSTART))
    trained = [r for r in records if r["experiment"] == "main"]
    by = {(r["method"], r["task"]): r for r in trained}
    for r in trained:
        assert [c["step"] for c in r["checkpoints"]] == [0, 2, 4]
        assert r["plateau"]["step"] in (0, 2, 4)
    for task in range(2):
        plain, head = by["auto", task], by["auto+identity+head", task]
        gentle = by["front+identity+head+gentle", task]
        assert plain["parts"] == [] and plain["head_start"] is None
        assert plain["fresh_init"] == "random" and plain["warmup_steps"] > 0
        assert (head["base_method"], head["parts"], head["fresh_init"]) == (
            "auto", ["identity", "head"], "identity")
        assert head["units"] == plain["units"] and head["params"] == plain["params"]
        assert head["head_start"]["train_accuracy"] > 0.2  # above chance on its images
        assert head["inherited_lr_scale"] == 1.0 and head["warmup_steps"] == plain["warmup_steps"]
        assert (gentle["base_method"], gentle["inherited_lr_scale"], gentle["warmup_steps"]) == (
            "front", _runner.GENTLE_SCALE, 0)
        assert gentle["units"] == [0]
    # another optimizer (per-layer factors, no warm-up): its own compiled model
    assert by["front+identity+head+gentle", 0]["first_of_compiled"]
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["methods"]["auto+identity+head"]["parts"] == ["identity", "head"]
    assert meta["cost"] == {}  # cost_steps=0
    text = open(report).read()
    assert "### Before training" in text and "minus its method's" in text
    assert "Auto Learngene + identity + head" in text or "auto + identity + head" in text
    assert (tmp_path / "images" / "curves_glyphs_vit_N5K5.png").read_bytes().startswith(b"\x89PNG")
