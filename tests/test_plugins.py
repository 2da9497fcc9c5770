"""The plugin system (`keras_learngene.plugins`) and conformance of everything
registered through it.

The conformance tests at the end are parametrised over the registries as
they are when the tests are collected (timm style): a similarity, strategy or
form that a plugin registers is tested the moment it is installed and loaded
(e.g. `KLG_LOAD_PLUGINS=similarities_extra python -m pytest tests/test_plugins.py`).
"""

import json
import re
import types

import click
import keras
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import TINY_BUILDERS, TINY_SHAPE

import keras_learngene
from keras_learngene import cli as cli_module
from keras_learngene import plugins
from keras_learngene.forms import BlocksForm, Form
from keras_learngene.plugins import PluginError
from keras_learngene.similarity import FunctionSimilarity, Similarity
from keras_learngene.strategies import SOURCES, Strategy

BUILTIN = {
    "forms": {"vit", "cnn"},
    "similarities": {"linear_cka", "rbf_cka", "cosine"},
    "strategies": {"stack", "prepend", "interleave", "expand"},
    "methods": {"auto", "heur", "front", "back", "weight_selection"},
}
DEFAULT_PLUGIN = {kind: f"keras_learngene.default_plugins.{kind}" for kind in BUILTIN}
ROW_FIELDS = {"name", "version", "forms", "similarities", "strategies", "methods", "commands",
              "conflicts"}


def _core_forms():
    """Registered forms without the optional keras-hub ones (present when
    keras-hub is installed)."""
    return [n for n in plugins.registry("forms").in_order() if not n.startswith("keras_hub_")]


# ------------------------------------------------------------- test plugins


def half(x, y):
    """Always one half (a plain-function similarity)."""
    return 0.5


def learngene_last(num_units, n_layers):
    """Fresh units first, then a copy of the first unit, then the learngene."""
    if n_layers == 0:
        return [("learngene", i) for i in range(num_units)]
    return ([("fresh", 0)] * (n_layers - 1) + [("copy", 0)]
            + [("learngene", i) for i in range(num_units)])


class ConvOnlyForm(BlocksForm):
    """A form for the VGG-style CNNs only (a Form subclass, registered as a class)."""

    unit_prefixes = ("conv_block",)


class ExtraPlugin:
    """Registers one similarity, one strategy and one form."""

    @keras_learngene.hookimpl
    def register_similarities(self, register):
        register("half", half)

    @keras_learngene.hookimpl
    def register_strategies(self, register):
        register("learngene_last", learngene_last)

    @keras_learngene.hookimpl
    def register_forms(self, register):
        register("conv_only", ConvOnlyForm)


class SimilarityPlugin:
    """Registers the plain-function similarity `half` under each of `names`.

    (A class instance: pluggy keeps plugins in sets, so a plugin must be
    hashable; a `types.SimpleNamespace` is not.)
    """

    def __init__(self, *names):
        self.names = names

    @keras_learngene.hookimpl
    def register_similarities(self, register):
        for name in self.names:
            register(name, half)


class BrokenPlugin:
    @keras_learngene.hookimpl
    def register_similarities(self, register):
        raise RuntimeError("boom: this metric has no score")


# ------------------------------------------------------------- built-ins


@pytest.mark.parametrize("kind", sorted(BUILTIN))
def test_builtins_come_from_default_plugins(fresh_plugins, kind):
    registry = plugins.registry(kind)
    assert BUILTIN[kind] <= set(registry.names())
    for name in BUILTIN[kind]:
        assert registry.plugin_of(name) == DEFAULT_PLUGIN[kind]
        assert registry.plugin_of(name).startswith("keras_learngene.default_plugins.")


def test_the_generic_functional_form_is_tried_last(fresh_plugins):
    """`condense` picks the first form that matches, trying the generic
    Functional form after every other, a plugin's included."""
    from keras_learngene._condense import resolve_form

    assert _core_forms() == ["vit", "cnn", "functional"]
    plugins.register_plugin(ExtraPlugin(), name="extra")
    assert _core_forms() == ["vit", "cnn", "functional", "conv_only"]
    vgg = keras_learngene.models.VGGNet((8, 8, 1), 2, filters=(4, 4), pool_after=())
    assert resolve_form(vgg).name == "cnn"  # built-ins registered first win
    plugins.unregister_plugin("keras_learngene.default_plugins.forms")
    try:
        assert resolve_form(vgg).name == "conv_only"
    finally:
        plugins.reset()


