"""What every source parser gets (SourceContext) and returns (IngestResult), and the one
idempotent write of a dataset partition.

A parser stages raw files into temp tables through the context's readers (which quarantine bad
lines and enforce the reject-share limit), then defines temp views `new_<table>` with the
canonical columns less `dataset`; `finish()` swaps them into the warehouse in one transaction.
A view a source cannot fill may be left out: `users` and `items` are then derived from the
interactions (every referenced id gets a row, attributes NULL), any other table stays empty.
"""

from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import duckdb
import pyarrow as pa

from itdr_pipeline.errors import RawDataError
from itdr_pipeline.hashing import sha256_file
from itdr_pipeline.registry import DatasetSpec
from itdr_pipeline.sources.delimited import FileReadStats, Rejected, check_reject_share, read_delimited
from itdr_pipeline.sources.jsonlines import lines_at, read_json_lines, read_lines, read_python_literals
from itdr_pipeline.transactions import rollback

CANONICAL = ("users", "items", "interactions", "reviews")


@dataclass(frozen=True)
class IngestResult:
    dataset: str
    row_counts: dict[str, int]  # canonical table -> rows written
    file_rows: dict[str, int]  # raw file -> rows parsed
    rejected: list[Rejected]
    absent: list[str] = field(default_factory=list)  # what could not be ingested because a file is missing
    skipped: dict[str, int] = field(default_factory=dict)  # rows left out on purpose, by reason (not malformed)

    @property
    def dropped(self) -> dict[str, int]:
        """datatrove-style `dropped_<reason>` counts for asset metadata: quarantined lines by reason,
        plus rows a parser leaves out on purpose (e.g. `duplicate_item`)."""
        counts = Counter(f"dropped_{r.reason.split(':', 1)[0]}" for r in self.rejected)
        for reason, n in self.skipped.items():
            counts[f"dropped_{reason}"] += n
        return dict(sorted(counts.items()))


@dataclass
class SourceContext:
    con: duckdb.DuckDBPyConnection
    spec: DatasetSpec
    folder: Path
    files: dict[str, Path]  # registry file name -> the present file (an alternative name may have matched)
    max_reject_share: float
    rejected: list[Rejected] = field(default_factory=list)
    file_rows: dict[str, int] = field(default_factory=dict)
    absent: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    _official: dict[str, bool] = field(default_factory=dict, repr=False)

    @property
    def dataset(self) -> str:
        return self.spec.id

    def path(self, name: str) -> Path | None:
        """The file registered as `name`, or None when it is optional and absent."""
        if name in self.files:
            return self.files[name]
        if self.spec.file(name).required:  # inspect_files already refused a missing required file
            raise RawDataError(f"{self.dataset}: required file {name} is missing from {self.folder}")
        return None

    def note_absent(self, name: str, consequence: str) -> None:
        self.absent.append(f"{name} not found in {self.folder}: {consequence}")

    def skip(self, reason: str, count: int) -> None:
        """Record rows left out on purpose (a documented rule, e.g. duplicate metadata lines, first
        kept); they show as `dropped_<reason>` in asset metadata. Malformed lines are quarantined instead."""
        if count:
            self.skipped[reason] = self.skipped.get(reason, 0) + int(count)

    def label(self, name: str) -> str:
        """How a file is named in rejected_rows and counts: its path inside the dataset folder
        (`train/behaviors.tsv`), so two files of the same name stay apart."""
        path = self.files[name]
        return path.relative_to(self.folder).as_posix() if path.is_relative_to(self.folder) else path.name

    def _checked(self, stats: FileReadStats, name: str) -> FileReadStats:
        label = self.label(name)
        stats = FileReadStats(label, stats.rows, [replace(r, file=label) for r in stats.rejected])
        check_reject_share(stats, self.dataset, self.max_reject_share)
        self.rejected += stats.rejected
        self.file_rows[label] = self.file_rows.get(label, 0) + stats.rows
        return stats

    def is_official(self, name: str) -> bool:
        """Whether the file is byte for byte the publisher's (its registry sha256 matches). Asked
        only when its last line has no line ending, so the hash is computed in that rare case."""
        if name not in self._official:
            path, sha = self.files[name], self.spec.file(name).sha256
            # The official hash is that of the registry name, not of an alternative spelling (as raw.py).
            self._official[name] = sha is not None and path.name == name.rsplit("/", 1)[-1] and sha256_file(path) == sha
        return self._official[name]

    def _keep_unterminated(self, name: str) -> Callable[[], bool]:
        return lambda: self.is_official(name)

    @contextmanager
    def _reading(self, name: str):
        """Errors from a reader name the dataset (readers name the file and line or byte offset)."""
        try:
            yield
        except RawDataError as exc:
            raise RawDataError(f"{self.dataset}: {exc}") from exc

    def read_delimited(self, name: str, stage: str, columns: dict[str, str], **options) -> FileReadStats:
        with self._reading(name):
            stats = read_delimited(self.con, self.files[name], stage, columns,
                                   keep_unterminated=self._keep_unterminated(name), **options)
        return self._checked(stats, name)

    def read_lines(self, name: str, stage: str) -> FileReadStats:
        """One text row per physical line (src_row, line_no, line), for formats parsed in SQL."""
        with self._reading(name):
            stats = read_lines(self.con, self.files[name], stage, self._keep_unterminated(name))
        return self._checked(stats, name)

    def read_json_lines(self, name: str, stage: str, fields: dict[str, str], checked: tuple[str, ...] = ()) -> FileReadStats:
        with self._reading(name):
            stats = read_json_lines(self.con, self.files[name], stage, fields, self._keep_unterminated(name), checked)
        return self._checked(stats, name)

    def read_python_literals(self, name: str, stage: str, fields: dict[str, str]) -> FileReadStats:
        with self._reading(name):
            stats = read_python_literals(self.con, self.files[name], stage, fields, self._keep_unterminated(name))
        return self._checked(stats, name)

    def reject_where(self, stage: str, name: str, condition: str, reason: str) -> int:
        """Quarantine the rows of a JSON-lines `stage` matching the SQL `condition` (a failed cast, a
        missing key) with their line numbers, and delete them from the stage."""
        bad = self.con.execute(f"SELECT line_no FROM {stage} t WHERE {condition} ORDER BY line_no").fetchall()
        if bad:
            self.con.execute(f"DELETE FROM {stage} WHERE {condition}")
            file = self.label(name)
            original = lines_at(self.files[name], [n for (n,) in bad])  # the line as read, for the quarantine
            self.rejected += [Rejected(file, int(n), reason, original.get(n)) for (n,) in bad]
            self.file_rows[file] = self.file_rows.get(file, 0) - len(bad)
            # The budget counts every reject of the file so far (reader's and earlier checks').
            of_file = sorted((r for r in self.rejected if r.file == file), key=lambda r: r.line_no)
            check_reject_share(FileReadStats(file, self.file_rows[file], of_file), self.dataset, self.max_reject_share)
        return len(bad)

    def finish(self, authoritative: tuple[str, ...] = ()) -> IngestResult:
        """Write the partition. Tables named in `authoritative` (e.g. MovieLens' users and items,
        which list every id) get no derived rows, so an unknown id fails the contract's reference check."""
        try:
            _derive_missing(self.con, authoritative)
            return replace_partition(self.con, self.dataset, self.rejected, self.file_rows, self.absent, self.skipped)
        except duckdb.Error as exc:
            # A value that parsed but cannot become a canonical one (an overflowing cast): DuckDB names
            # the value, not the row; parsers quarantine the cases they know of with `checks`.
            first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
            files = ", ".join(sorted(self.file_rows)) or "no file"
            raise RawDataError(f"{self.dataset}: a parsed value of {files} cannot be written to the canonical "
                               f"tables (no line number known): {first}") from exc


