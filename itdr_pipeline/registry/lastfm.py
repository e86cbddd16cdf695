"""Last.fm 1K and 360K (Òscar Celma, MTG / Universitat Pompeu Fabra, 2010).

Both archives are `.tar.gz` with the files under a top folder (`lastfm-dataset-1K/`,
`lastfm-dataset-360K/`): ITDR_RAW_DIR/<id>/ may hold the files, the archive extracted as it comes,
or the archive itself (unpacked into the cache on first use).

Checksums: the READMEs publish an MD5 per file (recorded in `extra`; RawFile has no MD5 field),
and the creator's Zenodo record (doi:10.5281/zenodo.6090214) an MD5 per archive, as cited by
several public loaders that check it. No SHA-256 was found published, so the files read `unverified`.
"""

from itdr_pipeline.registry.spec import DatasetSpec, Download, RawFile

HOMEPAGE = "http://ocelma.net/MusicRecommendationDataset/"
_ZENODO = "https://zenodo.org/records/6090214/files"
TERMS = (
    "Distributed with permission of Last.fm for non-commercial use only; commercial use needs "
    "Last.fm's permission (partners@last.fm); Last.fm API terms of service apply; reference the "
    "Last.fm website (README)."
)
CITATION = (
    "Òscar Celma. 2010. Music Recommendation and Discovery in the Long Tail. Springer (Chapter 3). "
    "Data: Last.fm, https://www.last.fm."
)
_AGE = {"type": "between", "column": "age", "min": 1, "max": 100, "severity": "ERROR"}
_GENDER = {"type": "in_set", "column": "gender", "values": ["m", "f"], "severity": "WARN"}
_1K = "lastfm-dataset-1K"
_360K = "lastfm-dataset-360K"
PLAYS_1K = "userid-timestamp-artid-artname-traid-traname.tsv"
PROFILE_1K = "userid-profile.tsv"
PLAYS_360K = "usersha1-artmbid-artname-plays.tsv"
PROFILE_360K = "usersha1-profile.tsv"

SPECS = (
    DatasetSpec(
        id="lastfm-1k",
        name="Last.fm 1K users (listening histories)",
        description=(
            "19,150,868 timestamped plays (user, time, artist, track; MusicBrainz ids where Last.fm had "
            "them) by 992 users, their whole history up to 2009-05-05, collected with user.getRecentTracks; "
            "user gender, age, country and signup date. One row per play (weight 1); items are tracks."
        ),
        homepage=HOMEPAGE + "lastfm-1K.html",
        terms=TERMS,
        citation=CITATION,
        format="lastfm:ingest_1k",
        files=(
            RawFile(PLAYS_1K, None),
            # Without the profile the plays still ingest (users without demographics), reported as absent.
            RawFile(PROFILE_1K, None, required=False),
        ),
        downloads=(
            Download(url=f"{_ZENODO}/lastfm-dataset-1K.tar.gz", filename="lastfm-dataset-1K.tar.gz", sha256=None,
                     md5="a79a6808f54f73354789a9fb02cb1e41", strip_prefix=f"{_1K}/"),
        ),
        feedback="implicit",
        # Single plays carry no strength to compare with a user's median: every play is a positive.
        label_rule="positive_only",
        # UAP is ITDR's Last.fm subtask. No "preference": it needs liked and disliked items, and
        # positive-only plays have no negatives until sampled.
        tasks=("uap",),
        item_noun="song",
        user_attributes=("age", "gender", "country"),
        expectations=(
            ("users", {"id": "lastfm_age_plausible", **_AGE}),
            ("users", {"id": "lastfm_gender_m_f", **_GENDER}),
            ("interactions", {"id": "lastfm1k_one_play_per_row", "type": "in_set", "column": "weight",
                              "values": [1.0], "severity": "ERROR"}),
            ("interactions", {"id": "lastfm1k_plays_have_time", "type": "not_null", "column": "ts",
                              "severity": "ERROR"}),
        ),
        extra={
            f"published_md5:{PLAYS_1K}": "64747b21563e3d2aa95751e0ddc46b68",
            f"published_md5:{PROFILE_1K}": "c53608b6b445db201098c1489ea497df",
            "official_line_count": "19150868",
        },
    ),
    DatasetSpec(
        id="lastfm-360k",
        name="Last.fm 360K users (top artists)",
        description=(
            "17,559,530 (user, artist, plays) rows for 359,347 users, each user's top artists with play "
            "counts from user.getTopArtists; no timestamps. User gender, age, country and "
            "signup date. Items are artists (MusicBrainz id where present, else the artist name)."
        ),
        homepage=HOMEPAGE + "lastfm-360K.html",
        terms=TERMS,
        citation=CITATION,
        format="lastfm:ingest_360k",
        files=(
            RawFile(PLAYS_360K, None),
            RawFile(PROFILE_360K, None, required=False),
        ),
        downloads=(
            Download(url=f"{_ZENODO}/lastfm-dataset-360K.tar.gz", filename="lastfm-dataset-360K.tar.gz",
                     sha256=None, md5="635e6ed3fc873aa4ba33aba0ebce02b1", strip_prefix=f"{_360K}/"),
        ),
        feedback="implicit",
        label_rule="weight_above_user_median",
        # No "preference": the preference task reads explicit ratings only; and with no timestamps
        # the only order is the file's, which lists each user's artists by descending plays.
        tasks=("uap",),
        item_noun="artist",
        user_attributes=("age", "gender", "country"),
        expectations=(
            ("users", {"id": "lastfm_age_plausible", **_AGE}),
            ("users", {"id": "lastfm_gender_m_f", **_GENDER}),
            ("users", {"id": "lastfm360k_user_is_sha1", "type": "regex", "column": "user_id",
                       "regex": "^[0-9a-f]{40}$", "severity": "ERROR"}),
            ("interactions", {"id": "lastfm360k_events_are_plays", "type": "in_set", "column": "event",
                              "values": ["play"], "severity": "ERROR"}),
        ),
        extra={
            f"published_md5:{PLAYS_360K}": "be672526eb7c69495c27ad27803148f1",
            f"published_md5:{PROFILE_360K}": "51159d4edf6a92cb96f87768aa2be678",
            "official_line_count": "17559530",
        },
    ),
)
