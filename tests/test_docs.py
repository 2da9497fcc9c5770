"""The documentation is tested like code.

- Every tutorial under docs/tutorials/ runs top to bottom. Fenced blocks whose language is
  `python` or `bash` are executed in order; a block marked `.skip` is not. Markdown only
  renders the marker in the attribute form, so write ```` ```{.python .skip} ```` (or
  ```` ```{.bash .skip title="not executed"} ````); a bare ```` ```python skip ```` would
  break the page, and is rejected here. Python blocks of a page share one namespace; bash
  blocks each run in their own `bash` with `set -euo pipefail`. A page runs in a fresh
  temporary directory (a stand-in for the root of a checkout: `benchmarks/` and `plugins/`
  are linked into it), with `KLG_LOAD_PLUGINS=""` so installed third-party plugins stay out.
- docs/cli.md renders the click commands (mkdocs-click).
- Every public name has a docstring (the API reference is built from them).
- The site builds with `mkdocs build --strict`.

The suite runs once per backend; these checks do not depend on it, so they run once, on the
tensorflow pass (the tutorials that need other backends start them in subprocesses).
"""

import dataclasses
import inspect
import os
import pathlib
import re
import subprocess
import sys
import time

import keras
import pytest

import keras_learngene
from keras_learngene import datasets, forms, models, plugins, similarity

pytestmark = pytest.mark.once  # the docs do not depend on the backend (conftest.ONCE_BACKEND)

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
TUTORIALS = sorted((DOCS / "tutorials").glob("*.md"))
EXECUTED = ("python", "bash")
BASH_TIMEOUT = 600

FENCE = re.compile(
    r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^\n`]*)\n"
    r"(?P<body>.*?)"
    r"^(?P=indent)(?P=fence)[ \t]*$",
    re.MULTILINE | re.DOTALL,
)


@dataclasses.dataclass
class Block:
    """One fenced code block of a Markdown page."""

    page: str
    line: int
    info: str
    lang: str
    skip: bool
    code: str

    @property
    def where(self):
        return f"{self.page}:{self.line}"


def parse_info(info):
    """`(lang, skip)` of an info string: `python`, `python title="x"`, or `{.python .skip}`."""
    info = info.strip()
    if info.startswith("{"):
        classes = re.findall(r"(?:^|\s)\.([\w-]+)", info.strip("{} "))
        return (classes[0] if classes else ""), "skip" in classes[1:]
    words = info.split()
    return (words[0] if words else ""), False


def code_blocks(path):
    """The fenced code blocks of a Markdown file, in order."""
    text = path.read_text(encoding="utf-8")
    blocks = []
    for match in FENCE.finditer(text):
        indent = match["indent"]
        body = match["body"]
        if indent:
            body = "".join(line[len(indent):] if line.startswith(indent) else line.lstrip()
                           for line in body.splitlines(keepends=True))
        lang, skip = parse_info(match["info"])
        line = text.count("\n", 0, match.start()) + 1
        blocks.append(Block(str(path.relative_to(ROOT)), line, match["info"].strip(), lang,
                            skip, body))
    return blocks


def _tail(text, n=4000):
    return text if len(text) <= n else "...\n" + text[-n:]


def run_bash(block, cwd, env):
    result = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + block.code],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=BASH_TIMEOUT,
    )
    if result.returncode:
        pytest.fail(
            f"bash block at {block.where} exited with {result.returncode}\n"
            f"--- code\n{block.code}--- stdout\n{_tail(result.stdout)}\n"
            f"--- stderr\n{_tail(result.stderr)}",
            pytrace=False,
        )
    return result


def page_env():
    env = dict(os.environ)
    env["KLG_LOAD_PLUGINS"] = ""
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # `python` and `klg` in the tutorials are this interpreter's
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return env


# ----------------------------------------------------------------------------- tutorials


def test_there_are_tutorials():
    names = {path.stem for path in TUTORIALS}
    assert {"quickstart", "cli", "bring_your_own_model", "writing_a_plugin", "backends",
            "benchmark", "your_data", "keras_hub"} <= names


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs(path, tmp_path, monkeypatch, capsys):
    blocks = [b for b in code_blocks(path) if b.lang in EXECUTED and not b.skip]
    assert blocks, f"{path.name} has no executed code block"
    for name in ("benchmarks", "plugins"):
        (tmp_path / name).symlink_to(ROOT / name, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KLG_LOAD_PLUGINS", "")
    plugins.reset()
    namespace = {"__name__": f"tutorial_{path.stem}"}
    env = page_env()
    start = time.perf_counter()
    timings = []
    try:
        for block in blocks:
            block_start = time.perf_counter()
            if block.lang == "python":
                code = compile(block.code, block.where, "exec")
                try:
                    exec(code, namespace)
                except Exception as exc:
                    raise AssertionError(
                        f"python block at {block.where} raised {type(exc).__name__}: {exc}\n"
                        f"--- code\n{block.code}"
                    ) from exc
            else:
                run_bash(block, tmp_path, env)
            timings.append((time.perf_counter() - block_start, block.line))
    finally:
        plugins.reset()  # forget plugins a page registered in this process
        keras.backend.clear_session()
    slowest = ", ".join(f"line {line}: {seconds:.1f} s"
                        for seconds, line in sorted(timings, reverse=True)[:3])
    with capsys.disabled():  # shown with `pytest -s` and in the progress output
        print(f"\n[docs] {path.name}: {time.perf_counter() - start:.1f} s ({slowest})", end="")


@pytest.mark.parametrize("path", sorted(DOCS.rglob("*.md")), ids=lambda p: str(p.relative_to(DOCS)))
def test_code_block_markers_render(path):
    """```` ```python skip ```` is no fence to Markdown (the page would show raw text):
    the marker must be written in the attribute form, ```` ```{.python .skip} ````."""
    for block in code_blocks(path):
        if not block.info.startswith("{"):
            assert "skip" not in block.info.split()[1:], (
                f"{block.where}: write ```{{.{block.lang} .skip}} to mark a block not executed"
            )


