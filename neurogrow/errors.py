"""The project's own error type for mistakes a user can fix (bad option, missing file, bad data).

The command-line entries print a `UserError` as one line; every other exception is a bug and keeps its
traceback. It subclasses `ValueError` so that callers catching `ValueError` keep working.
"""

from __future__ import annotations

__all__ = ["UserError", "UserFileNotFoundError"]


class UserError(ValueError):
    """A bad input, explained for the user in the message (one line, saying what to do)."""


class UserFileNotFoundError(UserError, FileNotFoundError):
    """A file or folder the user pointed to (or must provide) is missing."""
