"""Recognise user mistakes (bad names, bad values, missing files) anywhere in an exception chain."""

from __future__ import annotations

from PIL import UnidentifiedImageError

# Exception types our code raises for bad input, with messages written for the user.
USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    FileNotFoundError,
    UnidentifiedImageError,
    KeyError,
)


def user_error_message(err: BaseException) -> str | None:
    """The message of the innermost user error in `err`'s cause chain (Hydra wraps instantiate errors)."""
    found: BaseException | None = None
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, USER_ERRORS):
            found = current
        current = current.__cause__ or current.__context__
    if found is None:
        return None
    return str(found.args[0]) if isinstance(found, KeyError) and found.args else str(found)
