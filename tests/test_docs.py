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
import shutil
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


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site, built once with `mkdocs build --strict`: what a reader sees."""
    for module in ("mkdocs", "mkdocstrings", "material"):
        pytest.importorskip(module)
    folder = tmp_path_factory.mktemp("site") / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-f",
         str(ROOT / "mkdocs.yml"), "-d", str(folder)],
        cwd=ROOT, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{_tail(result.stderr)}"
    return folder


def test_site_builds_strict(site):
    assert (site / "index.html").exists()


# Material's content column is about 690 px wide on a desktop window (1280 px) and
# 640 px at its narrowest with both sidebars; labels must stay readable there.
CONTENT_COLUMN_PX = 640
READABLE_PX = 12


def _home_figure(html):
    match = re.search(r'<svg[^>]*aria-labelledby="klg-figure-title"[^>]*>.*?</svg>', html,
                      re.DOTALL)
    assert match, "the home page has no ancestry -> learngene -> descendants figure"
    return match[0]


def test_home_figure_renders_at_a_readable_size(site):
    """The figure has a pixel size (a `width="100%"` SVG inside Material's fit-content
    `<figure>` fell back to about 300 x 120 px, labels 3-4 px), scaled down only where
    the column is narrower, and its smallest label is >= 12 px in a 640 px column."""
    svg = _home_figure((site / "index.html").read_text(encoding="utf-8"))
    tag = svg[:svg.index(">")]
    width, height = (float(re.search(rf'\s{a}="([\d.]+)"', tag)[1]) for a in ("width", "height"))
    _, _, vb_width, vb_height = (float(v) for v in re.search(r'viewBox="([^"]+)"', tag)[1].split())
    assert width >= CONTENT_COLUMN_PX and height >= 250, (width, height)
    assert abs(width / height - vb_width / vb_height) < 0.01  # not distorted
    assert "max-width: 100%" in tag and "height: auto" in tag
    scale = min(width, CONTENT_COLUMN_PX) / vb_width
    fonts = [float(f) for f in re.findall(r'font-size="([\d.]+)"', svg)]
    assert fonts and min(fonts) * scale >= READABLE_PX, (min(fonts), scale)


@pytest.mark.skipif(not shutil.which("chromium"), reason="needs Debian's chromium")
def test_home_figure_measured_in_a_browser(site, tmp_path):
    """The same, measured by headless Chromium in a 1280 px wide window."""
    page = site / "_measure.html"
    script = (
        "<script>addEventListener('load', () => {"
        "const s = document.querySelector('svg[aria-labelledby=\"klg-figure-title\"]');"
        "const r = s.getBoundingClientRect(), k = r.width / s.viewBox.baseVal.width;"
        "const f = Math.min(...[...s.querySelectorAll('text')].map("
        "t => parseFloat(t.getAttribute('font-size')) * k));"
        "document.body.dataset.measure = `${r.width} ${r.height} ${f}`;});</script></body>")
    page.write_text((site / "index.html").read_text(encoding="utf-8").replace("</body>", script),
                    encoding="utf-8")
    try:
        result = subprocess.run(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
             "--window-size=1280,2000", "--virtual-time-budget=3000",
             f"--user-data-dir={tmp_path}", page.as_uri()],
            capture_output=True, text=True, timeout=120)
    finally:
        page.unlink()
    measured = re.search(r'data-measure="([\d.]+) ([\d.]+) ([\d.]+)"', result.stdout)
    assert measured, _tail(result.stderr)
    width, height, font = (float(v) for v in measured.groups())
    assert width >= CONTENT_COLUMN_PX and height >= 250 and font >= READABLE_PX, measured[0]


def test_home_figure_is_the_scripts_output():
    """docs/index.md's figure is what scripts/home_figure.py writes."""
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "home_figure.py")],
                            capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() in (DOCS / "index.md").read_text(encoding="utf-8")


def test_no_sentinel_or_none_defaults_in_the_site(site):
    """click's `UNSET` never reaches a page, and the CLI reference's Default column
    says `False` for a flag and nothing (not `None`) where there is no default."""
    for page in site.rglob("*.html"):
        assert "Sentinel.UNSET" not in page.read_text(encoding="utf-8"), page
    cli_page = (site / "cli" / "index.html").read_text(encoding="utf-8")
    cells = re.findall(r"<td>(.*?)</td>", cli_page, re.DOTALL)
    assert "None" not in [c.strip() for c in cells]
    overwrite = re.search(r"<td><code>--overwrite</code></td>(.*?)</tr>", cli_page, re.DOTALL)
    assert overwrite and "<code>False</code>" in overwrite[1]


def _images(html_file):
    """The `src` of each `<img>` of a built page, resolved to a file."""
    html = html_file.read_text(encoding="utf-8")
    return [(html_file.parent / src).resolve() for src in re.findall(r'<img[^>]*\ssrc="([^"]+)"',
                                                                      html)]


def _results_pages():
    """Each committed results folder with plots: (its report page, its PNGs)."""
    for folder in sorted((DOCS / "results").iterdir()):
        if (folder / "report.md").exists() and list((folder / "images").glob("*.png")):
            yield folder.name


@pytest.mark.parametrize("name", list(_results_pages()))
def test_each_results_report_shows_its_plots(site, name):
    images = _images(site / "results" / name / "report" / "index.html")
    assert images, f"results/{name}/report.md shows no plot"
    for image in images:
        assert image.is_file(), image


@pytest.mark.parametrize("page, folder", [
    ("benchmark", "results/full-v2/images"),  # the page leads with the v2 results
    ("family", "images"),  # the family run, drawn by scripts/family_figure.py
])
def test_results_pages_show_plots_on_the_page(site, page, folder):
    images = _images(site / page / "index.html")
    for image in images:
        assert image.is_file(), image
    assert [i for i in images if (site / folder).resolve() in i.parents], (
        f"{page}.md shows no plot from {folder}")


def test_family_figure_is_drawn_from_the_committed_records(tmp_path):
    """scripts/family_figure.py draws the family page's figure from
    docs/results/family; the page shows the committed PNG."""
    out = tmp_path / "family.png"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "family_figure.py"),
                    str(DOCS / "results" / "family"), str(out)],
                   capture_output=True, text=True, timeout=300, check=True)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (DOCS / "images" / "family_minus_scratch.png").is_file()
    assert "](images/family_minus_scratch.png)" in (DOCS / "family.md").read_text(
        encoding="utf-8")


@pytest.mark.parametrize("anchor", [
    "keras_learngene.condense", "keras_learngene.inherit", "keras_learngene.select_units",
    "keras_learngene.inherited_layers", "keras_learngene.scratch_twin", "keras_learngene.Learngene",
    "keras_learngene.Learngene.save", "keras_learngene.Learngene.load",
    "keras_learngene.plot_similarity",
])
def test_api_tables_show_types(site, anchor):
    """The parameter tables' Type column (read from the annotations) is filled in
    (`*args` and `**options` rows aside: their types are the method's options)."""
    html = (site / "api" / "index.html").read_text(encoding="utf-8")
    start = html.index(f'id="{anchor}"')
    table = html[start:html.index("</table>", start)]
    assert "<th>Type</th>" in table
    rows = re.findall(r'<tr class="doc-section-item">(.*?)</tr>', table, re.DOTALL)
    assert rows
    for row in rows:
        name, kind = re.findall(r"<td>(.*?)</td>", row, re.DOTALL)[:2]
        if re.sub(r"<[^>]+>", "", name).strip().startswith("*"):
            continue
        assert re.sub(r"<[^>]+>", "", kind).strip(), f"{anchor}: {name.strip()} has no type"
