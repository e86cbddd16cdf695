"""Steam (UCSD McAuley lab): the SASRec release, "Version 2" review data and item metadata."""

from itdr_pipeline.registry.spec import DatasetSpec, Download, RawFile

_WCKANG = "https://cseweb.ucsd.edu/~wckang"
# The publisher gives no checksum. This is the sha256 of the copy in ../shared/data/raw/steam
# (SOURCE.md: the same blob in two unrelated repositories, gzip header still naming
# steam_games.json, compressed 2018-12-05), i.e. the file as it was downloaded.
_GAMES_SHA256 = "717f4653a26585fec8f463f59311a654127c2ed66b07b9f78b4c0ce64961c740"

SPECS = (
    DatasetSpec(
        id="steam",
        name="Steam (SASRec release)",
        description=(
            "7,793,069 Steam reviews (user name, hours played at review time, date, text) by "
            "2,567,538 users, and metadata for 32,135 games (genres, tags, developer, publisher, price), "
            "scraped by Kang & McAuley for SASRec. Lines are Python dict literals, not JSON. "
            "No recommend/not-recommend flag: feedback is implicit (hours)."
        ),
        homepage="https://cseweb.ucsd.edu/~jmcauley/datasets.html#steam_data",
        terms=(
            "No licence stated; released by UCSD for academic research. Cite Kang & McAuley 2018; "
            "do not redistribute the files."
        ),
        citation=(
            "Wang-Cheng Kang and Julian McAuley. 2018. Self-Attentive Sequential Recommendation. "
            "In IEEE International Conference on Data Mining (ICDM)."
        ),
        format="steam:ingest_steam",
        files=(
            RawFile("steam_games.json.gz", _GAMES_SHA256, alternatives=("steam_games.json",)),
            # The reviews (~1.3 GB) are often missing from copies: games still ingest, the absence is reported.
            RawFile("steam_reviews.json.gz", None, required=False, alternatives=("steam_reviews.json",)),
        ),
        downloads=(
            Download(url=f"{_WCKANG}/steam_reviews.json.gz", filename="steam_reviews.json.gz", sha256=None),
            Download(url=f"{_WCKANG}/steam_games.json.gz", filename="steam_games.json.gz", sha256=None),
        ),
        feedback="implicit",
        label_rule="weight_above_user_median",
        # IR and TUI are ITDR's Steam subtasks. No "preference": the preference task reads explicit
        # ratings only, and this source has none.
        tasks=("ir", "tui", "seqrec", "search", "psearch"),
        item_noun="game",
        expectations=(
            ("interactions", {"id": "steam_events_are_reviews", "type": "in_set", "column": "event",
                              "values": ["review"], "severity": "ERROR"}),
            # Hours on record cannot exceed every hour from Steam's launch (2003) to the scrape (2018).
            ("interactions", {"id": "steam_hours_plausible", "type": "between", "column": "weight",
                              "min": 0, "max": 24 * 366 * 15, "severity": "WARN"}),
        ),
    ),
)