def _views(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE temporary").fetchall()}


def _derive_missing(con: duckdb.DuckDBPyConnection, authoritative: tuple[str, ...] = ()) -> None:
    """Give every user and item referenced by interactions or reviews a row, attributes NULL."""
    views = _views(con)
    events = [v for v in ("new_interactions", "new_reviews") if v in views]
    for table, key in (("users", "user_id"), ("items", "item_id")):
        if table in authoritative and f"new_{table}" in views:
            continue
        referenced = " UNION ".join(f"SELECT {key} FROM {v}" for v in events) or f"SELECT NULL::VARCHAR AS {key} WHERE false"
        if f"new_{table}" in views:
            con.execute(f"ALTER VIEW new_{table} RENAME TO listed_{table}")
            con.execute(
                f"""CREATE OR REPLACE TEMP VIEW new_{table} AS
                    SELECT * FROM listed_{table}
                    UNION ALL BY NAME
                    SELECT DISTINCT {key} FROM ({referenced}) r
                    WHERE {key} NOT IN (SELECT {key} FROM listed_{table})""")
        else:
            con.execute(f"CREATE OR REPLACE TEMP VIEW new_{table} AS SELECT DISTINCT {key} FROM ({referenced}) r")


def replace_partition(
    con: duckdb.DuckDBPyConnection, dataset: str, rejected: list[Rejected], file_rows: dict[str, int],
    absent: list[str] | None = None, skipped: dict[str, int] | None = None,
) -> IngestResult:
    """Swap the dataset's rows in every canonical table for the `new_<table>` staging views
    (canonical columns less `dataset`), atomically; a table without a view is emptied.

    The views read the staging tables directly, so each row is written once.
    Re-materializing a partition therefore replaces it; a failure rolls back to the old rows.
    """
    # Users and items are sorted by id (their views may be unions); events keep file order as staged.
    order = {"users": " ORDER BY user_id", "items": " ORDER BY item_id", "interactions": "", "reviews": ""}
    views = _views(con)
    counts = {}
    con.execute("BEGIN TRANSACTION")
    try:
        for table in CANONICAL:
            con.execute(f"DELETE FROM {table} WHERE dataset = ?", [dataset])
            if f"new_{table}" in views:
                con.execute(f"INSERT INTO {table} BY NAME SELECT ?::VARCHAR AS dataset, * FROM new_{table}"
                            f"{order[table]}", [dataset])
            counts[table] = con.execute(f"SELECT count(*) FROM {table} WHERE dataset = ?", [dataset]).fetchone()[0]
        con.execute("DELETE FROM rejected_rows WHERE dataset = ?", [dataset])
        if rejected:
            quarantine = pa.table({
                "dataset": [dataset] * len(rejected),
                "file": [r.file for r in rejected],
                "line_no": pa.array([r.line_no for r in rejected], pa.int64()),
                "reason": [r.reason for r in rejected],
                "raw_line": [r.raw_line for r in rejected],
            })
            con.execute("INSERT INTO rejected_rows BY NAME SELECT * FROM quarantine")
        con.execute("COMMIT")
    except BaseException:
        rollback(con)
        raise
    for view in _views(con):
        if view.startswith(("new_", "listed_")):
            con.execute(f"DROP VIEW IF EXISTS {view}")
    return IngestResult(dataset, counts, file_rows, rejected, list(absent or []), dict(skipped or {}))
