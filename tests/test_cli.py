"""The `klg` command line through click's CliRunner: results, JSON, errors."""

import json
import os

import keras
import pytest
from click.testing import CliRunner
from conftest import TINY_BUILDERS, train_briefly

import keras_learngene as klg
from keras_learngene.cli import cli

pytestmark = pytest.mark.once  # backend-independent (conftest.ONCE_BACKEND)


@pytest.fixture(scope="module")
def runner():
    return CliRunner()


@pytest.fixture(scope="module")
def ancestry_file(tmp_path_factory, data):
    """A tiny ViT ancestry for 28x28 images (the CLI probes with real data)."""
    keras.utils.set_random_seed(0)
    model = klg.models.VisionTransformer((28, 28, 1), 6, patch_size=7, num_layers=3,
                                         hidden_dim=8, num_heads=2, mlp_dim=16)
    task = klg.datasets.load_task("embedded", classes="base")
    train_briefly(model, task.x_train[:192], task.y_train[:192], epochs=1)
    path = str(tmp_path_factory.mktemp("cli") / "ancestry.keras")
    model.save(path)
    return path


def invoke(runner, args):
    result = runner.invoke(cli, args, catch_exceptions=False)
    return result


def test_condense_inherit_inspect_chain(runner, ancestry_file, tmp_path):
    out = str(tmp_path / "lg.keras")
    result = invoke(runner, ["condense", "--ancestry", ancestry_file, "--classes", "1,3",
                             "--n-layers", "2",
                             "--pseudo-epochs", "1", "--out", out, "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["method"] == "auto" and len(payload["source_units"]) == 2
    assert os.path.getsize(out) == payload["bytes"]

    # the readable table names every unit, the scores and the choice
    table = invoke(runner, ["inspect", out])
    assert table.exit_code == 0
    assert "selected by align" in table.stdout and table.stdout.count("<- selected") == 2

    descendant = str(tmp_path / "d.keras")
    result = invoke(runner, ["inherit", out, "--n-layers", "2", "--num-classes", "4",
                             "--out", descendant, "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["layers"][-1] == "head_dense"
    assert sum(name.startswith("fresh_") for name in payload["layers"]) == 2
    assert keras.saving.load_model(descendant).output_shape == (None, 4)
    # --depth counts all the units: the learngene's 2 and the 2 new ones
    by_depth = invoke(runner, ["inherit", out, "--depth", "4", "--num-classes", "4",
                               "--out", str(tmp_path / "d4.keras"), "--json"])
    assert by_depth.exit_code == 0, by_depth.output
    assert json.loads(by_depth.stdout)["layers"] == payload["layers"]

    trained = str(tmp_path / "t.keras")
    result = invoke(runner, ["train", "--model", descendant, "--classes", "novel", "--shots",
                             "5", "--epochs", "1", "--out", trained, "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["train_examples"] == 20 and payload["test_examples"] == 600
    assert 0.0 <= payload["test_accuracy"] <= 1.0


def test_train_preset(runner, tmp_path):
    out = str(tmp_path / "m.keras")
    result = invoke(runner, ["train", "--preset", "vit_tiny", "--classes", "0,1", "--shots", "4",
                             "--epochs", "1", "--out", out, "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["model"] and payload["train_examples"] == 8
    assert keras.saving.load_model(out).output_shape == (None, 2)


def test_inspect_writes_png(runner, tmp_path, data):
    pytest.importorskip("matplotlib")
    ancestry = train_briefly(TINY_BUILDERS["vit"](), *data, epochs=1)
    path = str(tmp_path / "lg.keras")
    klg.condense(ancestry, data, num_units=2, pseudo_epochs=1).save(path)
    png = str(tmp_path / "s.png")
    result = invoke(runner, ["inspect", path, "--png", png, "--json"])
    assert result.exit_code == 0, result.output
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert json.loads(result.stdout)["provenance"]["method"] == "auto"


@pytest.mark.parametrize("args, message, code", [
    (["train", "--preset", "vit_huge", "--out", "{tmp}/m.keras"], "'vit_huge' is not one of", 2),
    (["train", "--preset", "vit_tiny", "--classes", "0,12", "--out", "{tmp}/m.keras"],
     "12", 1),
    (["train", "--preset", "vit_tiny", "--out", "{tmp}/missing/m.keras"], "does not exist", 1),
    (["train", "--out", "{tmp}/m.keras"], "exactly one of --preset or --model", 2),
    (["train", "--preset", "vit_tiny", "--classes", "shirts", "--out", "{tmp}/m.keras"],
     "comma-separated", 2),
    (["train", "--preset", "vit_tiny", "--out", "{tmp}/m.h5"], "must end in '.keras'", 2),
    (["condense", "--num-units", "0", "--out", "{tmp}/lg.keras"], "--num-units", 2),
    (["condense", "--method", "magic", "--out", "{tmp}/lg.keras"], "'magic' is not one of", 2),
    (["condense", "--method", "front", "--similarity", "cosine", "--out", "{tmp}/lg.keras"],
     "'front' takes no option 'similarity'", 2),
    (["condense", "-o", "tasks", "--out", "{tmp}/lg.keras"], "KEY=VALUE", 2),
    (["condense", "--similarity", "linear_cak", "--out", "{tmp}/lg.keras"], "linear_cka", 1),
    (["condense", "--ancestry", "{tmp}/nope.keras", "--out", "{tmp}/lg.keras"], "nope.keras", 1),
    (["condense", "--ancestry", "glyphs_vit", "--out", "{tmp}/lg.keras"],
     "'glyphs_vit' is neither a file nor a shipped ancestry; the shipped ancestries: "
     "fashion_mnist_vit_tiny, glyphs_vit_tiny, glyphs_vgg_iso", 2),
    (["inherit", "{tmp}/not_a_learngene.keras", "--n-layers", "1", "--num-classes", "2",
      "--out", "{tmp}/d.keras"], "not a learngene", 1),
    (["inherit", "{tmp}/not_a_learngene.keras", "--n-layers", "-1", "--num-classes", "2",
      "--out", "{tmp}/d.keras"], "--n-layers", 2),
    (["inherit", "{tmp}/not_a_learngene.keras", "--n-layers", "1", "--num-classes", "2",
      "--strategy", "stak", "--out", "{tmp}/d.keras"], "'stak' is not one of", 2),
    (["inherit", "{tmp}/not_a_learngene.keras", "--n-layers", "1", "--num-classes", "2",
      "--out", "{tmp}/d.keras"], "holds a VisionTransformer, not a learngene", 1),
    (["inspect", "{tmp}/damaged.keras"], "is not a valid .keras file", 1),
    (["condense", "--ancestry", "{tmp}/damaged.keras", "--out", "{tmp}/lg.keras"],
     "is not a valid .keras file", 1),
    (["train", "--model", "{tmp}/damaged.keras", "--out", "{tmp}/m.keras"],
     "is not a valid .keras file", 1),
    (["condense", "--pseudo-epochs", "-1", "--out", "{tmp}/lg.keras"],
     "pseudo_epochs=-1 must be a positive int", 1),
    (["condense", "--selection", "best", "--out", "{tmp}/lg.keras"],
     "Unknown selection rule 'best'", 1),
    (["inherit", "{tmp}/not_a_learngene.keras", "--n-layers", "1", "--num-classes", "2",
      "--input-shape", "0x0x1", "--out", "{tmp}/d.keras"], "positive sizes", 2),
])
def test_bad_input_is_an_error_not_a_traceback(runner, tmp_path, args, message, code):
    TINY_BUILDERS["vit"]().save(str(tmp_path / "not_a_learngene.keras"))
    whole = (tmp_path / "not_a_learngene.keras").read_bytes()
    (tmp_path / "damaged.keras").write_bytes(whole[:len(whole) // 2])  # truncated
    before = set(os.listdir(tmp_path))
    result = runner.invoke(cli, [a.format(tmp=tmp_path) for a in args])
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert "Error" in result.output and message in result.output
    assert set(os.listdir(tmp_path)) == before  # nothing written


def test_diverged_training_fails_and_saves_nothing(runner, tmp_path):
    out = tmp_path / "m.keras"
    result = runner.invoke(cli, ["train", "--preset", "vit_tiny", "--classes", "0,1",
                                 "--shots", "32", "--epochs", "3", "--lr", "1e12",
                                 "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert "Error: Training diverged" in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_condense_probes_with_every_image_of_data(runner, ancestry_file, tmp_path):
    """`condense --data` uses all the user's images (36 pass the 32-image floor; a
    held-out fifth left 29 and was refused); `train --data` still holds a fifth out."""
    import numpy as np

    from keras_learngene.cli import _load_task

    task = klg.datasets.load_task("embedded", classes="base")
    data = tmp_path / "mine.npz"
    np.savez(data, x=(task.x_train[:36, ..., 0] * 255).astype(np.uint8), y=task.y_train[:36])
    out = tmp_path / "lg.keras"
    result = invoke(runner, ["condense", "--ancestry", ancestry_file, "--data", str(data),
                             "--num-units", "2", "--pseudo-epochs", "1", "--quiet",
                             "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "(36 images given)" in result.stderr
    assert klg.Learngene.load(str(out)).provenance["probe_examples"] == 36
    held = _load_task(None, "all", str(data), None, None, (None, 28, 28, 1))  # as train does
    assert len(held.x_train) + len(held.x_test) == 36 and len(held.x_test) >= 6


def test_existing_output_is_kept(runner, tmp_path):
    out = tmp_path / "lg.keras"
    out.write_bytes(b"keep me")
    result = runner.invoke(cli, ["condense", "--out", str(out)])
    assert result.exit_code == 1 and "--overwrite" in result.output
    assert out.read_bytes() == b"keep me"


def test_help_lists_commands(runner):
    result = invoke(runner, ["--help"])
    for command in ("condense", "inherit", "train", "inspect", "plugins"):
        assert command in result.stdout


@pytest.mark.graph  # a real workload: compiled as the CLI compiles it (conftest)
def test_condense_with_no_arguments_uses_the_embedded_default(runner):
    """The README's main job: the shipped ancestry, the shipped subset."""
    with runner.isolated_filesystem():
        result = runner.invoke(cli, ["condense"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        learngene = klg.Learngene.load("learngene.keras")
    p = learngene.provenance
    assert p["method"] == "auto" and p["selection"] == "align" and len(p["source_units"]) == 3
    assert p["ancestry"]["units"] == 8 and p["probe_examples"] == 1024
    assert "selected by align" in result.stdout
    assert result.stdout.count("<- selected") == 3
    assert "backend:" in result.stderr and "backend:" not in result.stdout


def test_training_shows_progress_on_stderr_unless_quiet(runner, ancestry_file, tmp_path):
    """Every training a command runs (here the pseudo descendant's, and a
    model's) reports its epochs on stderr; --quiet turns that off; stdout
    holds only the result."""
    condense = ["condense", "--ancestry", ancestry_file, "--classes", "1,3", "--num-units",
                "2", "--pseudo-epochs", "1", "--json", "--overwrite"]
    train = ["train", "--preset", "vit_tiny", "--classes", "0,1", "--shots", "4", "--epochs",
             "2", "--json", "--overwrite"]
    for args, epochs in ((condense, "loss: "), (train, "Epoch 2/2")):
        out = str(tmp_path / "out.keras")
        loud = invoke(runner, [*args, "--out", out])
        assert loud.exit_code == 0, loud.output
        assert epochs in loud.stderr and "Epoch" not in loud.stdout
        assert args is train or "probe image" in loud.stderr  # the similarity step's bar
        json.loads(loud.stdout)
        quiet = invoke(runner, [*args, "--out", out, "--quiet"])
        assert quiet.exit_code == 0, quiet.output
        assert "loss: " not in quiet.stderr and "Epoch" not in quiet.stderr
        assert "backend:" in quiet.stderr
        assert json.loads(quiet.stdout).keys() == json.loads(loud.stdout).keys()
