"""Yelp Open Dataset (the "academic dataset" JSON files)."""

from itdr_pipeline.registry.spec import DatasetSpec, RawFile

_STARS = [1.0, 2.0, 3.0, 4.0, 5.0]

SPECS = (
    DatasetSpec(
        id="yelp",
        name="Yelp Open Dataset",
        description=(
            "Yelp's public release of businesses, reviews (1-5 stars with text) and users from several "
            "North American metropolitan areas; the 2022 release holds about 7 million reviews of about "
            "150,000 businesses by about 2 million users. JSON Lines, one object per line."
        ),
        homepage="https://business.yelp.com/data/resources/open-dataset/",
        terms=(
            "Yelp Dataset User Agreement (Dataset_User_Agreement.pdf in the archive): non-commercial "
            "academic or personal use only; no redistribution; accept it on Yelp's download page."
        ),
        citation="Yelp Inc. Yelp Open Dataset. https://business.yelp.com/data/resources/open-dataset/",
        format="yelp:ingest_yelp",
        files=(
            RawFile("yelp_academic_dataset_business.json", None),
            RawFile("yelp_academic_dataset_review.json", None),
            # Users carry no demographics (name, counts, elite years): the file only lists user ids.
            RawFile("yelp_academic_dataset_user.json", None, required=False),
        ),
        # No `downloads`: the archive is behind a click-through agreement and is a zip holding
        # `Yelp JSON/yelp_dataset.tar` (a gzip'd tar), which fetch cannot unpack; extract it by hand.
        extra={"download": "https://business.yelp.com/external-assets/files/Yelp-JSON.zip",
               "archive_layout": "Yelp-JSON.zip > Yelp JSON/yelp_dataset.tar (gzip'd tar) > "
                                 "yelp_academic_dataset_*.json"},
        feedback="explicit",
        label_rule="rating_above",
        tasks=("preference", "rp", "tui", "seqrec", "search", "psearch"),
        rating_min=1.0,
        rating_max=5.0,
        like_threshold=3.0,
        item_noun="business",
        expectations=(
            ("interactions", {"id": "yelp_whole_stars", "type": "in_set", "column": "rating", "values": _STARS,
                              "severity": "ERROR"}),
        ),
    ),
)
