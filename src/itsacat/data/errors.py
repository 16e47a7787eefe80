"""Errors raised while reading data sets and pictures."""

from __future__ import annotations

from itsacat.errors import ItsacatError


class DatasetError(ItsacatError):
    """A data set that cannot be used for training; the message names the file and the key."""


class ImageError(ItsacatError):
    """A picture that cannot be turned into model input."""

    STATUS_BY_CODE = {"unsupported_format": 415, "too_many_pixels": 413, "not_found": 404}

    def __init__(self, code: str, message: str):
        super().__init__(code, message)
        self.http_status = self.STATUS_BY_CODE.get(code, 400)
