"""Every environment-dependent setting, in one place.

`ITDR_HOME` holds all state (warehouse, published versions, cache, Dagster instance);
`ITDR_RAW_DIR` points at a folder of dataset folders in their official layout.
"""

import os
from dataclasses import dataclass
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parents[1]


def _default_home() -> Path:
    # In a checkout (the usual `make demo` case) state lives in a git-ignored folder beside
    # the code; an installed package falls back to the user's cache directory.
    if (_CHECKOUT / "pyproject.toml").is_file():
        return _CHECKOUT / ".itdr"
    return Path.home() / ".cache" / "itdr"


@dataclass(frozen=True)
class Settings:
    home: Path
    raw_dir: Path | None

    @classmethod
    def from_env(cls) -> "Settings":
        home = Path(os.environ.get("ITDR_HOME") or _default_home()).expanduser().resolve()
        raw = os.environ.get("ITDR_RAW_DIR")
        return cls(home=home, raw_dir=Path(raw).expanduser().resolve() if raw else None)

    @property
    def warehouse(self) -> Path:
        return self.home / "warehouse.duckdb"

    @property
    def published(self) -> Path:
        return self.home / "published"

    @property
    def cache(self) -> Path:
        return self.home / "cache"

    @property
    def models(self) -> Path:
        return self.home / "models"

    @property
    def adapters(self) -> Path:
        return self.home / "adapters"

    @property
    def reports(self) -> Path:
        return self.home / "reports"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    def ensure(self) -> "Settings":
        for path in (self.home, self.published, self.cache):
            path.mkdir(parents=True, exist_ok=True)
        return self
