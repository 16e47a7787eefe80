"""Settings shared by every command and service, each from an environment variable.

Every setting also has a CLI flag; a flag wins over the variable, the variable over the
default. The defaults need no server.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    """The state folder and the servers that itsacat uses."""

    home: Path  # ITSACAT_HOME: registry database, artifacts, inbox, runs, logs
    registry_url: str  # ITSACAT_REGISTRY_URL: SQLAlchemy URL; SQLite in `home` by default
    param_store: str  # ITSACAT_PARAM_STORE: "memory" or redis://host:port/db

    @classmethod
    def from_env(cls, home: str | Path | None = None) -> Settings:
        home_path = Path(home or os.environ.get("ITSACAT_HOME", ".itsacat")).absolute()
        registry_url = os.environ.get("ITSACAT_REGISTRY_URL") or (
            f"sqlite:///{home_path / 'registry.db'}")
        return cls(home=home_path, registry_url=registry_url,
                   param_store=os.environ.get("ITSACAT_PARAM_STORE", "memory"))

    @property
    def runs_dir(self) -> Path:
        return self.home / "runs"
