"""What every command shares: settings, one-line errors, JSON output."""

from __future__ import annotations

import json
import sys
from typing import Any

from itsacat.settings import Settings


def settings_from(args) -> Settings:
    """Build the settings from `--home` when given, otherwise from the environment."""
    return Settings.from_env(getattr(args, "home", None))


def print_json(document: Any) -> None:
    json.dump(document, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
