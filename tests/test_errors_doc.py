"""docs/errors.md says what each bad input gets; this keeps a sample of its
command-line rows true: each command below runs through the CLI and must exit
with the documented code and print the documented message, and the page must
still carry that row (the same command, code and message)."""

import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import TINY_BUILDERS, forged_npz

from keras_learngene import condense
from keras_learngene.cli import cli

pytestmark = pytest.mark.once  # backend-independent (conftest.ONCE_BACKEND)

PAGE = Path(__file__).resolve().parents[1] / "docs" / "errors.md"


def _rows():
    """`(command cell, exit code, message cell)` of every table row of the page."""
    rows = []
    for line in PAGE.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if len(cells) == 3 and cells[1].lstrip("-").isdigit():
            rows.append((cells[0], int(cells[1]), cells[2]))
    return rows


def _message(cell):
    """The message of a cell: the text of its first code span, less `...`."""
    match = re.match(r"(``?)(.+?)\1(?:\s|$)", cell)
    assert match, cell
    return match.group(2).strip()


# (documented command, arguments run here, fragment of the message that must appear)
SAMPLE = [
    ("`klg condense --num-units 0`", ["condense", "--num-units", "0"], None),
    ("`klg condense --method front --similarity cosine`",
     ["condense", "--method", "front", "--similarity", "cosine"], None),
    ("`klg condense -o tasks`", ["condense", "-o", "tasks"], None),
    ("`klg condense --pseudo-epochs -1`", ["condense", "--pseudo-epochs", "-1"], None),
    ("`klg condense --selection best`", ["condense", "--selection", "best"], None),
    ("`klg condense --similarity linear_cak`", ["condense", "--similarity", "linear_cak"],
     None),
    ("`klg condense --classes shirts`", ["condense", "--classes", "shirts"], None),
    ("`klg condense --image-size 32x32` (no `--data`)", ["condense", "--image-size", "32x32"],
     None),
    ("`klg inherit LG --n-layers -1 ...`",
     ["inherit", "vit.keras", "--n-layers", "-1", "--num-classes", "2"], None),
    ("`klg inherit LG --num-classes 2` (neither size) or `--n-layers 2 --depth 5` (both)",
     ["inherit", "vit.keras", "--n-layers", "2", "--depth", "5", "--num-classes", "2"], None),
    ("`klg inherit LG --depth 1 ...` on a learngene of 3 units (`stack`)",
     ["inherit", "lg3.keras", "--depth", "1", "--num-classes", "2"], None),
    ("`klg inherit LG --input-shape 0x0x1 ...`",
     ["inherit", "vit.keras", "--n-layers", "1", "--num-classes", "2", "--input-shape",
      "0x0x1"], None),
    ("`klg train` (neither) or `klg train --preset vit_tiny --model m.keras` (both)",
     ["train", "--preset", "vit_tiny", "--model", "vit.keras"], None),
    ("`klg train --preset vit_tiny --epochs 0`", ["train", "--preset", "vit_tiny", "--epochs",
                                                  "0"], None),
    ("`klg train --preset vit_tiny --classes 0,12`",
     ["train", "--preset", "vit_tiny", "--classes", "0,12"], None),
    ("`klg bench --methods front,back`", ["bench", "--methods", "front,back"], None),
    ("`klg bench --report-only --out empty_folder`",
     ["bench", "--report-only", "--out", "empty_folder"], None),
    ("`--out lg.h5`", ["condense", "--out", "lg.h5"], None),
    ("`--out lg.keras`, which exists", ["condense", "--out", "lg.keras"], None),
    ("`--out missing/lg.keras`", ["condense", "--out", "missing/lg.keras"],
     "/missing' does not exist; create it first."),
    ("`klg inspect nope.keras`", ["inspect", "nope.keras"], None),
    ("a truncated `.keras` file (`condense --ancestry`, `inherit`, `inspect`, `train --model`)",
     ["inspect", "t.keras"], "'t.keras' is not a valid .keras file (truncated, or not a Keras "
     "archive): it starts like a zip archive but its end is missing ("),
    ("an empty file", ["inspect", "empty.keras"], "the file is empty (0 bytes); re-save"),
    ("a text file named `.keras`", ["inherit", "notes.keras", "--n-layers", "1",
                                    "--num-classes", "2"],
     "it is not a zip archive (20 bytes, starting with b'this is '); re-save or re-download"),
    ("an ancestry instead of a learngene (`inherit`, `inspect`)", ["inspect", "vit.keras"],
     None),
    ("`--data big.npz` whose header claims more than the file holds (truncated, damaged, "
     "forged)", ["train", "--preset", "vit_tiny", "--data", "big.npz"], None),
    ("`--data ragged.npz` holding an object array (e.g. images of different sizes)",
     ["train", "--preset", "vit_tiny", "--data", "ragged.npz"], None),
    ("`--data notes.npz`, a text file", ["train", "--preset", "vit_tiny", "--data", "notes.npz"],
     None),
    ("`--data one.npz`, a single array saved with `np.save`",
     ["train", "--preset", "vit_tiny", "--data", "one.npz"], None),
    ("`--color-mode rgb` (`condense`, `train --model`) on a model of 1-channel images",
     ["condense", "--ancestry", "vit.keras", "--data", "pics.npz", "--color-mode", "rgb"], None),
    ("`klg condense --data pics.npz --image-size 32x32` (the ancestry takes 28x28 images)",
     ["condense", "--data", "pics.npz", "--image-size", "32x32"], None),
    ("`klg train --preset vit_tiny --classes 3` (one class)",
     ["train", "--preset", "vit_tiny", "--classes", "3"], None),
    ("`klg inherit LG --num-classes 1 ...`",
     ["inherit", "vit.keras", "--n-layers", "1", "--num-classes", "1"], None),
    ("`--data single_class.npz` (`train`, `condense`): images of one class",
     ["train", "--preset", "vit_tiny", "--data", "single_class.npz"], None),
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("errors")
    TINY_BUILDERS["vit"]().save(str(folder / "vit.keras"))
    condense(TINY_BUILDERS["vit"](), num_units=3, method="front").save(str(folder / "lg3.keras"))
    whole = (folder / "vit.keras").read_bytes()
    (folder / "t.keras").write_bytes(whole[: len(whole) // 2])
    (folder / "empty.keras").write_bytes(b"")
    (folder / "notes.keras").write_bytes(b"this is not a model\n")
    (folder / "lg.keras").write_bytes(b"old")
    (folder / "empty_folder").mkdir()
    forged_npz(folder / "big.npz", (550_000_000,))
    np.savez(folder / "ragged.npz", x=np.array([np.zeros((2, 2)), np.zeros((3, 3))], dtype=object),
             y=[0, 1])
    (folder / "notes.npz").write_text("this is not an npz\n")
    with open(folder / "one.npz", "wb") as f:
        np.save(f, np.zeros((4, 8, 8), np.uint8))
    np.savez(folder / "pics.npz", x=np.zeros((40, 8, 8), np.uint8), y=np.arange(40) % 2)
    np.savez(folder / "single_class.npz", x=np.zeros((40, 8, 8), np.uint8), y=np.zeros(40, int))
    return folder


def test_the_page_has_rows():
    assert len(_rows()) >= 40


@pytest.mark.parametrize("command, args, fragment", SAMPLE, ids=[" ".join(a) for _, a, _ in SAMPLE])
def test_the_documented_message_is_the_message(folder, monkeypatch, command, args, fragment):
    rows = {cell: (code, text) for cell, code, text in _rows()}
    assert command in rows, f"docs/errors.md lost the row {command!r}"
    code, text = rows[command]
    documented = _message(text)
    monkeypatch.chdir(folder)
    before = sorted(p.name for p in folder.iterdir())
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    if fragment is None:  # the whole documented message, up to any "..."
        fragment = documented.split("...")[0].strip()
    else:
        assert fragment.split("(")[0].strip() in documented or fragment in documented
    assert f"Error: {fragment}" in result.output or fragment in result.output, result.output
    assert "Error: " in result.output
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing written
    assert (folder / "lg.keras").read_bytes() == b"old"
