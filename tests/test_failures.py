"""How `klg` ends a failed command (`keras_learngene._failures`): the library's
own user errors as one `Error:` line, an installed plugin's failure as one
line naming the plugin (its traceback with `-v`), anything else as a bug:
the traceback and a request to report it. Nothing is written in any case."""

from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import TINY_BUILDERS

import keras_learngene as klg
from keras_learngene import _failures, _inherit, _names, plugins
from keras_learngene.cli import cli
from keras_learngene.methods import Condensed, Method

pytestmark = pytest.mark.once  # backend-independent (conftest.ONCE_BACKEND)


def _raised(call, *args):
    try:
        call(*args)
    except Exception as exc:  # noqa: BLE001
        return exc
    raise AssertionError("no exception")


def test_a_check_of_the_library_is_a_user_error():
    kind, message = _failures.explain(_raised(_inherit._check_size, -1, None))
    assert kind == "user" and message.startswith("n_layers=-1: the number of new units")


def test_an_operation_failing_in_the_library_is_a_bug():
    exc = _raised(_names.source_of, None)  # AttributeError: None has no startswith
    kind, message = _failures.explain(exc)
    assert kind == "bug"
    assert message.startswith("AttributeError: ") and "This is a bug in keras-learngene" in message
    # a ValueError raised by an operation, not by a check, is a bug too
    kind, _ = _failures.explain(_raised(lambda: int("three")))
    assert kind == "bug"


def test_an_os_error_is_the_users():
    kind, message = _failures.explain(_raised(open, "/no/such/file.keras"))
    assert kind == "user" and "No such file" in message


class Broken(Method):
    """Fails in `condense` as a plugin's bug would; refuses `bad` in `check`."""

    name = "broken"
    description = "fails (test plugin)"
    options = {"bad": 0}

    def check(self, job):
        if job.options["bad"]:
            raise ValueError(f"bad={job.options['bad']!r} is refused by the plugin.")

    def condense(self, job):
        return Condensed([len(job.anatomy.units) // 0], {})


def boom(num_units, n_layers):
    """A plan that divides by zero."""
    return [("learngene", i) for i in range(num_units)] + [("fresh", 0)] * (n_layers // 0)


class BrokenPlugin:
    @klg.hookimpl
    def register_methods(self, register):
        register("broken", Broken)

    @klg.hookimpl
    def register_strategies(self, register):
        register("boom", boom)


@pytest.fixture
def broken(fresh_plugins, tmp_path, monkeypatch):
    plugins.register_plugin(BrokenPlugin(), name="klg-broken")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _run(args):
    return CliRunner().invoke(cli, args)


def test_a_plugin_methods_exception_names_the_plugin_and_writes_nothing(broken):
    result = _run(["condense", "--method", "broken", "--out", "lg.keras"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert lines == [
        "Error: plugin 'klg-broken' failed in Broken.condense (test_failures.py:"
        f"{Broken.condense.__code__.co_firstlineno + 1}): ZeroDivisionError: integer division "
        "or modulo by zero. Nothing was written. This is a bug in the plugin, not in "
        "keras-learngene: report it to the plugin's authors (`klg -v ...` shows the "
        "traceback)."]
    assert not (broken / "lg.keras").exists()
    assert [p.name for p in broken.iterdir()] == []

    verbose = _run(["-v", "condense", "--method", "broken", "--out", "lg.keras"])
    assert verbose.exit_code == 1
    assert "Traceback" in verbose.output and "ZeroDivisionError" in verbose.output
    assert "Error: plugin 'klg-broken' failed in Broken.condense" in verbose.output
    assert not (broken / "lg.keras").exists()


def test_the_errors_page_says_so():
    page = (Path(__file__).resolve().parents[1] / "docs" / "errors.md").read_text()
    for fragment in ("Nothing was written. This is a bug in the plugin, not in keras-learngene: "
                     "report it to the plugin's authors (`klg -v ...` shows the traceback).",
                     "is refused by the plugin. (plugin 'klg-broken', Broken.check)",
                     "not a problem with your input: please report it with the command you ran "
                     "and the traceback above."):
        assert fragment in page, fragment


def test_a_plugins_own_check_is_its_message_with_the_plugin_named(broken):
    result = _run(["condense", "--method", "broken", "-o", "bad=1", "--out", "lg.keras"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "Error: bad=1 is refused by the plugin. (plugin 'klg-broken', Broken.check)" in \
        result.output


def test_a_plugin_strategys_exception_names_the_plugin(broken):
    klg.condense(TINY_BUILDERS["vit"](), num_units=2, method="front").save("lg.keras")
    result = _run(["inherit", "lg.keras", "--strategy", "boom", "--n-layers", "1",
                   "--num-classes", "2", "--out", "d.keras"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "Error: plugin 'klg-broken' failed in boom (test_failures.py:" in result.output
    assert "ZeroDivisionError" in result.output
    assert not (broken / "d.keras").exists()


def test_a_bug_is_a_traceback_with_a_request_to_report_it(fresh_plugins, tmp_path,
                                                          monkeypatch):
    monkeypatch.chdir(tmp_path)
    TINY_BUILDERS["vit"]().save("m.keras")
    monkeypatch.setattr(klg.Learngene, "load", staticmethod(lambda path: {}["provenance"]))
    result = _run(["inspect", "m.keras"])
    assert result.exit_code == 1
    assert "Traceback (most recent call last)" in result.output
    assert "Error: KeyError: 'provenance'. This is a bug in keras-learngene " in result.output
    assert "please report it with the command you ran and the traceback above." in \
        result.output