def test_builtin_objects_are_normalised(fresh_plugins):
    assert isinstance(plugins.get_similarity("linear_cka"), Similarity)
    assert plugins.get_similarity("linear_cka").name == "linear_cka"
    assert isinstance(plugins.get_strategy("stack"), Strategy)
    assert plugins.get_strategy("stack").layout(2, 1) == [
        ("learngene", 0), ("learngene", 1), ("fresh", 1)]
    for name in BUILTIN["forms"]:
        assert isinstance(plugins.get_form(name), Form)
        assert plugins.get_form(name).name == name


# ------------------------------------------------------------- a plugin


def test_plugin_registers_a_similarity_strategy_and_form(fresh_plugins):
    assert plugins.register_plugin(ExtraPlugin(), name="extra") == "extra"

    metric = plugins.get_similarity("half")
    assert isinstance(metric, FunctionSimilarity) and metric.fn is half
    assert metric.name == "half"
    assert metric(np.ones((4, 2)), np.arange(8.0).reshape(4, 2)) == 0.5

    strategy = plugins.get_strategy("learngene_last")
    assert isinstance(strategy, Strategy) and strategy.plan is learngene_last
    assert strategy.description == "Fresh units first, then a copy of the first unit, then " \
                                   "the learngene."
    assert strategy.layout(2, 2) == [("fresh", 0), ("copy", 0), ("learngene", 0),
                                     ("learngene", 1)]

    form = plugins.get_form("conv_only")
    assert type(form) is ConvOnlyForm and form.name == "conv_only"
    vgg, resnet = TINY_BUILDERS["vgg"](), TINY_BUILDERS["resnet"]()
    assert form.matches(vgg) and not form.matches(resnet)
    assert [u.name for u in form.split(vgg).units] == [f"conv_block_{i}" for i in range(4)]

    for kind, name in (("similarities", "half"), ("strategies", "learngene_last"),
                       ("forms", "conv_only")):
        assert plugins.registry(kind).plugin_of(name) == "extra"
    # the built-ins are still there
    assert BUILTIN["similarities"] <= set(plugins.registry("similarities").names())


def test_unregister_plugin_removes_its_names(fresh_plugins):
    plugins.register_plugin(ExtraPlugin(), name="extra")
    assert "half" in plugins.registry("similarities").names()
    plugins.unregister_plugin("extra")
    assert "half" not in plugins.registry("similarities").names()
    with pytest.raises(PluginError, match=r"Unknown \w+ 'half'"):
        plugins.get_similarity("half")


def test_reset_forgets_registered_plugins(fresh_plugins):
    plugins.register_plugin(ExtraPlugin(), name="extra")
    plugins.reset()
    assert "learngene_last" not in plugins.registry("strategies").names()
    assert {plugins.registry("strategies").plugin_of(n)
            for n in plugins.registry("strategies").names()} == {DEFAULT_PLUGIN["strategies"]}


# ------------------------------------------------------------- conflicts and errors


def test_duplicate_names_from_two_plugins(fresh_plugins):
    plugins.register_plugin(SimilarityPlugin("dup", "only_a"), name="plugin_a")
    plugins.register_plugin(SimilarityPlugin("dup", "only_b"), name="plugin_b")
    with pytest.warns(UserWarning, match="'dup' is registered by both") as caught:
        registry = plugins.registry("similarities")
    (warning,) = [w for w in caught if "'dup'" in str(w.message)]
    assert "'plugin_a'" in str(warning.message) and "'plugin_b'" in str(warning.message)
    assert "dup" not in registry.names()

    with pytest.raises(PluginError) as e:
        plugins.get_similarity("dup")
    assert "'plugin_a'" in str(e.value) and "'plugin_b'" in str(e.value)
    assert "KLG_LOAD_PLUGINS" in str(e.value)
    # every other name keeps working
    assert plugins.get_similarity("only_a").name == "only_a"
    assert plugins.get_similarity("only_b").name == "only_b"
    assert plugins.get_similarity("linear_cka").name == "linear_cka"


