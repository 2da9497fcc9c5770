"""docs/plugins.md and keras_learngene/hookspecs.py say the same thing
(as datasette checks its plugin hook docs).

- every hook spec has exactly one section whose heading is its signature,
  `### `name(args)``, equal to `inspect.signature` of the spec;
- the page documents no hook that does not exist: no other such heading, no
  other `register_*` name, and every `@hookimpl` function in its examples
  implements a real hook with arguments the spec has;
- each hook's section holds a complete example that, registered as a plugin,
  registers something through that hook.
"""

import inspect
import json
import pathlib
import re
import types

import numpy as np
import pytest
from click.testing import CliRunner

from keras_learngene import cli as cli_module
from keras_learngene import hookspecs, plugins
from keras_learngene.forms import Form
from keras_learngene.similarity import Similarity

pytestmark = pytest.mark.once  # backend-independent (conftest.ONCE_BACKEND)

PAGE = pathlib.Path(__file__).resolve().parents[1] / "docs" / "plugins.md"
SPEC_MARKER = f"{hookspecs.hookspec.project_name}_spec"  # where pluggy marks a hookspec
HEADING = re.compile(r"^###\s+`(?P<name>\w+)(?P<args>\([^`]*\))`\s*$", re.MULTILINE)
FENCE = re.compile(r"^```(?P<lang>\w*)[^\n]*\n(?P<body>.*?)^```\s*$", re.MULTILINE | re.DOTALL)
NOT_HOOKS = {"register_plugin"}  # `register_*` API names the page may mention


def hook_specs():
    """`{name: function}` of the functions `hookspecs` marks as hook specs."""
    return {name: fn for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
            if hasattr(fn, SPEC_MARKER)}


HOOKS = hook_specs()


def page():
    return PAGE.read_text(encoding="utf-8")


def sections():
    """`{hook name: (documented signature, section text)}` for each hook heading."""
    text = page()
    headings = list(HEADING.finditer(text))
    found = {}
    for i, match in enumerate(headings):
        end = headings[i + 1].start() if i + 1 < len(headings) else len(text)
        following = re.search(r"^#{1,3}\s", text[match.end():end], re.MULTILINE)
        if following:
            end = match.end() + following.start()
        assert match["name"] not in found, f"hook {match['name']!r} is documented twice"
        found[match["name"]] = (match["name"] + match["args"], text[match.end():end])
    return found


def python_blocks(text):
    return [m["body"] for m in FENCE.finditer(text) if m["lang"] == "python"]


def test_the_hook_specs_are_found():
    assert {"register_forms", "register_similarities", "register_strategies",
            "register_commands"} <= set(HOOKS)
    assert plugins.pm.hook.register_forms.spec.function is HOOKS["register_forms"]


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_every_hook_is_documented_with_its_signature(name):
    documented = sections()
    assert name in documented, f"docs/plugins.md has no section `### `{name}(...)``"
    signature = f"{name}{inspect.signature(HOOKS[name])}"
    assert documented[name][0] == signature, (
        f"docs/plugins.md documents {documented[name][0]!r}, the spec is {signature!r}")
    assert documented[name][1].strip(), f"the section of {name!r} is empty"


def test_the_docs_document_no_missing_hook():
    unknown = sorted(set(sections()) - set(HOOKS))
    assert not unknown, f"docs/plugins.md documents hooks that do not exist: {unknown}"
    mentioned = set(re.findall(r"\bregister_\w+", page())) - NOT_HOOKS
    assert mentioned <= set(HOOKS), (
        f"docs/plugins.md mentions hooks that do not exist: {sorted(mentioned - set(HOOKS))}")


def test_example_hook_implementations_match_the_specs():
    implemented = []
    for code in python_blocks(page()):
        for match in re.finditer(r"@(?:keras_learngene\.)?hookimpl[^\n]*\n\s*def (\w+)\(([^)]*)\)",
                                 code):
            name, args = match[1], {a.strip() for a in match[2].split(",") if a.strip()}
            implemented.append(name)
            assert name in HOOKS, f"an example implements {name!r}, which is no hook"
            spec_args = set(inspect.signature(HOOKS[name]).parameters)
            assert args <= spec_args, f"{name}{tuple(args)}: the spec takes {spec_args}"
    assert set(implemented) == set(HOOKS), "every hook has an example implementation"


def test_the_intro_states_the_loading_rules():
    intro = page().split("## Hooks")[0]
    assert f"`{plugins.ENTRY_POINT_GROUP}`" in intro
    assert f"[project.entry-points.{plugins.ENTRY_POINT_GROUP}]" in intro
    assert "`KLG_LOAD_PLUGINS`" in intro
    for module in plugins.DEFAULT_PLUGINS:
        assert module.rsplit(".", 1)[-1] in intro
    for word in ("unset", "empty", "PluginError", "plugin_errors", "klg plugins"):
        assert word in intro


def load_example(name, tmp_name):
    """The python example of hook `name`'s section, as a registered plugin module."""
    (code,) = python_blocks(sections()[name][1])
    module = types.ModuleType(tmp_name)
    exec(compile(code, f"docs/plugins.md:{name}", "exec"), module.__dict__)
    plugins.register_plugin(module, name=tmp_name)
    return module


@pytest.mark.parametrize("name, kind", [("register_forms", "forms"),
                                        ("register_similarities", "similarities"),
                                        ("register_strategies", "strategies")])
def test_registry_hook_examples_work(fresh_plugins, name, kind):
    load_example(name, "docs_example")
    registry = plugins.registry(kind)
    added = [n for n in registry.names() if registry.plugin_of(n) == "docs_example"]
    assert added, f"the {name} example registers nothing"
    assert plugins.plugin_errors() == {}
    for registered in added:
        obj = registry.get(registered)
        if kind == "forms":
            assert isinstance(obj, Form) and obj.name == registered
        elif kind == "similarities":
            x = np.random.default_rng(0).normal(size=(64, 6))
            y = np.random.default_rng(1).normal(size=(64, 4))
            assert isinstance(obj, Similarity)
            assert obj(x, x) == pytest.approx(1.0, abs=1e-6)
            assert 0.0 <= obj(x, y) < 0.5
        else:
            for k in range(1, 4):
                for n in range(4):
                    assert len(obj.layout(k, n)) == k + n


def test_command_hook_example_works(fresh_plugins):
    before = set(cli_module.cli.commands)
    try:
        load_example("register_commands", "docs_example")
        plugins.load_commands(cli_module.cli)
        added = set(cli_module.cli.commands) - before
        assert added == {"list-strategies"}
        result = CliRunner().invoke(cli_module.cli, ["list-strategies", "--json"])
        assert result.exit_code == 0, result.output
        described = json.loads(result.stdout)
        assert {"stack", "prepend", "interleave", "expand"} <= set(described)
    finally:
        for command in set(cli_module.cli.commands) - before:
            del cli_module.cli.commands[command]
