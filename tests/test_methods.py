"""Condensing methods: the registry's conformance suite (every registered
method, plugins' included, is tested the moment it is loaded), and a
third-party method used end to end through the API and the CLI without any
edit to the library."""

import json
import re
import warnings

import keras
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import TINY_BUILDERS, body_units, tiny_data, train_briefly

import keras_learngene as klg
from keras_learngene import cli as cli_module
from keras_learngene import plugins
from keras_learngene._condense import resolve_form
from keras_learngene.learngene import Learngene
from keras_learngene.methods import Condensed, Method, heatmap, select_units

METHODS = plugins.registry("methods").names()


@pytest.fixture(scope="module")
def ancestries():
    """One tiny trained ancestry per family (ViT, VGG with a downsampling
    stage, ResNet)."""
    keras.utils.set_random_seed(0)
    x, y = tiny_data()
    return {name: train_briefly(build(), x, y) for name, build in sorted(TINY_BUILDERS.items())}


def _condense(method, ancestry, seed=0, **kwargs):
    options = {**plugins.get_method(method).quick_options, **kwargs}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # e.g. scores that do not separate
        return klg.condense(ancestry, tiny_data(), num_units=2, method=method, seed=seed,
                            **options)


@pytest.mark.parametrize("name", METHODS)
def test_method_conformance(name, ancestries, tmp_path):
    method = plugins.get_method(name)
    assert isinstance(method, Method) and method.name == name and method.description
    assert isinstance(method.options, dict)
    plugins.get_strategy(method.strategy)  # the strategy it asks for is registered
    # an option it does not take is refused before any work
    with pytest.raises(ValueError, match=f"'{name}' takes no option 'no_such_option'"):
        klg.condense(ancestries["vit"], tiny_data(), method=name, no_such_option=1)
    if method.needs_data:
        with pytest.raises(ValueError, match="needs probe data"):
            klg.condense(ancestries["vit"], None, method=name)

    checked_determinism = False
    for family, ancestry in sorted(ancestries.items(), key=lambda item: item[0] != "vgg"):
        # a family the method declares unsupported (Method.supports) is refused before any
        # work, with that reason; the rest of the suite skips it
        reason = method.supports(resolve_form(ancestry).split(ancestry))
        if reason:
            with pytest.raises(ValueError, match=re.escape(reason)):
                _condense(name, ancestry)
            continue
        learngene = _condense(name, ancestry)
        p = learngene.provenance
        assert p["method"] == name and p["num_units"] == 2
        assert p["options"] == {**method.options, **method.quick_options}
        assert p["source_units"] == sorted(p["source_units"]), family
        json.dumps(p)  # the provenance travels in the model config
        lines = method.describe(p)
        assert lines and all(isinstance(line, str) for line in lines)
        if p.get("heatmap"):
            matrix = np.asarray(p["heatmap"]["matrix"])
            assert matrix.ndim == 2 and np.isfinite(matrix).all()
        if not checked_determinism:  # deterministic by seed (VGG first: it has bridges)
            checked_determinism = True
            again = _condense(name, ancestry)
            assert again.provenance["source_units"] == p["source_units"]
            for a, b in zip(learngene.get_weights(), again.get_weights()):
                np.testing.assert_allclose(a, b, atol=1e-5)
        # saved, loaded and inherited like any learngene, by the strategy it asks for
        path = str(tmp_path / f"{family}.keras")
        learngene.save(path)
        loaded = Learngene.load(path)
        descendant = klg.inherit(loaded, 1, num_classes=3)
        x = tiny_data(n=4)[0]
        assert tuple(descendant.predict(x, verbose=0).shape) == (4, 3)
        assert klg.inherited_layers(descendant), "a descendant inherits something"
        # its strategy sizes a descendant both ways with one meaning (test_inherit.py)
        assert len(body_units(descendant)[1]) == 1
        depth = len(loaded.learngene_units) + 2
        assert sum(map(len, body_units(klg.inherit(loaded, depth=depth, num_classes=3)))) \
            == depth


# ------------------------------------------------------------ a third-party method

