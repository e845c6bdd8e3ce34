"""One error type for every kind of bad input.

Interfaces (CLI, web) turn a :class:`ModelError` into one clear message and a non-zero
status; the message always names the field, the value and what is allowed, and, for bad
content of a file the user gave, the file (:attr:`ModelError.file`).
"""

from __future__ import annotations


class ModelError(ValueError):
    """Bad input: a field holds a value outside what is allowed."""

    def __init__(self, field: str, value: object, allowed: str, file: str | None = None) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        # the user's file holding the bad value (None: not from a file, or the value is the
        # file itself); kept apart from the field so a field path reads the same in any file
        self.file = file
        super().__init__(f"{field}: got {value!r}; allowed: {allowed}")

    def in_file(self, file: str) -> ModelError:
        """The same error, naming the file it was found in (a file already named is kept:
        the innermost reader knows best)."""
        if self.file is not None:
            return self
        return type(self)(self.field, self.value, self.allowed, file)

    def __reduce__(self) -> tuple[type[ModelError], tuple[str, object, str, str | None]]:
        """Pickle by the parts: an error raised in a worker process (or on a Dask worker)
        reaches the caller as the same :class:`ModelError`, not as a broken pool
        (``Exception`` would pickle the one formatted message and fail to rebuild it)."""
        return (type(self), (self.field, self.value, self.allowed, self.file))
