"""Errors raised while building a report."""

from __future__ import annotations

from itsacat.errors import ItsacatError


class ReportError(ItsacatError):
    """A report that cannot be built; the message names the run folder, data set or picture
    folder at fault and what to pass instead."""