class Middle(Method):
    """The k units in the middle of the ancestry, scored by their index
    (a test plugin: one class and its registration)."""

    name = "middle"
    description = "the middle k units (test plugin)"
    options = {"offset": 0}

    def check(self, job):
        if not isinstance(job.options["offset"], int):
            raise ValueError(f"offset={job.options['offset']!r} must be an int.")

    def condense(self, job):
        L, k = len(job.anatomy.units), job.num_units
        S = np.zeros((L, k))
        for n, i in enumerate(range((L - k) // 2, (L - k) // 2 + k)):
            S[min(max(i + job.options["offset"], 0), L - 1), n] = 1.0
        indices, matches = select_units(S, k, "align", job.chains)
        return Condensed(indices, {"matrix": S.tolist(), "scores": [1.0] * k,
                                   "heatmap": heatmap(S, xlabel="slot", ylabel="unit",
                                                      colorbar="chosen",
                                                      boxes=zip(indices, matches))})

    def describe(self, provenance):
        return [f"the middle units: {provenance['source_units']}"]


class MiddlePlugin:
    @klg.hookimpl
    def register_methods(self, register):
        register("middle", Middle)


@pytest.fixture
def middle(fresh_plugins):
    plugins.register_plugin(MiddlePlugin(), name="klg-middle")
    yield
    plugins.unregister_plugin("klg-middle")


def test_a_plugin_method_works_in_the_api_cli_inspect_and_plugins(middle, ancestries, tmp_path):
    learngene = klg.condense(ancestries["vit"], num_units=2, method="middle", offset=1)
    assert learngene.provenance["source_units"] == [2, 3]  # 4 units: middle [1, 2], +1
    with pytest.raises(ValueError, match="offset='x' must be an int"):
        klg.condense(ancestries["vit"], method="middle", offset="x")

    runner = CliRunner()
    ancestry_path = str(tmp_path / "ancestry.keras")
    ancestries["vit"].save(ancestry_path)
    out = str(tmp_path / "lg.keras")
    result = runner.invoke(cli_module.cli, ["condense", "--ancestry", ancestry_path,
                                            "--method", "middle", "--num-units", "2",
                                            "-o", "offset=0", "--out", out])
    assert result.exit_code == 0, result.output
    assert "the middle units: [1, 2]" in result.stdout
    result = runner.invoke(cli_module.cli, ["inspect", out, "--json"])
    assert json.loads(result.stdout)["provenance"]["method"] == "middle"
    result = runner.invoke(cli_module.cli, ["inspect", out])
    assert "the middle units: [1, 2]" in result.stdout
    # the choices come from the registry: an unknown name lists the plugin's
    result = runner.invoke(cli_module.cli, ["condense", "--method", "midle", "--out", out])
    assert result.exit_code == 2 and "middle" in result.output
    rows = {r["name"]: r for r in json.loads(runner.invoke(cli_module.cli,
                                                            ["plugins"]).stdout)}
    assert rows["klg-middle"]["methods"] == ["middle"]


def test_a_learngene_of_an_uninstalled_method_still_inspects(middle, ancestries, tmp_path):
    out = str(tmp_path / "lg.keras")
    klg.condense(ancestries["vit"], num_units=2, method="middle").save(out)
    plugins.unregister_plugin("klg-middle")
    result = CliRunner().invoke(cli_module.cli, ["inspect", out])
    assert result.exit_code == 0 and "selected by middle: units [1, 2]" in result.stdout
    plugins.register_plugin(MiddlePlugin(), name="klg-middle")


def test_builtin_methods_are_registered_like_plugins():
    registry = plugins.registry("methods")
    assert {"auto", "heur", "front", "back", "weight_selection"} <= set(registry.names())
    for name in ("auto", "heur", "front", "back", "weight_selection"):
        assert registry.plugin_of(name) == "keras_learngene.default_plugins.methods"


def test_weight_selection_is_front_k_at_equal_widths(ancestries):
    for ancestry in ancestries.values():
        ws, front = _condense("weight_selection", ancestry), _condense("front", ancestry)
        assert ws.provenance["element_selection"] == ["identity", "identity"]
        for a, b in zip(ws.get_weights(), front.get_weights()):
            np.testing.assert_array_equal(a, b)


def test_n_layers_of_condense_is_deprecated(ancestries):
    with pytest.warns(DeprecationWarning, match="num_units"):
        learngene = klg.condense(ancestries["vit"], n_layers=1, method="front")
    assert learngene.provenance["num_units"] == 1
    with pytest.warns(DeprecationWarning, match="tasks"), \
            pytest.raises(ValueError, match="tasks=0"):  # renamed, then checked
        klg.condense(ancestries["vit"], tiny_data(), num_units=1, method="heur", heur_tasks=0)


def test_condense_is_a_function_not_a_module():
    import importlib

    assert callable(klg.condense) and callable(klg.inherit)
    for name in ("keras_learngene.condense", "keras_learngene.inherit"):
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module(name)