def test_a_plugin_cannot_shadow_a_builtin(fresh_plugins):
    plugins.register_plugin(SimilarityPlugin("cosine"), name="shadow")
    with pytest.warns(UserWarning, match="'cosine' is registered by both"):
        plugins.registry("similarities")
    with pytest.raises(PluginError, match="registered by several plugins") as e:
        plugins.get_similarity("cosine")
    assert "'keras_learngene.default_plugins.similarities'" in str(e.value)
    assert "'shadow'" in str(e.value)
    assert plugins.get_similarity("rbf_cka").name == "rbf_cka"


def test_a_plugin_whose_hook_raises_is_reported(fresh_plugins, capsys):
    plugins.register_plugin(BrokenPlugin(), name="broken")
    plugins.register_plugin(ExtraPlugin(), name="extra")

    # the other registrations keep working
    assert plugins.get_similarity("linear_cka").name == "linear_cka"
    assert plugins.get_similarity("half").name == "half"
    assert plugins.get_strategy("learngene_last").name == "learngene_last"

    errors = plugins.plugin_errors()
    assert errors == {"broken": "RuntimeError: boom: this metric has no score"}
    assert "plugin 'broken' failed: RuntimeError: boom" in capsys.readouterr().err

    rows = {row["name"]: row for row in plugins.describe_plugins()}
    assert rows["broken"]["error"] == errors["broken"]
    assert rows["extra"]["error"] is None
    assert rows["extra"]["similarities"] == ["half"]
    # and the error is named where a lookup fails
    with pytest.raises(PluginError, match="Plugins that failed to load: broken: RuntimeError"):
        plugins.get_similarity("no_such_metric")


# ------------------------------------------------------------- registering by reference


class ReferencePlugin:
    """Registers by `"module:attribute"` reference (imported on first use)."""

    def __init__(self, **refs):
        self.refs = refs

    @keras_learngene.hookimpl
    def register_similarities(self, register):
        for name, ref in self.refs.items():
            register(name, ref)


def test_a_reference_resolves_to_what_the_object_would_register(fresh_plugins):
    me = __name__
    plugins.register_plugin(ReferencePlugin(half_ref=f"{me}:half"), name="refs")
    registry = plugins.registry("similarities")
    (obj, plugin) = registry.entries["half_ref"]
    assert obj == f"{me}:half" and plugin == "refs"  # listed, not yet imported
    metric = plugins.get_similarity("half_ref")
    assert isinstance(metric, FunctionSimilarity) and metric.fn is half
    assert metric.name == "half_ref"
    assert plugins.get_similarity("half_ref") is metric  # resolved once
    assert registry.entries["half_ref"][0] is metric


def test_builtin_references_resolve_to_their_classes(fresh_plugins):
    from keras_learngene.default_plugins.methods import METHODS
    from keras_learngene.methods import BUILTIN_METHODS

    assert {name: cls.__name__ for name, cls in BUILTIN_METHODS.items()} == METHODS
    for name, cls in BUILTIN_METHODS.items():
        method = plugins.get_method(name)
        assert type(method) is cls and method.name == name


def test_a_reference_that_cannot_load_fails_where_it_is_used(fresh_plugins):
    me = __name__
    plugins.register_plugin(ReferencePlugin(gone="klg_no_such_module:Metric",
                                            not_a_metric=f"{me}:BUILTIN",
                                            fine=f"{me}:half"), name="refs")
    assert {"gone", "not_a_metric", "fine"} <= set(plugins.registry("similarities").names())
    with pytest.raises(PluginError, match=r"refs: similarity 'gone' is registered as "
                                          r"'klg_no_such_module:Metric', which cannot be "
                                          r"loaded: ModuleNotFoundError"):
        plugins.get_similarity("gone")
    with pytest.raises(PluginError, match=r"'not_a_metric' .* cannot be loaded: TypeError"):
        plugins.get_similarity("not_a_metric")
    assert plugins.get_similarity("fine").fn is half  # the others keep working
    # `klg plugins` shows the missing module without importing the others
    (row,) = [r for r in plugins.describe_plugins() if r["name"] == "refs"]
    assert row["error"] == ("references to packages that are not installed: similarity 'gone' "
                            "-> 'klg_no_such_module:Metric'")


