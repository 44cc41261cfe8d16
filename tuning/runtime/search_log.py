"""A copy of everything a search prints, kept in its folder: its log outlives Ray's job history (a platform restart).

The copy is made at the file descriptors, so it holds what the libraries print too, and the console gets every
byte as before.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

LOG_FILE = "search.log"
CHUNK_BYTES = 65536


def log_path(storage_path: str, search_name: str) -> Path:
    """Where the search `search_name` keeps its log, under a local `--storage-path`."""
    return Path(storage_path) / search_name / LOG_FILE


@contextlib.contextmanager
def copied_to(path: Path) -> Iterator[None]:
    """Append standard output and standard error, as they are written, to `path` while the block runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    with path.open("ab") as log:
        lock = threading.Lock()
        copies = [_Copy(descriptor, log, lock) for descriptor in (1, 2)]
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for copy in copies:
                copy.stop()


class _Copy:
    """Descriptor `descriptor` redirected into a pipe whose bytes a thread writes to the original and to `log`."""

    def __init__(self, descriptor: int, log: BinaryIO, lock: threading.Lock) -> None:
        self.descriptor, self.log, self.lock = descriptor, log, lock
        self.original = os.dup(descriptor)
        read_end, write_end = os.pipe()
        os.dup2(write_end, descriptor)
        os.close(write_end)
        self.read_end = read_end
        self.thread = threading.Thread(target=self._pump, name=f"search-log-{descriptor}", daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        while chunk := os.read(self.read_end, CHUNK_BYTES):
            os.write(self.original, chunk)
            with self.lock:
                self.log.write(chunk)
                self.log.flush()

    def stop(self) -> None:
        """Give the descriptor back; the thread drains the pipe and ends."""
        os.dup2(self.original, self.descriptor)  # closes the pipe's last write end
        self.thread.join(timeout=10)
        os.close(self.read_end)
        os.close(self.original)
