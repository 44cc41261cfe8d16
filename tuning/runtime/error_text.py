"""An exception in one line, for the one-line errors and notes the platform prints."""

from __future__ import annotations

FIRST_LINE_LIMIT = 200


def first_line(error: BaseException, limit: int = FIRST_LINE_LIMIT) -> str:
    """The first line of what `error` says, cut at `limit` characters; its type's name when it says nothing."""
    lines = str(error).strip().splitlines()
    return lines[0][:limit] if lines else type(error).__name__
