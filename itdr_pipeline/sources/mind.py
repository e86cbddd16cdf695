"""MIND (Microsoft News Dataset, Wu et al. ACL 2020), from the official zips to canonical tables.

Layout: one registry id per size (`mind-small`, `mind-large`), both official splits in one
partition, each zip unpacked into its own folder because both hold files of the same names:
`train/` (or `MINDsmall_train/`, the folder `unzip -d` makes) and `dev/` (or `MINDsmall_dev/`).
The training split is required, the validation split optional. entity/relation_embedding.vec are
not read. MIND-large's test zip is not read: its impressions carry no click labels.

- behaviors.tsv: no header, LF, tab-separated: impression id, user id, time
  ('11/15/2019 8:36:57 AM': month, day and hour not zero-padded, 12-hour clock; the publisher
  states no time zone, so the time is stored as written), the click history (space-separated
  news ids in time order, empty for users without one) and the impressions ('N1-1 N2-0': news
  id, '-', 1 clicked / 0 not; their order within an impression is shuffled by the publisher).
  Read line by line: a line with another field count, an unreadable time, an empty user id or a
  malformed impression token is quarantined with its line number.
- news.tsv: no header, tab-separated, 8 fields: news id, category, subcategory, title, abstract
  (may be empty), URL, title entities and abstract entities (JSON, not read). Titles contain
  bare double quotes, so quoting is off. The train and dev files overlap: an article is kept once,
  from the first file in registry order (train, then dev).

Canonical rows. Each impression token -> event 'impression', weight 1 (clicked) or 0 (shown, not
clicked), ts = the impression time. Each history id -> event 'click', weight 1, ts NULL (history
clicks carry no time); the same history repeats in every impression of a user, so clicks are
de-duplicated per (user, news), keeping the first occurrence. src_row follows file order (train
lines, then dev lines; in a line the history before the impressions), so a user's history clicks
precede their impressions. Label rule `clicked`: liked = weight 1, disliked = shown and not clicked.
Items: title, categories [category, subcategory], description = abstract, url. No user file.

Rejected lines are named by their path in the folder (`train/behaviors.tsv`, see
SourceContext.label), not the bare file name both splits share.
"""


from itdr_pipeline.errors import RawDataError
from itdr_pipeline.sources.base import IngestResult, SourceContext

SPLITS = ("train", "dev")
TIME_FORMAT = "%m/%d/%Y %I:%M:%S %p"
_TOKEN = r"[^\s-]+-[01]( [^\s-]+-[01])*"  # 'N1-1 N2-0': news id, '-', click label
_NEWS_COLUMNS = {
    "news_id": "VARCHAR", "category": "VARCHAR", "subcategory": "VARCHAR", "title": "VARCHAR",
    "abstract": "VARCHAR", "url": "VARCHAR", "title_entities": "VARCHAR", "abstract_entities": "VARCHAR",
}
# Field i of a behaviors line, in SQL.
_F = "split_part(line, chr(9), {})"
_BEHAVIOR_CHECKS = (
    ("len(string_split(line, chr(9))) < 5", "too_few_fields: expected 5 tab-separated fields"),
    ("len(string_split(line, chr(9))) > 5", "too_many_fields: expected 5 tab-separated fields"),
    (f"trim({_F.format(2)}) = ''", "bad_value: empty user id"),
    (f"try_strptime({_F.format(3)}, '{TIME_FORMAT}') IS NULL", "bad_value: time is not 'M/D/YYYY h:mm:ss AM'"),
    (f"NOT regexp_full_match({_F.format(5)}, '{_TOKEN}')", "bad_value: impressions are not 'NEWS-1 NEWS-0 ...'"),
)


def ingest(ctx: SourceContext) -> IngestResult:
    news, behaviors = [], []
    for idx, split in enumerate(SPLITS):
        if _read_news(ctx, split):
            news.append(f"SELECT {idx} AS file_idx, rowid AS row_idx, * FROM stg_news_{split}")
        if _read_behaviors(ctx, split):
            behaviors.append(f"SELECT {idx} AS file_idx, * FROM stg_behaviors_{split}")
    con = ctx.con
    con.execute(f"CREATE OR REPLACE TEMP TABLE stg_news AS {' UNION ALL '.join(news)}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE stg_behaviors AS {' UNION ALL '.join(behaviors)}")
    _items_view(ctx)
    _interactions_view(ctx)
    return ctx.finish()


