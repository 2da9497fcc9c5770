"""Keeps TensorFlow's start-up chatter off the `klg` user's stderr.

Importing TensorFlow writes lines like `WARNING: All log messages before
absl::InitializeLog() is called are written to STDERR` and `I0000 ...
port.cc:153] oneDNN custom operations are on ...` straight to file
descriptor 2, from C++, before `TF_CPP_MIN_LOG_LEVEL` is read, so neither that
variable nor Python can stop them. `quiet_tensorflow_import()` installs an
import hook that runs the import of the `tensorflow` package with file
descriptor 2 redirected to a temporary file, then writes back every captured
line except that chatter. Only the command line installs it (`klg -v` does
not); the library never touches a user's file descriptors.
"""

import contextlib
import importlib.abc
import os
import re
import sys
import tempfile

# C++ log lines (glog/absl format: severity, date, time, thread, file:line]), absl's
# notice, and the continuation line of the CPU feature guard's message
_CHATTER = re.compile(
    r"^(?:[IW]\d{4} [\d:.]+\s+\d+ \S+:\d+\]"
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|To enable the following instructions: )"
)


@contextlib.contextmanager
def _filtered_stderr():
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [line for line in capture.read().decode(errors="replace").splitlines(True)
                    if not _CHATTER.match(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


class _Loader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def __getattr__(self, name):  # get_resource_reader, is_package, ...
        return getattr(self.loader, name)

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        with _filtered_stderr():
            self.loader.exec_module(module)


class _Finder(importlib.abc.MetaPathFinder):
    """Wraps the loader of the top-level `tensorflow` package (its submodules
    are imported while that package's `__init__` runs, inside the filter)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "tensorflow":
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _Loader(spec.loader)
                return spec
        return None


def quiet_tensorflow_import():
    """Filters TensorFlow's start-up lines from stderr when it is imported
    later in this process (a no-op if it already is, or if the hook is in)."""
    if "tensorflow" in sys.modules or any(isinstance(f, _Finder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _Finder())