def test_a_malformed_reference_is_the_plugins_error(fresh_plugins, capsys):
    plugins.register_plugin(ReferencePlugin(bad="half"), name="refs")
    assert "bad" not in plugins.registry("similarities").names()
    error = plugins.plugin_errors()["refs"]
    assert "registered as the string 'half'" in error
    assert "'package.module:attribute'" in error


@pytest.mark.parametrize(
    "kind, typo, meant",
    [("similarities", "linear_cak", "linear_cka"), ("strategies", "stak", "stack"),
     ("forms", "vti", "vit")],
)
def test_unknown_name_lists_the_registered_and_suggests(fresh_plugins, kind, typo, meant):
    get = {"similarities": plugins.get_similarity, "strategies": plugins.get_strategy,
           "forms": plugins.get_form}[kind]
    with pytest.raises(PluginError) as e:
        get(typo)
    message = str(e.value)
    assert re.match(rf"Unknown \w+ '{typo}'\. ", message)
    assert f"Registered: {', '.join(plugins.registry(kind).names())}." in message
    assert message.removesuffix(plugins.excluded_note()).endswith(f"Did you mean '{meant}'?")
    assert isinstance(e.value, ValueError)


SINGULAR = {"forms": "form", "similarities": "similarity", "strategies": "strategy"}


@pytest.mark.parametrize("kind", ["similarities", "strategies"])
def test_messages_name_the_kind_in_the_singular(fresh_plugins, kind):
    get = {"similarities": plugins.get_similarity, "strategies": plugins.get_strategy}[kind]
    with pytest.raises(PluginError, match=rf"^Unknown {SINGULAR[kind]} 'nope'\."):
        get("nope")
    plugins.register_plugin(SimilarityPlugin("twice"), name="one")
    plugins.register_plugin(SimilarityPlugin("twice"), name="two")
    with pytest.warns(UserWarning, match="^similarity 'twice' is registered by both"):
        plugins.registry("similarities")


def test_the_singular_of_forms_is_right(fresh_plugins):
    with pytest.raises(PluginError, match=r"^Unknown form 'nope'\."):
        plugins.get_form("nope")


def test_unknown_name_without_a_near_match_suggests_nothing(fresh_plugins):
    with pytest.raises(PluginError) as e:
        plugins.get_similarity("zzzzzz")
    assert "Did you mean" not in str(e.value)


def test_unknown_registry_kind():
    with pytest.raises(ValueError, match="Unknown registry 'metrics'"):
        plugins.registry("metrics")


# ------------------------------------------------------------- entry points


class FakeEntryPoint:
    """What `importlib.metadata.entry_points(group=...)` yields."""

    group = plugins.ENTRY_POINT_GROUP

    def __init__(self, name, plugin=None, error=None, version="1.2.3"):
        self.name, self._plugin, self._error = name, plugin, error
        self.value = f"fake_{name}.plugin"
        self.dist = types.SimpleNamespace(version=version)

    def load(self):
        if self._error is not None:
            raise self._error
        return self._plugin


@pytest.fixture
def entry_points(fresh_plugins, monkeypatch):
    """Installs fake entry points `a` and `b` (registering `sim_a` and `sim_b`);
    returns a function that loads them under a value of KLG_LOAD_PLUGINS."""
    installed = [FakeEntryPoint("a", SimilarityPlugin("sim_a")),
                 FakeEntryPoint("b", SimilarityPlugin("sim_b"), version="0.9")]

    def fake_entry_points(**kwargs):
        assert kwargs == {"group": "keras_learngene"}
        return list(installed)

    monkeypatch.setattr(plugins.metadata, "entry_points", fake_entry_points)

    def load(allow, extra=()):
        installed.extend(extra)
        if allow is None:
            monkeypatch.delenv("KLG_LOAD_PLUGINS", raising=False)
        else:
            monkeypatch.setenv("KLG_LOAD_PLUGINS", allow)
        plugins.reset()
        return {name for name in plugins.registry("similarities").names()
                if name.startswith("sim_")}

    return load


