"""Recognise the project's own user errors anywhere in an exception chain; everything else is a bug.

Only `neurogrow.errors.UserError` (raised with a message written for the user) and a mandatory config
value left unset (OmegaConf's `MissingMandatoryValue`, e.g. `data.train_dir`) become a one-line error;
any other exception keeps its traceback. A `UserError` raised in a DataLoader worker reaches the main
process re-raised by torch with the worker's traceback inside its message: that wall is cut back to the
original message.
"""

from __future__ import annotations

from omegaconf.errors import MissingMandatoryValue

from neurogrow.errors import UserError

__all__ = ["user_error_message"]

_WORKER_TRACEBACK = "Original Traceback (most recent call last):"


def _clean(err: BaseException) -> str:
    message = str(err.args[0]) if err.args else str(err)
    if _WORKER_TRACEBACK not in message:
        return message
    marker = f"{type(err).__module__}.{type(err).__qualname__}: "
    _, sep, tail = message.rpartition(marker)
    return tail.strip() if sep else message.splitlines()[-1].strip()


def user_error_message(err: BaseException) -> str | None:
    """The message of the innermost user error in `err`'s cause chain (Hydra wraps instantiate errors)."""
    found: BaseException | None = None
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (UserError, MissingMandatoryValue)):  # `???` left in the config
            found = current
        current = current.__cause__ or current.__context__
    return None if found is None else _clean(found)
