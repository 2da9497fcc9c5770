"""Interrupting `klg` with real signals leaves no partial output (issue #16).

Each command runs in its own process (`python -m _klg`, as the console script
starts) and gets a POSIX signal mid-run:

- SIGINT (Ctrl-C): `Error: interrupted` on stderr, exit code 130, no
  traceback; no output file, and the temporary file of a save under way
  (`.klg-*.keras`, next to the destination) is removed.
- SIGKILL, and SIGTERM (Python's default: the process ends at once, exit
  code 143 in a shell): nothing can run, so nothing is cleaned up. The
  destination is written only by an atomic rename of a finished temporary
  file, so it is either absent or the old file, intact; a hidden
  `.klg-*.keras` temporary file may be left in its folder (safe to delete).
- `klg bench` resumes after either, without recomputing a finished run.

The benchmark test runs `klg bench --profile quick` with the quick profile
shrunk (one tiny ancestry, a few runs), so that it takes seconds.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.skipif(os.name != "posix", reason="POSIX signals"),
              pytest.mark.once]  # backend-independent (conftest.ONCE_BACKEND)

ROOT = Path(__file__).resolve().parents[1]


class Klg:
    """`klg ARGS` in a subprocess, its stderr read line by line as it comes."""

    def __init__(self, args, cwd, code=None):
        command = [sys.executable, "-m", "_klg", *args] if code is None else [
            sys.executable, "-c", code, *args]
        env = {**os.environ, "KLG_LOAD_PLUGINS": "", "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.lines = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stderr:
            self.lines.append(line)

    @property
    def stderr(self):
        return "".join(self.lines)

    def wait_for(self, done, timeout=300):
        """Waits until `done()` is true; fails if the process ends first."""
        deadline = time.monotonic() + timeout
        while not done():
            if self.proc.poll() is not None:
                self.reader.join(5)
                pytest.fail(f"klg ended (exit {self.proc.returncode}) before the signal:\n"
                            f"{self.stderr[-3000:]}")
            if time.monotonic() > deadline:
                self.proc.kill()
                pytest.fail(f"timed out waiting:\n{self.stderr[-3000:]}")
            time.sleep(0.1)

    def said(self, text):
        return lambda: text in self.stderr

    def signal(self, sig, timeout=120):
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail(f"klg did not end after {sig!r}:\n{self.stderr[-3000:]}")
        self.reader.join(5)
        return self.proc.returncode

    def finish(self, timeout=600):
        stdout = self.proc.stdout.read()  # stderr is the reader thread's
        self.proc.wait(timeout)
        self.reader.join(5)
        return self.proc.returncode, stdout


def _assert_interrupted(klg, code):
    assert code == 130, klg.stderr[-3000:]
    assert "Error: interrupted" in klg.stderr, klg.stderr[-3000:]
    assert "Traceback" not in klg.stderr, klg.stderr[-3000:]


def _leftovers(folder):
    return sorted(p.name for p in Path(folder).iterdir())


CONDENSE = ["condense", "--pseudo-epochs", "50", "--out", "lg.keras"]
TRAIN = ["train", "--preset", "vit_tiny", "--classes", "0,1", "--epochs", "500",
         "--out", "m.keras"]


@pytest.mark.parametrize("args, started", [(CONDENSE, "condensing"), (TRAIN, "training")],
                         ids=["condense", "train"])
def test_sigint_mid_run_leaves_nothing(tmp_path, args, started):
    klg = Klg(args, tmp_path)
    klg.wait_for(klg.said(started))
    time.sleep(2)  # inside the training loop
    _assert_interrupted(klg, klg.signal(signal.SIGINT))
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("args, started", [(CONDENSE, "condensing"), (TRAIN, "training")],
                         ids=["condense", "train"])
def test_sigkill_mid_run_leaves_nothing(tmp_path, args, started):
    (tmp_path / args[-1]).write_bytes(b"old result")
    klg = Klg([*args, "--overwrite"], tmp_path)
    klg.wait_for(klg.said(started))
    time.sleep(2)
    assert klg.signal(signal.SIGKILL) == -signal.SIGKILL
    assert _leftovers(tmp_path) == [args[-1]]
    assert (tmp_path / args[-1]).read_bytes() == b"old result"


def test_sigterm_mid_run_ends_at_once_and_keeps_the_old_file(tmp_path):
    """What docs/errors.md says of SIGTERM (a scheduler's stop, `timeout`)."""
    (tmp_path / "lg.keras").write_bytes(b"old result")
    klg = Klg([*CONDENSE, "--overwrite"], tmp_path)
    klg.wait_for(klg.said("condensing"))
    time.sleep(2)
    assert klg.signal(signal.SIGTERM) == -signal.SIGTERM
    assert _leftovers(tmp_path) == ["lg.keras"]
    assert (tmp_path / "lg.keras").read_bytes() == b"old result"


# A signal while the file is being written: `keras.Model.save` is slowed down
# after writing part of the temporary file, and the test signals then.
_SLOW_SAVE = textwrap.dedent("""
    import sys, time, _klg, keras

    def save(model, filepath, *args, **kwargs):
        with open(filepath, "wb") as f:
            f.write(b"PK\\x03\\x04 part of a model")
        print("saving now", file=sys.stderr, flush=True)
        time.sleep(120)

    keras.Model.save = save
    sys.argv = ["klg", *sys.argv[1:]]
    _klg.main()
""")
@pytest.fixture(scope="module")
def quick_save(tmp_path_factory):
    """`klg inherit` of a tiny learngene (kept in a folder of its own): the
    quickest command that saves a model."""
    import warnings

    from conftest import TINY_BUILDERS

    import keras_learngene as klg

    path = tmp_path_factory.mktemp("input") / "lg.keras"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "looks untrained"
        klg.condense(TINY_BUILDERS["vit"](2), method="front", num_units=2).save(str(path))
    return ["inherit", str(path), "--n-layers", "1", "--num-classes", "2", "--out", "m.keras"]


@pytest.mark.parametrize("existing", [False, True], ids=["new", "overwrite"])
def test_sigint_while_saving_removes_the_temporary_file(tmp_path, quick_save, existing):
    args = quick_save + (["--overwrite"] if existing else [])
    if existing:
        (tmp_path / "m.keras").write_bytes(b"old result")
    klg = Klg(args, tmp_path, code=_SLOW_SAVE)
    klg.wait_for(klg.said("saving now"))
    assert [p for p in _leftovers(tmp_path) if p.startswith(".klg-")], "saves via a temp file"
    _assert_interrupted(klg, klg.signal(signal.SIGINT))
    assert _leftovers(tmp_path) == (["m.keras"] if existing else [])
    if existing:
        assert (tmp_path / "m.keras").read_bytes() == b"old result"


@pytest.mark.parametrize("existing", [False, True], ids=["new", "overwrite"])
def test_sigkill_while_saving_leaves_at_most_a_hidden_temporary_file(tmp_path, quick_save,
                                                                    existing):
    args = quick_save + (["--overwrite"] if existing else [])
    if existing:
        (tmp_path / "m.keras").write_bytes(b"old result")
    klg = Klg(args, tmp_path, code=_SLOW_SAVE)
    klg.wait_for(klg.said("saving now"))
    assert klg.signal(signal.SIGKILL) == -signal.SIGKILL
    left = _leftovers(tmp_path)
    temporary = [p for p in left if p != "m.keras"]
    assert len(temporary) == 1 and temporary[0].startswith(".klg-")
    assert temporary[0].endswith(".keras")
    if existing:
        assert (tmp_path / "m.keras").read_bytes() == b"old result"
    else:
        assert "m.keras" not in left


# ---------------------------------------------------------------- klg bench

_BENCH = textwrap.dedent("""
    import dataclasses, sys, _klg
    sys.path.insert(0, {tests!r})
    from test_bench import TINY  # the benchmark tests' tiny profile, kept current by them
    from keras_learngene.bench import _profiles

    fields = {{f.name for f in dataclasses.fields(TINY)}}
    smaller = {{"methods": ("scratch", "front", "back"), "sensitivity_methods": ("scratch",)}}
    _profiles.PROFILES["quick"] = dataclasses.replace(
        TINY, **{{k: v for k, v in smaller.items() if k in fields}})
    sys.argv = ["klg", *sys.argv[1:]]
    _klg.main()
""").format(tests=str(ROOT / "tests"))


def _records(out):
    path = out / "runs.jsonl"
    if not path.exists():
        return []
    done = []
    for line in path.read_text().splitlines(True):
        if line.endswith("\n") and line.strip():
            done.append(json.loads(line))
    return done


@pytest.mark.once(backend="torch")  # as tests/test_bench.py: torch runs it fastest
def test_bench_resumes_after_sigint_and_sigkill_without_recomputing(tmp_path):
    try:
        import test_bench  # noqa: F401
    except Exception as exc:  # the benchmark's profiles are being reworked
        pytest.skip(f"tests/test_bench.py's TINY profile does not build: {exc}")
    out = tmp_path / "bench"
    args = ["bench", "--profile", "quick", "--out", str(out)]

    klg = Klg(args, tmp_path, code=_BENCH)
    klg.wait_for(lambda: len(_records(out)) >= 1)
    _assert_interrupted(klg, klg.signal(signal.SIGINT))
    first = _records(out)

    klg = Klg(args, tmp_path, code=_BENCH)
    klg.wait_for(lambda: len(_records(out)) >= len(first) + 1)
    assert klg.signal(signal.SIGKILL) == -signal.SIGKILL
    second = _records(out)
    assert second[:len(first)] == first, "finished runs are kept as they were"

    klg = Klg(args, tmp_path, code=_BENCH)
    code, stdout = klg.finish()
    assert code == 0, klg.stderr[-3000:]
    assert f"{len(second)} already done" in klg.stderr
    assert "training the" not in klg.stderr, "the cached ancestry is reused"
    final = _records(out)
    assert final[:len(second)] == second, "finished runs are never recomputed"
    ids = [r["run_id"] for r in final]
    assert len(ids) == len(set(ids))
    assert "report:" in stdout