@pytest.mark.parametrize(
    "allow, loaded",
    [(None, {"sim_a", "sim_b"}), ("a", {"sim_a"}), ("b", {"sim_b"}), ("", set()),
     (" a , b ", {"sim_a", "sim_b"}), ("b,not_installed", {"sim_b"}), (",", set())],
    ids=["unset", "a", "b", "empty", "spaces", "unknown", "commas"],
)
def test_klg_load_plugins_allowlist(entry_points, allow, loaded):
    assert entry_points(allow) == loaded
    names = {row["name"] for row in plugins.describe_plugins()}
    assert names == {name[-1] for name in loaded}
    # the built-ins load whatever the allowlist says
    assert BUILTIN["similarities"] <= set(plugins.registry("similarities").names())


def test_entry_point_version_is_reported(entry_points):
    entry_points(None)
    rows = {row["name"]: row for row in plugins.describe_plugins()}
    assert rows["a"]["version"] == "1.2.3" and rows["b"]["version"] == "0.9"
    assert rows["a"]["similarities"] == ["sim_a"]
    assert plugins.registry("similarities").plugin_of("sim_b") == "b"


def test_entry_point_that_fails_to_load_is_reported(entry_points, capsys):
    broken = FakeEntryPoint("broken", error=ImportError("No module named 'klg_missing'"))
    assert entry_points(None, extra=[broken]) == {"sim_a", "sim_b"}
    assert plugins.plugin_errors() == {"broken": "ImportError: No module named 'klg_missing'"}
    assert "plugin 'broken' failed" in capsys.readouterr().err
    rows = {row["name"]: row for row in json.loads(invoke("plugins").stdout)}
    assert rows["broken"]["error"].startswith("ImportError")
    assert ROW_FIELDS <= set(rows["broken"]), "every row has the same fields"
    assert rows["broken"]["similarities"] == [] and rows["broken"]["version"] is None
    assert rows["a"]["error"] is None
    assert plugins.get_similarity("sim_a").name == "sim_a"


def test_excluded_broken_entry_point_is_never_loaded(entry_points):
    broken = FakeEntryPoint("broken", error=ImportError("never imported"))
    assert entry_points("a", extra=[broken]) == {"sim_a"}
    assert plugins.plugin_errors() == {}


def test_a_misspelt_klg_load_plugins_name_is_warned_about(entry_points, capsys):
    assert entry_points("a,bb") == {"sim_a"}
    assert ("KLG_LOAD_PLUGINS names 'bb', which is not an installed plugin; installed: a, b. "
            "Did you mean 'b'?") in capsys.readouterr().err
    entry_points("a,b")
    assert "KLG_LOAD_PLUGINS" not in capsys.readouterr().err


def test_an_unknown_name_says_which_installed_plugins_were_excluded(entry_points):
    entry_points("a")
    note = ("Installed plugins not loaded (KLG_LOAD_PLUGINS='a' excludes them): b; to use one, "
            "add its name to KLG_LOAD_PLUGINS or unset the variable.")
    with pytest.raises(PluginError, match=re.escape("Unknown similarity 'sim_b'.")) as error:
        plugins.get_similarity("sim_b")
    assert str(error.value).endswith(note)
    result = CliRunner().invoke(cli_module.cli, ["condense", "--method", "nope"])
    assert result.exit_code == 2 and note in " ".join(result.output.split()), result.output
    entry_points(None)  # every plugin loaded: nothing to add
    with pytest.raises(PluginError) as error:
        plugins.get_similarity("sim_c")
    assert "KLG_LOAD_PLUGINS" not in str(error.value)


# ------------------------------------------------------------- the command line


def invoke(*args):
    result = CliRunner().invoke(cli_module.cli, list(args))
    assert result.exit_code == 0, result.output
    return result


def test_klg_plugins_lists_installed_plugins_as_json(fresh_plugins):
    assert json.loads(invoke("plugins").stdout) == []

    plugins.register_plugin(ExtraPlugin(), name="extra")
    rows = json.loads(invoke("plugins").stdout)
    assert [row["name"] for row in rows] == ["extra"]
    (row,) = rows
    assert ROW_FIELDS <= set(row)
    assert row["version"] is None and row["error"] is None and row["builtin"] is False
    assert (row["forms"], row["similarities"], row["strategies"], row["commands"]) == (
        ["conv_only"], ["half"], ["learngene_last"], [])


