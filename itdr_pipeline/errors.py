"""Errors users see: each carries a one-line reason naming the file, line, column or check."""


class ItdrError(Exception):
    """A user-facing failure; the CLI prints `str(error)` on one line and exits non-zero."""


class RawDataError(ItdrError):
    """A raw file is missing, unreadable, or too malformed to ingest."""


class ChecksumError(ItdrError):
    """A downloaded file does not match its published checksum."""


class ContractError(ItdrError):
    """Data broke an ERROR-severity expectation of a data contract."""
