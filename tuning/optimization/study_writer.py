"""The study searcher's database writes, sent in order by a thread of their own: Tune's loop never waits on the database.

Tune asks its searcher for each new trial and tells it each result in the one loop that also hands every trial its next
epoch, so a database round trip there holds up every trial. The searcher keeps the study in memory and queues its
writes here; one thread sends them in order, retrying while the database is unreachable (`retrying`). A write that
fails for good is raised at the searcher's next call, which ends the search.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import optuna
from sqlalchemy.exc import DBAPIError, OperationalError

from tuning.runtime.error_text import first_line

Result = TypeVar("Result")
RETRY_AFTER_S = (1.0, 2.0, 3.0, 5.0, 5.0, 10.0, 10.0, 10.0, 15.0, 15.0, 15.0, 15.0)
"""Waits between attempts at a study-database call while the database is unreachable (about 2 minutes in
all: a PostgreSQL restart takes seconds). Trials keep training meanwhile."""


class StudyWriter:
    """An ordered queue of database writes and the thread that sends them."""

    def __init__(self) -> None:
        self._writes: queue.Queue[Callable[[], object]] = queue.Queue()
        self._failure: Exception | None = None
        self._thread: threading.Thread | None = None

    def put(self, write: Callable[[], object]) -> None:
        """Queue `write`; raises the failure of an earlier write, if one failed for good."""
        self.raise_failure()
        if self._thread is None:
            self._thread = threading.Thread(target=self._send, name="study-writer", daemon=True)
            self._thread.start()
        self._writes.put(write)

    def flush(self) -> None:
        """Wait until every queued write is sent; raises the failure of one that could not be."""
        self._writes.join()
        self.raise_failure()

    def raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _send(self) -> None:
        while True:
            write = self._writes.get()
            try:
                if self._failure is None:  # after a failure, later writes would only land out of order
                    retrying(write)
            except Exception as error:  # noqa: BLE001 - raised again in Tune's loop by the searcher's next call
                self._failure = error
            finally:
                self._writes.task_done()


def retrying(call: Callable[[], Result], waits: tuple[float, ...] = RETRY_AFTER_S) -> Result:
    """`call()`, called again after each wait in `waits` while the study database cannot be reached."""
    for wait in waits:
        try:
            return call()
        except (optuna.exceptions.StorageInternalError, DBAPIError) as error:
            lost = lost_connection(error)
            if lost is None:
                raise
            print(f"study database unreachable ({lost:.120}); trying again in {wait:g} s", file=sys.stderr, flush=True)
            time.sleep(wait)
    return call()


def lost_connection(error: Exception) -> str | None:
    """The first line of a lost or refused database connection behind `error` (Optuna wraps SQLAlchemy's), else None."""
    cause = error if isinstance(error, DBAPIError) else error.__cause__
    if isinstance(cause, DBAPIError) and (cause.connection_invalidated or isinstance(cause, OperationalError)):
        return first_line(cause.orig) if cause.orig is not None else type(cause).__name__
    return None