def test_klg_plugins_all_includes_the_builtins(fresh_plugins):
    plugins.register_plugin(ExtraPlugin(), name="extra")
    rows = json.loads(invoke("plugins", "--all").stdout)
    assert [row["name"] for row in rows] == sorted(DEFAULT_PLUGIN.values()) + ["extra"]
    by_name = {row["name"]: row for row in rows}
    for kind, plugin in DEFAULT_PLUGIN.items():
        row = by_name[plugin]
        assert ROW_FIELDS <= set(row) and row["builtin"] is True
        assert BUILTIN[kind] <= set(row[kind])
        assert row[kind] == sorted(n for n in plugins.registry(kind).names()
                                   if plugins.registry(kind).plugin_of(n) == plugin)
        assert all(row[other] == [] for other in BUILTIN if other != kind)
    # without --all: the built-ins only are left out
    assert [row["name"] for row in json.loads(invoke("plugins").stdout)] == ["extra"]


class CommandPlugin:
    @keras_learngene.hookimpl
    def register_commands(self, cli):
        @cli.command("klg-test-hello")
        @click.argument("who")
        @click.option("--shout", is_flag=True)
        def hello(who, shout):
            """Say hello (a plugin's command)."""
            text = f"hello {who}"
            click.echo(text.upper() if shout else text)


class BrokenCommandPlugin:
    @keras_learngene.hookimpl
    def register_commands(self, cli):
        raise RuntimeError("no commands today")


@pytest.fixture
def plugin_commands(fresh_plugins):
    before = set(cli_module.cli.commands)
    yield
    for name in set(cli_module.cli.commands) - before:
        del cli_module.cli.commands[name]


def test_register_commands_adds_a_klg_subcommand(plugin_commands):
    plugins.register_plugin(CommandPlugin(), name="greeter")
    plugins.register_plugin(BrokenCommandPlugin(), name="mute")
    plugins.load_commands(cli_module.cli)

    assert "klg-test-hello" in cli_module.cli.commands
    assert invoke("klg-test-hello", "world").stdout == "hello world\n"
    assert invoke("klg-test-hello", "world", "--shout").stdout == "HELLO WORLD\n"
    assert "Say hello" in invoke("--help").stdout
    # the broken plugin is reported, the built-in commands still work
    assert plugins.plugin_errors()["mute"] == "RuntimeError: no commands today"
    rows = {row["name"]: row for row in json.loads(invoke("plugins").stdout)}
    assert rows["greeter"]["commands"] == ["klg-test-hello"]
    assert rows["mute"]["error"] == "RuntimeError: no commands today"


# ------------------------------------------------------------- conformance

SIMILARITIES = plugins.registry("similarities").names()
STRATEGIES = plugins.registry("strategies").names()
# "functional" is parametrised even before it is registered (then skipped)
FORMS = sorted(set(plugins.registry("forms").names()) | {"functional"})
WIDTH = 12


def features(seed, n=64):
    return np.random.default_rng(seed).normal(size=(n, WIDTH))


@pytest.mark.parametrize("name", SIMILARITIES)
def test_similarity_conformance(name):
    metric = plugins.get_similarity(name)
    assert isinstance(metric, Similarity)
    x, y, z = features(0), features(1), features(2)

    assert metric(x, x) == pytest.approx(1.0, abs=1e-4), "identical inputs must score ~1"
    for other in (y, -x, 2.0 * x + 1.0, np.tanh(x), x[::-1].copy()):
        value = metric(x, other)
        assert isinstance(value, float) and 0.0 <= value <= 1.0
    assert metric(x, y) < 0.9, "unrelated random features must not score ~1"

    acc = metric.accumulator(2, 3)
    for start in range(0, 64, 32):
        batch = slice(start, start + 32)
        acc.update([x[batch], y[batch]], [x[batch], y[batch], z[batch]])
    assert acc.num_examples == 64 and acc.num_batches == 2
    matrix = acc.result()
    assert matrix.shape == (2, 3)
    assert np.all((matrix >= 0.0) & (matrix <= 1.0))
    assert matrix[0, 0] == pytest.approx(1.0, abs=1e-4)
    assert matrix[1, 1] == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("name", STRATEGIES)
