"""One error type for every kind of bad input.

Interfaces (CLI, web) turn a :class:`ModelError` into one clear message and a non-zero
status; the message always names the field, the value and what is allowed.
"""

from __future__ import annotations


class ModelError(ValueError):
    """Bad input: a field holds a value outside what is allowed."""

    def __init__(self, field: str, value: object, allowed: str) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(f"{field}: got {value!r}; allowed: {allowed}")

    def __reduce__(self) -> tuple[type[ModelError], tuple[str, object, str]]:
        """Pickle by the three parts: an error raised in a worker process (or on a Dask
        worker) reaches the caller as the same :class:`ModelError`, not as a broken pool
        (``Exception`` would pickle the one formatted message and fail to rebuild it)."""
        return (type(self), (self.field, self.value, self.allowed))
