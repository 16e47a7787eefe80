"""The base of itsacat's errors: each carries a machine-readable code and an HTTP status.

`itsacat.nn` keeps its own `SpecError` and `ModelFileError` (subclasses of ValueError) because
it imports nothing else from itsacat; everything above it raises an `ItsacatError`.
"""

from __future__ import annotations


class ItsacatError(Exception):
    """An error whose message says what failed, on which value, and what to do."""

    http_status = 400

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message
