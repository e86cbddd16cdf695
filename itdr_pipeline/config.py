"""Every environment-dependent setting, in one place.

`ITDR_HOME` holds all state (warehouse, published versions, cache, Dagster instance);
`ITDR_RAW_DIR` points at a folder of dataset folders in their official layout.
"""

import os
import re
from dataclasses import dataclass
from pathlib import Path

_ID = re.compile(r"[a-z0-9][a-z0-9._-]*")  # registry ids; no separators, so no path traversal
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
    def catalog(self) -> Path:
        """What readers open (read-only): views over committed snapshots, replaced atomically."""
        return self.home / "catalog.duckdb"

    @property
    def work(self) -> Path:
        return self.home / "work"

    def work_db(self, dataset: str) -> Path:
        """A partition's private working DuckDB file (only the run holding its lock opens it)."""
        if not _ID.fullmatch(dataset):
            raise ValueError(f"not a dataset id: {dataset!r}")
        return self.work / f"{dataset}.duckdb"

    @property
    def warehouse(self) -> Path:
        """A working file for library use outside the pipeline (tests, benchmarks, scripts)."""
        return self.work / "library.duckdb"

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
