"""An instant `klg` (issue #16): `klg --help` starts no backend, yet
`keras.saving.load_model` still opens learngene files once `keras_learngene`
is imported, and plugins' commands still show in `klg --help`.

`klg` starts through the top-level launcher `_klg`, which asks the package to
defer its import (see `keras_learngene/__init__.py`); every other importer
gets the whole package at once. Each check runs in a fresh interpreter.
"""

import ast
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import keras
import pytest
from conftest import TINY_SHAPE, backend

import keras_learngene as klg
from keras_learngene.learngene import Learngene

pytestmark = pytest.mark.once  # backend-independent (conftest.ONCE_BACKEND)

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("keras", "tensorflow", "jax", "torch")


def _run(code, *args, env=None, timeout=240):
    """Runs Python `code` in a fresh interpreter; returns (result, seconds)."""
    full_env = {**os.environ, "KLG_LOAD_PLUGINS": "", **(env or {})}
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                            env=full_env, timeout=timeout, cwd=ROOT)
    return result, time.perf_counter() - start


# runs `klg ARGS` as the console script does, then reports which heavy modules it imported
_KLG = textwrap.dedent("""
    import sys, _klg
    sys.argv = ["klg", *sys.argv[1:]]
    try:
        _klg.main()
    except SystemExit as exit:
        code = exit.code
    heavy = sorted(m for m in {heavy!r} if m in sys.modules)
    print("HEAVY=" + ",".join(heavy), file=sys.stderr)
    sys.exit(code)
""").format(heavy=HEAVY)


def _heavy(result):
    line = [ln for ln in result.stderr.splitlines() if ln.startswith("HEAVY=")][-1]
    return [m for m in line[len("HEAVY="):].split(",") if m]


def test_the_console_script_starts_through_the_launcher():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '\nklg = "_klg:main"\n' in pyproject and 'py-modules = ["_klg"]' in pyproject


@pytest.mark.parametrize("args", [["--help"], ["condense", "--help"], ["train", "-h"],
                                  ["--version"]])
def test_help_imports_no_backend(args):
    result, _ = _run(_KLG, *args)
    assert result.returncode == 0, result.stderr
    assert _heavy(result) == [], f"klg {' '.join(args)} imported {_heavy(result)}"
    assert "Usage:" in result.stdout or "version" in result.stdout


@pytest.fixture(scope="module")
def learngene_file(tmp_path_factory):
    keras.utils.set_random_seed(0)
    unit = keras.layers.Conv2D(2, 3, padding="same", name="unit_0")
    path = tmp_path_factory.mktemp("startup") / "lg.keras"
    Learngene(TINY_SHAPE, None, [unit], form="vgg", provenance={"method": "test"}).save(path)
    return str(path)


@pytest.mark.parametrize("imports", ["import keras, keras_learngene",
                                     "import keras_learngene, keras",
                                     "import keras_learngene.similarity, keras"])
def test_load_model_opens_a_learngene_once_the_package_is_imported(learngene_file, imports):
    code = (f"{imports}\nimport sys\nm = keras.saving.load_model(sys.argv[1])\n"
            "print(type(m).__name__, m.provenance['method'])")
    result, _ = _run(code, learngene_file)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["Learngene", "test"]


def test_a_deferred_import_completes_on_first_use(learngene_file):
    """What a `klg` command sees: the package imported lazily, loading through
    the library (or any exported name) registers everything first."""
    code = textwrap.dedent("""
        import sys, _klg, keras_learngene
        assert "keras" not in sys.modules
        from keras_learngene import hookimpl, plugins, __version__  # still cheap
        assert "keras" not in sys.modules
        from keras_learngene._io import load_keras
        m = load_keras(sys.argv[1], what="learngene")
        import keras
        m2 = keras.saving.load_model(sys.argv[1])  # every serializable is registered now
        print(type(m).__name__, type(m2).__name__, keras_learngene.condense.__name__)
    """)
    result, _ = _run(code, learngene_file)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["Learngene", "Learngene", "condense"]


def test_any_exported_object_loads_the_whole_package():
    code = textwrap.dedent("""
        import sys, _klg
        from keras_learngene import Learngene
        import keras_learngene
        missing = [n for n in keras_learngene.__all__ if n not in vars(keras_learngene)]
        print(Learngene.__name__, "missing=" + ",".join(missing))
    """)
    result, _ = _run(code)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["Learngene", "missing="]


def test_the_package_exports_the_same_names_every_way():
    """`__all__`, the lazy tables and the `TYPE_CHECKING` imports (which the API
    docs read) must agree."""
    import keras_learngene as package

    lazy = set(package._SUBMODULES) | set(package._OBJECTS) | {"hookimpl", "__version__"}
    assert lazy == set(package.__all__)
    tree = ast.parse(Path(package.__file__).read_text())
    (block,) = [node for node in tree.body
                if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"]
    typed = {alias.asname or alias.name for node in block.body for alias in node.names}
    assert typed | {"hookimpl", "__version__"} == set(package.__all__)
    for name in package.__all__:
        assert getattr(klg, name) is not None and name in dir(klg)
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        klg.nope  # noqa: B018


# ---------------------------------------------------------------- plugins' commands

_PLUGIN_CHEAP = '''
import click
import keras_learngene


@keras_learngene.hookimpl
def register_commands(cli):
    @cli.command("hello-cheap")
    def hello():
        """Say hello (a plugin that imports nothing heavy)."""
        click.echo("hello")
'''

_PLUGIN_EAGER = '''
import click
from keras_learngene import Learngene  # loads the whole package, Keras included


@click.command("hello-eager")
def hello():
    """Say which class the plugin imported."""
    click.echo(Learngene.__name__)


from keras_learngene import hookimpl


@hookimpl
def register_commands(cli):
    cli.add_command(hello)
'''


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory):
    """Two installed-looking plugins (a module and a .dist-info with entry points)."""
    site = tmp_path_factory.mktemp("site")
    for name, source in (("cheap", _PLUGIN_CHEAP), ("eager", _PLUGIN_EAGER)):
        (site / f"klg_test_{name}.py").write_text(source)
        info = site / f"klg_test_{name}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: klg-test-{name}\n"
                                       "Version: 0.1\n")
        (info / "entry_points.txt").write_text(f"[keras_learngene]\ntest_{name} = "
                                               f"klg_test_{name}\n")
    return str(site)