def test_strategy_conformance(name):
    strategy = plugins.get_strategy(name)
    assert isinstance(strategy, Strategy)
    if not strategy.generic:  # dedicated to one method's learngenes: a method asks for it
        assert name in {plugins.get_method(m).strategy
                        for m in plugins.registry("methods").names()}, name
        return
    for k in range(1, 5):
        for n in range(0, 6):
            slots = strategy.layout(k, n)
            assert len(slots) == k + n, (k, n, slots)
            assert [s for s in slots if s[0] == "learngene"] == [
                ("learngene", i) for i in range(k)], (k, n, slots)
            assert sum(source != "learngene" for source, _ in slots) == n
            for source, index in slots:
                assert source in SOURCES and 0 <= index < k, (k, n, slots)
            # sized by its depth instead: the same plan (tests/test_inherit.py builds them)
            assert strategy.new_units(k, k + n) == n
            assert strategy.layout_at_depth(k, k + n) == slots


def numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


@pytest.mark.parametrize("name", FORMS)
def test_form_conformance(name, model_zoo):
    if name not in plugins.registry("forms").names():
        pytest.skip(f"form {name!r} is not registered")
    form = plugins.get_form(name)
    assert isinstance(form, Form) and form.name == name
    matching = {kind: model for kind, model in model_zoo.items() if form.matches(model)}
    assert matching, f"form {name!r} matches none of {sorted(model_zoo)}"
    # the tiny models are enough where they match (seconds); else the presets
    tiny = {kind: model for kind, model in matching.items() if kind.startswith("tiny:")}
    matching = tiny or matching

    x = np.random.default_rng(0).uniform(0, 1, size=(4,) + TINY_SHAPE).astype("float32")
    for kind, model in matching.items():
        anatomy = form.split(model)
        assert anatomy.units and len(anatomy.unit_outputs) == len(anatomy.units)
        assert tuple(anatomy.input_shape) == TINY_SHAPE
        assert len(form.describe_units(model)) == len(anatomy.units)

        # stem -> units, called one after the other, reproduce the model's features
        h = x if anatomy.stem is None else anatomy.stem(x, training=False)
        inputs = []
        for unit in anatomy.units:
            inputs.append(h)
            h = unit(h, training=False)
        reference = keras.Model(model.inputs[0], anatomy.unit_outputs[-1])(x, training=False)
        np.testing.assert_allclose(numpy(h), numpy(reference), atol=1e-5,
                                   err_msg=f"{name} on {kind}")

        # a unit that keeps its input shape can be copied and freshly re-made
        same = [i for i, unit in enumerate(anatomy.units)
                if tuple(anatomy.unit_inputs[i].shape) == tuple(anatomy.unit_outputs[i].shape)]
        # every unit may downsample (keras-hub's VGG blocks pool): then a fresh unit
        # need only take the unit's own input
        preserve = bool(same)
        i = same[0] if same else 0
        unit, unit_in = anatomy.units[i], inputs[i]
        in_shape = tuple(anatomy.unit_inputs[i].shape[1:])
        original = [numpy(w) for w in unit.weights]
        expected = numpy(unit(unit_in, training=False))

        copy = form.copy_unit(unit, in_shape, name=f"conformance_copy_{i}")
        assert copy is not unit and copy.name == f"conformance_copy_{i}"
        copied = [numpy(w) for w in copy.weights]
        assert len(copied) == len(original)
        for a, b in zip(copied, original):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(numpy(copy(unit_in, training=False)), expected, atol=1e-5)

        fresh = form.fresh_unit(unit, in_shape, name=f"conformance_fresh_{i}",
                                preserve_shape=preserve)
        assert fresh is not unit and fresh.weights
        out = numpy(fresh(unit_in, training=False))
        assert out.shape == expected.shape
        fresh_weights = [numpy(w) for w in fresh.weights]
        assert not all(a.shape == b.shape and np.allclose(a, b)
                       for a, b in zip(fresh_weights, original)), "fresh unit has the weights"
        assert not np.allclose(out, expected, atol=1e-4)
        # the original unit is untouched
        for a, b in zip(unit.weights, original):
            np.testing.assert_array_equal(numpy(a), b)
