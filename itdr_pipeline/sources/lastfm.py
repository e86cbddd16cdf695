"""Last.fm 1K and 360K (Òscar Celma, MTG/UPF, 2010), from the official TSV files to canonical tables.

Layouts (READMEs of lastfm-dataset-1K v1.0 and lastfm-dataset-360K v1.2): UTF-8, LF, tab-separated,
no quoting (names hold '"', as in `"weird al" yankovic`, and are read literally); an empty field
is a missing value (MBIDs often are).
- 1K plays, no header: user, time `2009-05-04T23:08:57Z` (UTC), artist MBID, artist, track MBID,
  track. One line per play; each user's lines newest first.
- 1K profile, header `#id gender age country registered`; 360K profile, no header: user, gender
  (m|f|empty), age, country, signup date (`Feb 1, 2009`, not kept: no canonical column).
- 360K plays, no header: user SHA-1, artist MBID, artist, plays; a user's artists by descending plays.

Decisions:
- 1K keeps one interaction per play (event `play`, weight 1, its time), so listening sequences
  survive; label rule `positive_only`: a single play has no strength to compare with a median.
  Items are tracks: the track MBID, else `name:` + md5(artist TAB track) (a tab cannot occur inside
  a field, so two different name pairs never share an id; exact strings, case kept). Title = the
  track name, creator = the artist: the first non-blank ones in file order for that id. Repeated
  scrobbles (same user, track and second) are kept as the source has them.
- 360K items are artists: the MBID, else `name:` + the artist name; title = the first non-blank
  name in file order. A user's lines naming one item (spellings sharing an MBID) are merged: weight
  = the summed plays, src_row = the first line. No time (ts NULL). Label rule
  `weight_above_user_median`.
- Users: gender and country as in the source, age only within 1..100 (the profiles hold 0,
  negative and four-digit ages: NULL). A user listed twice keeps the first line; users with plays
  but no profile line get NULL attributes. Without a profile file the plays still ingest.

Quarantined with file and line: too many or too few fields (a tab or newline inside a name),
invalid UTF-8, an age or play count that does not parse (negative plays included), and rows with
an empty user id, a 1K time that is empty or not exactly `YYYY-MM-DDTHH:MM:SSZ`, a play with
neither an MBID nor a name for its item, or a 360K user id that is not a 40-hex SHA-1 (the
plays file has rows for a "user" `sep 20, 2008`, known from public loaders that drop them).
"""

from pathlib import Path

from itdr_pipeline.registry.lastfm import PLAYS_1K, PLAYS_360K, PROFILE_1K, PROFILE_360K
from itdr_pipeline.sources.base import IngestResult, SourceContext
from itdr_pipeline.sources.delimited import FileReadStats


def _blank(col: str) -> str:
    return f"({col} IS NULL OR trim({col}) = '')"


def _first_named(col: str) -> str:
    """The first non-blank value of `col` in file order (`src` is the staged row's position)."""
    return f"arg_min({col}, src) FILTER (WHERE NOT {_blank(col)})"


_TIME = "%Y-%m-%dT%H:%M:%SZ"
_ITEM_1K = "coalesce(track_mbid, 'name:' || md5(coalesce(artist, '') || chr(9) || track))"
_ITEM_360K = "coalesce(artist_mbid, 'name:' || artist)"
_NOT_SHA1 = "NOT coalesce(regexp_full_match(user_id, '[0-9a-f]{40}'), false)"
_MISSING_USER = (_blank("user_id"), "missing_user: empty user id")
_BAD_SHA1 = (_NOT_SHA1, "bad_user_id: not a 40-hex SHA-1 (the README's user-mboxsha1)")
_PROFILE_COLUMNS = {"user_id": "VARCHAR", "gender": "VARCHAR", "age": "INTEGER", "country": "VARCHAR",
                    "signup": "VARCHAR"}


def ingest_1k(ctx: SourceContext) -> IngestResult:
    con = ctx.con
    stats = _read(ctx, PLAYS_1K, "stg_lfm_plays", {
        "user_id": "VARCHAR", "ts": "VARCHAR", "artist_mbid": "VARCHAR", "artist": "VARCHAR",
        "track_mbid": "VARCHAR", "track": "VARCHAR"}, header=False)
    _quarantine(ctx, "stg_lfm_plays", PLAYS_1K, stats, header=False, rules=[
        _MISSING_USER,
        ("ts IS NULL", "missing_time: empty timestamp"),
        # Read as text and parsed strictly: a cast to TIMESTAMP would silently drop an offset like +02:00.
        (f"try_strptime(ts, '{_TIME}') IS NULL", "bad_time: not a UTC time like 2009-05-04T23:08:57Z"),
        (f"track_mbid IS NULL AND {_blank('track')}", "missing_item: neither a track MBID nor a track name"),
    ])
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW new_items AS
            SELECT item_id, {_first_named('track')} AS title, {_first_named('artist')} AS creator
            FROM (SELECT {_ITEM_1K} AS item_id, track, artist, rowid AS src FROM stg_lfm_plays)
            GROUP BY item_id"""
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW new_interactions AS
            SELECT user_id, {_ITEM_1K} AS item_id, strptime(ts, '{_TIME}') AS ts, 'play' AS event,
                   1.0::DOUBLE AS weight, rowid AS src_row
            FROM stg_lfm_plays"""
    )
    _users(ctx, PROFILE_1K, header=True, user_rule=_MISSING_USER)
    return _finish(ctx)