def test_code_block_parser():
    assert parse_info("python") == ("python", False)
    assert parse_info('python title="plugin.py"') == ("python", False)
    assert parse_info("{.python .skip}") == ("python", True)
    assert parse_info('{.bash .skip title="not executed"}') == ("bash", True)
    assert parse_info("text") == ("text", False)


# ----------------------------------------------------------------------------- the CLI page


def test_cli_reference_is_rendered_from_the_commands():
    """docs/cli.md renders the click group itself (mkdocs-click), every subcommand
    included, so it cannot go out of date."""
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert "::: mkdocs-click" in text
    assert ":module: keras_learngene.cli" in text and ":command: cli" in text
    assert ":prog_name: klg" in text and ":list_subcommands: true" in text


def test_cli_reference_renders_every_command():
    from mkdocs_click._docs import make_command_docs

    from keras_learngene.cli import cli

    text = "\n".join(make_command_docs("klg", cli, depth=1, style="table",
                                       list_subcommands=True))
    for name in cli.commands:
        assert f"klg {name}" in text, name


# ----------------------------------------------------------------------------- docstrings


def _public_names():
    """(qualified name, object) of the functions, classes and modules in
    `keras_learngene.__all__` and in the `__all__` of the subpackages it re-exports.
    Constants (tuples, dicts, paths, the version string) and pluggy's `hookimpl` marker are
    not documented by a docstring of their own."""
    for module in (keras_learngene, models, datasets, forms, similarity):
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.ismodule(obj) or inspect.isroutine(obj) or (
                    callable(obj) and hasattr(obj, "__wrapped__")):
                yield f"{module.__name__}.{name}", obj


PUBLIC = list(_public_names())


@pytest.mark.parametrize("obj", [obj for _, obj in PUBLIC], ids=[name for name, _ in PUBLIC])
def test_public_name_has_docstring(obj):
    # a class's own docstring, not one inherited from keras.Model or object
    doc = obj.__dict__.get("__doc__") if inspect.isclass(obj) else inspect.getdoc(obj)
    assert doc and doc.strip(), f"{obj!r} has no docstring"


def test_api_page_constants_are_current():
    """docs/api.md quotes the values of a few constants; they must be the code's."""
    text = (DOCS / "api.md").read_text(encoding="utf-8")
    for value in (datasets.DATASETS, datasets.BASE_CLASSES, datasets.NOVEL_CLASSES):
        assert f"`{value!r}`".replace("'", '"') in text, value
    assert f'`"{datasets.DATA_DIR_ENV}"`' in text
    assert f"`{datasets.FASHION_MNIST_DEBIAN_DIR}`" in text


def test_hookimpl_is_documented():
    """`keras_learngene.hookimpl` is pluggy's marker; the hook spec module documents it."""
    assert keras_learngene.hookimpl is keras_learngene.hookspecs.hookimpl
    assert "hookimpl" in (keras_learngene.hookspecs.__doc__ or "")


# ----------------------------------------------------------------------------- the site


def test_site_builds_strict(tmp_path):
    for module in ("mkdocs", "mkdocstrings", "material"):
        pytest.importorskip(module)
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-f",
         str(ROOT / "mkdocs.yml"), "-d", str(tmp_path / "site")],
        cwd=ROOT, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{_tail(result.stderr)}"
    assert (tmp_path / "site" / "index.html").exists()