def test_plugin_commands_show_in_help_without_a_backend(plugin_site):
    env = {"PYTHONPATH": plugin_site, "KLG_LOAD_PLUGINS": "test_cheap"}
    result, _ = _run(_KLG, "--help", env=env)
    assert result.returncode == 0, result.stderr
    assert "hello-cheap" in result.stdout and "condense" in result.stdout
    assert _heavy(result) == []
    result, _ = _run(_KLG, "hello-cheap", env=env)
    assert result.stdout == "hello\n"


def test_a_plugin_that_imports_the_library_eagerly_still_works(plugin_site):
    env = {"PYTHONPATH": plugin_site, "KLG_LOAD_PLUGINS": "test_cheap,test_eager"}
    result, _ = _run(_KLG, "--help", env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "hello-cheap" in result.stdout and "hello-eager" in result.stdout
    assert "keras" in _heavy(result)  # its choice; the library cannot help it
    result, _ = _run(_KLG, "hello-eager", env=env)
    assert result.stdout == "Learngene\n", result.stderr[-2000:]
    result, _ = _run(_KLG, "plugins", env=env)
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["test_cheap"]["commands"] == ["hello-cheap"]
    assert rows["test_eager"]["commands"] == ["hello-eager"]


# ---------------------------------------------------------------- backend chatter

_CHATTER = ("absl::InitializeLog", "oneDNN custom operations", "cpu_feature_guard")


def test_plugins_lists_without_backend_chatter():
    result, _ = _run(_KLG, "plugins", "--all")
    assert result.returncode == 0, result.stderr[-2000:]
    names = {row["name"] for row in json.loads(result.stdout)}
    assert "keras_learngene.default_plugins.forms" in names
    assert not [c for c in _CHATTER if c in result.stderr], result.stderr
    assert result.stderr.strip().splitlines() == [f"HEAVY={','.join(_heavy(result))}"]


def test_plugins_lists_every_builtin_without_importing_a_backend():
    """The built-ins register by reference ("module:class"), so listing them
    imports no Keras: `klg plugins` answers as fast as `--help`."""
    result, _ = _run(_KLG, "plugins", "--all")
    assert result.returncode == 0, result.stderr[-2000:]
    assert _heavy(result) == [], f"klg plugins imported {_heavy(result)}"
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    methods = rows["keras_learngene.default_plugins.methods"]["methods"]
    assert {"auto", "auto_distill", "heur", "tleg", "sws"} <= set(methods)
    assert "vit" in rows["keras_learngene.default_plugins.forms"]["forms"]
    assert "linear_expansion" in rows["keras_learngene.default_plugins.strategies"]["strategies"]


def test_a_misspelt_backend_lists_the_backends():
    message = ("KERAS_BACKEND='nonsense' is not a Keras backend; set it to one of tensorflow, "
               "jax, torch (or unset it).")
    result, _ = _run(_KLG, "condense", env={"KERAS_BACKEND": "nonsense"})
    assert result.returncode == 1 and f"Error: {message}" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and _heavy(result) == []
    result, _ = _run("import keras_learngene", env={"KERAS_BACKEND": "nonsense"})
    assert f"ImportError: {message}" in result.stderr, result.stderr


def _installed(entry_point):
    from importlib import metadata

    return any(ep.name == entry_point for ep in metadata.entry_points(group="keras_learngene"))


@pytest.mark.skipif(not _installed("method_spread"), reason="the example plugin is not installed")
def test_the_example_method_plugin_is_listed_without_a_backend():
    result, _ = _run(_KLG, "plugins", env={"KLG_LOAD_PLUGINS": "method_spread"})
    assert result.returncode == 0, result.stderr[-2000:]
    (row,) = json.loads(result.stdout)
    assert row["methods"] == ["spread"] and row["error"] is None
    assert _heavy(result) == []


@pytest.mark.skipif(backend() != "tensorflow", reason="TensorFlow's start-up lines")
def test_verbose_shows_the_backend_start_up_lines(learngene_file):
    # a command that starts the backend (`klg plugins` no longer does)
    quiet, _ = _run(_KLG, "inspect", learngene_file)
    result, _ = _run(_KLG, "-v", "inspect", learngene_file)
    assert quiet.returncode == 0 and result.returncode == 0, result.stderr[-2000:]
    assert "tensorflow" in _heavy(quiet)
    # a hand-built learngene with a minimal provenance is described, not a KeyError
    assert "(test, form vgg, 20 params)" in quiet.stdout
    assert not [c for c in _CHATTER if c in quiet.stderr], quiet.stderr
    assert "oneDNN custom operations" in result.stderr or "absl" in result.stderr
