"""The ancestries shipped in the package: each loads on every backend, has the
shape its description gives, and classifies what its README says it does."""

import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

import keras_learngene as klg
from keras_learngene import _assets, training
from keras_learngene.cli import cli

# what the README records for each (the base classes' test accuracy and the glyph data's
# fingerprint the glyph ancestries were trained on: the benchmark's 10 scripts, split 0)
GLYPH_FINGERPRINT = "48b1cab0386070f1dc2d"
RECORDED = {"glyphs_vit_tiny": ("VisionTransformer", 0.5561),
            "glyphs_vgg_iso": ("VGGNet", 0.8136)}


def test_every_shipped_ancestry_is_listed_and_its_file_ships():
    names = klg.shipped_ancestries()
    assert list(names) == ["fashion_mnist_vit_tiny", "glyphs_vit_tiny", "glyphs_vgg_iso"]
    for name, (file, _) in _assets.SHIPPED_ANCESTRIES.items():
        assert os.path.isfile(os.path.join(_assets.ASSETS, file)), name
    readme = open(os.path.join(_assets.ASSETS, "README.md")).read()
    assert all(f"`{file}`" in readme for file, _ in _assets.SHIPPED_ANCESTRIES.values())
    with pytest.raises(ValueError, match="No shipped ancestry is named 'vit'.*glyphs_vgg_iso"):
        klg.load_shipped_ancestry("vit")


@pytest.fixture(scope="module")
def glyph_base(tmp_path_factory):
    pytest.importorskip("PIL")
    cache = tmp_path_factory.mktemp("klg-glyphs")  # not the user's ~/.keras
    from keras_learngene.bench._profiles import PILOT_SCRIPTS

    try:
        data = klg.datasets.load_glyphs(scripts=PILOT_SCRIPTS, cache_dir=cache)
    except klg.datasets.DataNotFoundError as e:
        pytest.skip(f"the fonts of the glyph data are not installed: {e}")
    if data.fingerprint != GLYPH_FINGERPRINT:
        pytest.skip(f"these fonts render glyph data {data.fingerprint}, not the "
                    f"{GLYPH_FINGERPRINT} the shipped glyph ancestries were trained on")
    return klg.datasets.load_task("glyphs", classes="base", scripts=PILOT_SCRIPTS,
                                  cache_dir=cache)


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_a_glyph_ancestry_classifies_its_base_classes_as_recorded(name, glyph_base):
    model = klg.load_shipped_ancestry(name)
    kind, accuracy = RECORDED[name]
    assert type(model).__name__ == kind
    assert model.input_shape == (None, 28, 28, 1) and model.output_shape == (None, 333)
    assert glyph_base.num_classes == 333 and len(glyph_base.x_test) == 4244
    measured = training.evaluate(model, glyph_base.x_test, glyph_base.y_test, batch_size=1000)
    assert measured == pytest.approx(accuracy, abs=0.005), name  # same weights, any backend
    chance = np.bincount(glyph_base.y_test).max() / len(glyph_base.y_test)
    assert measured > 50 * chance


def test_the_default_is_the_fashion_mnist_vit():
    model = klg.load_default_ancestry()
    assert type(model).__name__ == "VisionTransformer" and model.output_shape == (None, 6)


@pytest.mark.once
def test_condense_takes_a_shipped_ancestry_by_name(tmp_path):
    out = str(tmp_path / "lg.keras")
    result = CliRunner().invoke(cli, ["condense", "--ancestry", "glyphs_vgg_iso", "--method",
                                      "front", "--out", out, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["source_units"] == [0, 1, 2] and payload["form"] == "cnn"
    learngene = klg.Learngene.load(out)
    assert learngene.provenance["ancestry"]["name"] == "vgg_net"
