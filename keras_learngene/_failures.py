"""What the `klg` command line says when a command fails, decided by where
the exception was raised (its traceback):

- a user error: one of the library's own checks, an exception of a type in
  `USER_ERRORS` raised by a `raise` statement in keras-learngene's code, or
  an `OSError` (a file, a disk) anywhere but in a plugin: one `Error: ...`
  line, the message;
- a plugin's failure: any exception raised in or under the code of an
  installed plugin: one `Error:` line naming the plugin, where it failed
  (its function, file and line) and the exception, with `klg -v` for the
  traceback (a `ValueError` a plugin raises itself, as a method's `check`
  refusing an option does, is its message, with the plugin named);
- a bug: anything else; the traceback, then a line that asks for a report.
"""

import linecache
import os
import re
import traceback

from keras_learngene.version import __version__

USER_ERRORS = (ValueError, TypeError, ImportError, RuntimeError, OSError)
_LIBRARY = os.path.dirname(os.path.abspath(__file__)) + os.sep
_RAISE = re.compile(r"(^|:\s*)raise\b")


def _frames(exc):
    """`(module, function, file, line number)` of each frame, outermost first."""
    return [(frame.f_globals.get("__name__", ""), frame.f_code.co_qualname,
             frame.f_code.co_filename, lineno)
            for frame, lineno in traceback.walk_tb(exc.__traceback__)]


def _raised_here(frame):
    """Whether the frame's line is a `raise` statement (not an operation that failed)."""
    return bool(_RAISE.search(linecache.getline(frame[2], frame[3]).strip()))


def _in_library(frame):
    return os.path.abspath(frame[2]).startswith(_LIBRARY)


def _plugin_frame(frames):
    """`(plugin name, frame)` of the innermost frame of an installed plugin's code."""
    from keras_learngene import plugins

    for frame in reversed(frames):
        if _in_library(frame):
            continue
        try:
            name = plugins.plugin_of_module(frame[0])
        except Exception:  # noqa: BLE001 - the registries themselves may be what failed
            name = None
        if name:
            return name, frame
    return None


def _one_line(exc):
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def explain(exc):
    """`(kind, message)`: `kind` is `"user"`, `"plugin"` or `"bug"`; the
    message is the line to print after `Error: `."""
    frames = _frames(exc)
    message = str(exc)
    if isinstance(exc, KeyError) and len(exc.args) == 1:  # KeyError quotes its text
        message = str(exc.args[0])
    innermost = frames[-1] if frames else None
    # a check's `raise`: any of USER_ERRORS in the library, a ValueError in a plugin
    checked = innermost is not None and _raised_here(innermost) and isinstance(
        exc, USER_ERRORS if _in_library(innermost) else ValueError)
    found = _plugin_frame(frames)
    if found:
        plugin, frame = found
        if checked:
            return "plugin", f"{message} (plugin {plugin!r}, {frame[1]})"
        return "plugin", (f"plugin {plugin!r} failed in {frame[1]} ({os.path.basename(frame[2])}"
                          f":{frame[3]}): {_one_line(exc)}. Nothing was written. This is a bug "
                          "in the plugin, not in keras-learngene: report it to the plugin's "
                          "authors (`klg -v ...` shows the traceback).")
    if checked or isinstance(exc, OSError):
        return "user", message
    return "bug", (f"{_one_line(exc)}. This is a bug in keras-learngene {__version__}, not a "
                   "problem with your input: please report it with the command you ran and the "
                   "traceback above.")
