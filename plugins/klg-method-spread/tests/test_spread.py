"""The `spread` method: its rule, and that it works through keras-learngene's
API and CLI like a built-in once installed."""

import importlib.metadata
import json
import os

import numpy as np
import pytest
from click.testing import CliRunner
from klg_method_spread.method import spread_indices

import keras_learngene as klg
from keras_learngene import plugins


@pytest.mark.parametrize("k, total, first, expected", [
    (3, 8, 0, [0, 4, 7]), (1, 8, 0, [0]), (2, 8, 0, [0, 7]), (4, 4, 0, [0, 1, 2, 3]),
    (3, 8, 2, [2, 4, 7]), (2, 8, 6, [6, 7]),
])
def test_spread_indices(k, total, first, expected):
    assert spread_indices(k, total, first) == expected


def test_spread_indices_are_increasing_and_in_range():
    for total in range(1, 12):
        for k in range(1, total + 1):
            for first in range(0, total - k + 1):
                got = spread_indices(k, total, first)
                assert len(got) == k and got == sorted(set(got))
                assert got[0] == first and got[-1] == (total - 1 if k > 1 else first)


installed = pytest.mark.skipif(
    not any(ep.name == "method_spread"
            for ep in importlib.metadata.entry_points(group="keras_learngene")),
    reason="install the package: pip install ./plugins/klg-method-spread")


@pytest.fixture
def loaded(monkeypatch):
    monkeypatch.setenv("KLG_LOAD_PLUGINS", "method_spread")
    plugins.reset()
    yield
    plugins.reset()


@installed
def test_the_installed_method_condenses_inherits_and_inspects(loaded, tmp_path):
    assert plugins.registry("methods").plugin_of("spread") == "method_spread"
    ancestry = klg.load_default_ancestry()
    learngene = klg.condense(ancestry, num_units=3, method="spread")
    assert learngene.provenance["source_units"] == [0, 4, 7]
    descendant = klg.inherit(learngene, 1, num_classes=4)
    assert descendant.predict(np.zeros((2, 28, 28, 1), "float32"), verbose=0).shape == (2, 4)

    from keras_learngene.cli import cli

    out = str(tmp_path / "lg.keras")
    result = CliRunner().invoke(cli, ["condense", "--method", "spread", "-o", "first=2",
                                      "--out", out, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["source_units"] == [2, 4, 7]
    assert os.path.isfile(out)
    text = CliRunner().invoke(cli, ["inspect", out]).stdout
    assert "spread over the depth: units [2, 4, 7] of 8" in text
    result = CliRunner().invoke(cli, ["condense", "--method", "spread", "-o", "first=6",
                                      "--out", str(tmp_path / "x.keras")])
    assert result.exit_code == 1 and "first=6 must be an int from 0 to 5" in result.output
