"""Ctrl-C (SIGINT) for the `klg` command line: `Error: interrupted`, exit
code 130, no traceback, no partial output.

Python turns SIGINT into a `KeyboardInterrupt` wherever the main thread
happens to be, and that exception does not always unwind: raised inside a
garbage-collection callback or a `__del__` (backends run some), it is printed
as "Exception ignored" and swallowed, and the command runs on. So the handler
installed here raises `KeyboardInterrupt` as usual (the command unwinds, its
`finally` blocks remove temporary files, `klg` exits with 130) and also arms
a fallback: if the process is still running `GRACE_SECONDS` later, or as soon
as Python reports the interrupt as swallowed (`sys.unraisablehook`, before it
prints a traceback), it removes the temporary files of the saves under way
and exits with 130 itself. Outputs are only ever created by renaming a finished temporary file,
so either way no partial output is left.
"""

import os
import signal
import sys
import threading

GRACE_SECONDS = 3.0
EXIT_CODE = 130  # 128 + SIGINT, what shells report for Ctrl-C
MESSAGE = "Error: interrupted"

_state = {"reported": False}
_lock = threading.Lock()


def report():
    """Prints `Error: interrupted` once (the handler's fallback or the CLI)."""
    with _lock:
        if _state["reported"]:
            return
        _state["reported"] = True
    try:
        sys.stderr.flush()
    except Exception:  # noqa: BLE001 - e.g. a reentrant write: the message still goes out
        pass
    try:  # straight to the user's stderr: no Python buffer or lock in the way, and not
        # into the capture of `_quiet` if the interrupt came while TensorFlow was importing
        os.write(_state.get("fd", 2), f"\n{MESSAGE}\n".encode())
    except OSError:
        pass


def _give_up():
    learngene = sys.modules.get("keras_learngene.learngene")  # no save under way if absent
    for path in list(getattr(learngene, "PENDING_TEMPORARY_FILES", ())):
        try:
            os.remove(path)
        except OSError:
            pass
    report()
    os._exit(EXIT_CODE)


def _handler(signum, frame):
    timer = threading.Timer(GRACE_SECONDS, _give_up)
    timer.daemon = True
    timer.start()
    raise KeyboardInterrupt


def _unraisable(hook):
    def unraisable(info):
        if isinstance(info.exc_value, KeyboardInterrupt):  # swallowed: it cannot unwind
            _give_up()
        hook(info)

    return unraisable


def install():
    """Installs the SIGINT handler (main thread only; where SIGINT is not
    ignored, e.g. by `nohup` or a background job)."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        return
    signal.signal(signal.SIGINT, _handler)
    _state.setdefault("fd", os.dup(2))  # the user's stderr, whatever fd 2 becomes
    # an interrupt raised in a garbage-collection callback or `__del__` is printed as
    # "Exception ignored ... Traceback ... KeyboardInterrupt" and dropped: end at once instead
    sys.unraisablehook = _unraisable(sys.unraisablehook)