def ingest_360k(ctx: SourceContext) -> IngestResult:
    con = ctx.con
    stats = _read(ctx, PLAYS_360K, "stg_lfm_plays", {
        "user_id": "VARCHAR", "artist_mbid": "VARCHAR", "artist": "VARCHAR", "plays": "UBIGINT"}, header=False)
    _quarantine(ctx, "stg_lfm_plays", PLAYS_360K, stats, header=False, rules=[
        _BAD_SHA1,
        (f"artist_mbid IS NULL AND {_blank('artist')}", "missing_item: neither an artist MBID nor an artist name"),
        ("plays IS NULL", "missing_plays: empty play count"),
    ])
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW new_items AS
            SELECT item_id, {_first_named('artist')} AS title
            FROM (SELECT {_ITEM_360K} AS item_id, artist, rowid AS src FROM stg_lfm_plays)
            GROUP BY item_id"""
    )
    # Materialized once (in file order): the write reads it, and so does the derivation of users.
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE stg_lfm_events AS
            SELECT user_id, item_id, sum(plays)::DOUBLE AS weight, min(src) AS src_row
            FROM (SELECT user_id, {_ITEM_360K} AS item_id, plays, rowid AS src FROM stg_lfm_plays)
            GROUP BY user_id, item_id ORDER BY src_row"""
    )
    merged = con.execute("SELECT (SELECT count(*) FROM stg_lfm_plays) - (SELECT count(*) FROM stg_lfm_events)")
    ctx.skip("merged_user_artist_lines", merged.fetchone()[0])
    con.execute(
        """CREATE OR REPLACE TEMP VIEW new_interactions AS
           SELECT user_id, item_id, NULL::TIMESTAMP AS ts, 'play' AS event, weight, src_row FROM stg_lfm_events"""
    )
    _users(ctx, PROFILE_360K, header=False, user_rule=_BAD_SHA1)
    return _finish(ctx)


def _users(ctx: SourceContext, name: str, *, header: bool, user_rule: tuple[str, str]) -> None:
    if ctx.path(name) is None:
        ctx.note_absent(name, "users listed from the plays only, without gender, age or country (no uap)")
        return
    stats = _read(ctx, name, "stg_lfm_profile", _PROFILE_COLUMNS, header=header)
    _quarantine(ctx, "stg_lfm_profile", name, stats, header=header, rules=[user_rule])
    repeated = ctx.con.execute("SELECT count(*) - count(DISTINCT user_id) FROM stg_lfm_profile").fetchone()[0]
    ctx.skip("duplicate_user", repeated)
    ctx.con.execute(
        """CREATE OR REPLACE TEMP VIEW new_users AS
           SELECT user_id, CASE WHEN trim(gender) <> '' THEN gender END AS gender,
                  CASE WHEN age BETWEEN 1 AND 100 THEN age END AS age,
                  CASE WHEN trim(country) <> '' THEN country END AS country
           FROM stg_lfm_profile
           QUALIFY row_number() OVER (PARTITION BY user_id ORDER BY rowid) = 1"""
    )


_STAGES = ("stg_lfm_plays", "stg_lfm_profile", "stg_lfm_events")


def _read(ctx: SourceContext, name: str, stage: str, columns: dict[str, str], *, header: bool) -> FileReadStats:
    # DuckDB appends to an existing rejects table: an earlier read in this session would otherwise
    # be reported again as this file's rejects.
    _drop(ctx, stage)
    return ctx.read_delimited(name, stage, columns, delim="\t", header=header)


def _drop(ctx: SourceContext, *stages: str) -> None:
    for stage in stages:
        for table in (stage, f"{stage}_rejects", f"{stage}_scans"):
            ctx.con.execute(f"DROP TABLE IF EXISTS {table}")


def _finish(ctx: SourceContext) -> IngestResult:
    # Items are listed from the same staged plays as the interactions: nothing to derive for them.
    result = ctx.finish(authoritative=("items",))
    _drop(ctx, *_STAGES)  # the staged plays are the size of the file: free them now, not at session end
    return result


def _quarantine(ctx: SourceContext, stage: str, name: str, stats: FileReadStats, *, header: bool,
                rules: list[tuple[str, str]]) -> None:
    """Quarantine staged rows that parsed but cannot be used (`rules`: SQL condition, reason), with
    their exact line numbers; a row failing several rules is reported for the first."""
    any_bad = " OR ".join(f"({cond})" for cond, _ in rules)
    if ctx.con.execute(f"SELECT count(*) FROM {stage} WHERE {any_bad}").fetchone()[0] == 0:
        return
    # Staged row k (1-based) sits on line k + #{j : n_j - j < k}, where n_1 < n_2 < ... are the lines
    # that staged nothing: the header, the lines the reader refused, and empty lines, which DuckDB's
    # reader skips without a trace (so the file is scanned for them, only on this rare path).
    skipped = sorted({*range(1, int(header) + 1), *(r.line_no for r in stats.rejected),
                      *_empty_lines(ctx.files[name])})
    shifts = [n - j for j, n in enumerate(skipped, start=1)]
    ctx.con.execute(f"ALTER TABLE {stage} ADD COLUMN line_no BIGINT")
    ctx.con.execute(
        f"""UPDATE {stage} SET line_no = rowid + 1 + len(list_filter($shifts::BIGINT[], lambda s: s < rowid + 1))
            WHERE {any_bad}""", {"shifts": shifts})
    for cond, reason in rules:
        ctx.reject_where(stage, name, cond, reason)


def _empty_lines(path: Path) -> list[int]:
    """1-based numbers of the empty lines of `path`, streamed (never the whole file in memory)."""
    with path.open("rb") as handle:
        return [n for n, line in enumerate(handle, start=1) if line in (b"\n", b"\r\n")]
