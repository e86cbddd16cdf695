"""A Ctrl-C that Dagster's own handler loses still stops a CLI run before it commits.

During a step Dagster's SIGINT handler raises an exception wherever the main thread happens to be.
When that is inside a garbage-collection callback (SQLAlchemy registers some), Python prints
"Exception ignored in ..." and the run goes on to commit: the user pressed Ctrl-C and the run
published anyway. The signal module's wakeup fd is written at C level for every signal, whichever
Python handler is installed, so each step reads it before it takes the partition and before it
commits. SIGTERM counts too: during a step Dagster installs its SIGINT handler on SIGTERM as well
(dagster._utils.interrupts.setup_interrupt_handlers), so the fd then holds a 15, not a 2.
"""

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

_pipe: int | None = None  # the read end, while a CLI run is in progress
_interrupted = False


@contextmanager
def never_lost() -> Iterator[None]:
    """Within it, every SIGINT (and SIGTERM, which the CLI turns into one) is remembered."""
    global _pipe, _interrupted
    if threading.current_thread() is not threading.main_thread():  # only the main thread gets signals
        yield
        return
    read, write = os.pipe()
    os.set_blocking(read, False)
    os.set_blocking(write, False)
    previous = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
    _pipe, _interrupted = read, False
    try:
        yield
    finally:
        signal.set_wakeup_fd(previous)
        _pipe, _interrupted = None, False
        os.close(read)
        os.close(write)


def raise_if_interrupted() -> None:
    """Raise Dagster's interruption (the step fails as interrupted, the run as failed) if a SIGINT
    or SIGTERM arrived since the run began, even one whose exception was swallowed."""
    global _interrupted
    if _pipe is None:
        return
    try:
        while chunk := os.read(_pipe, 512):
            _interrupted = _interrupted or signal.SIGINT in chunk or signal.SIGTERM in chunk
    except BlockingIOError:  # drained
        pass
    if _interrupted:
        raise dg.DagsterExecutionInterruptedError()