def _read_news(ctx: SourceContext, split: str) -> bool:
    name = f"{split}/news.tsv"
    if ctx.path(name) is None:
        ctx.note_absent(name, f"{split} impressions of articles missing from the other news.tsv have no title")
        return False
    ctx.read_delimited(name, f"stg_news_{split}", _NEWS_COLUMNS, delim="\t")
    # An empty id reads as NULL, which the reader does not refuse: fail rather than drop it unseen.
    empty, first = ctx.con.execute(
        f"SELECT count(*), min(rowid) + 1 FROM stg_news_{split} WHERE news_id IS NULL").fetchone()
    if empty:
        raise RawDataError(f"{ctx.dataset}: {name}: {empty} row(s) have an empty news id, the first is "
                           f"data row {first}")
    return True


def _read_behaviors(ctx: SourceContext, split: str) -> bool:
    name = f"{split}/behaviors.tsv"
    if ctx.path(name) is None:
        ctx.note_absent(name, f"no {split} impressions or click histories")
        return False
    stage = f"stg_behaviors_{split}"
    ctx.read_lines(name, f"{stage}_lines")
    for condition, reason in _BEHAVIOR_CHECKS:
        ctx.reject_where(f"{stage}_lines", name, condition, reason)
    ctx.con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {stage} AS
            SELECT line_no, {_F.format(2)} AS user_id, strptime({_F.format(3)}, '{TIME_FORMAT}') AS ts,
                   list_filter(string_split({_F.format(4)}, ' '), lambda t: t <> '') AS history,
                   string_split({_F.format(5)}, ' ') AS impressions
            FROM {stage}_lines"""
    )
    return True


def _items_view(ctx: SourceContext) -> None:
    # One row per news id: the first by file order (train before dev), as the docstring says.
    ctx.con.execute(
        """CREATE OR REPLACE TEMP VIEW new_items AS
           SELECT news_id AS item_id,
                  CASE WHEN trim(title) <> '' THEN title END AS title,
                  list_filter([category, subcategory], lambda c: trim(c) <> '') AS categories,
                  CASE WHEN trim(abstract) <> '' THEN abstract END AS description,
                  CASE WHEN trim(url) <> '' THEN url END AS url
           FROM stg_news
           QUALIFY row_number() OVER (PARTITION BY news_id ORDER BY file_idx, row_idx) = 1"""
    )


def _interactions_view(ctx: SourceContext) -> None:
    # Exploded once into a table (not a view): finish() reads the events three times. Only the
    # needed columns travel through the sort; carrying the id lists made it ~25x slower.
    ctx.con.execute(
        """CREATE OR REPLACE TEMP TABLE stg_events AS
           WITH history AS (
               SELECT file_idx, line_no, user_id, unnest(history) AS item_id,
                      unnest(generate_series(1, len(history))) AS pos
               FROM stg_behaviors
           ), clicks AS (  -- each (user, news) once, at its first place in file order
               SELECT user_id, item_id, min({'f': file_idx, 'l': line_no, 'p': pos}) AS first
               FROM history GROUP BY user_id, item_id
           ), shown AS (
               SELECT file_idx, line_no, user_id, ts, unnest(impressions) AS token,
                      unnest(generate_series(1, len(impressions))) AS pos
               FROM stg_behaviors
           ), events AS (
               SELECT first.f AS file_idx, first.l AS line_no, 0 AS part, first.p AS pos, user_id, item_id,
                      NULL::TIMESTAMP AS ts, 'click' AS event, 1.0 AS weight FROM clicks
               UNION ALL
               SELECT file_idx, line_no, 1, pos, user_id, left(token, length(token) - 2), ts,
                      'impression', right(token, 1)::DOUBLE FROM shown
           )
           SELECT user_id, item_id, ts, event, weight,
                  row_number() OVER (ORDER BY file_idx, line_no, part, pos) - 1 AS src_row
           FROM events"""
    )
    ctx.con.execute("CREATE OR REPLACE TEMP VIEW new_interactions AS SELECT * FROM stg_events ORDER BY src_row")
