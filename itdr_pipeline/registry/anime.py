"""Anime Dataset 2023 (MyAnimeList, Kaggle `dbdmobile/myanimelist-dataset`)."""

from itdr_pipeline.registry.spec import DatasetSpec, Download, RawFile

SPECS = (
    DatasetSpec(
        id="anime-2023",
        name="Anime Dataset 2023 (MyAnimeList)",
        description=(
            "MyAnimeList data scraped in 2023: 24,905 anime (genres, synopsis, studios, airing dates), "
            "731,290 user profiles (gender, birthday, location) and 24,325,191 scores (1-10) by 270,033 "
            "users. No timestamps on scores and no review text."
        ),
        homepage="https://www.kaggle.com/datasets/dbdmobile/myanimelist-dataset",
        terms=(
            "Kaggle dataset scraped from MyAnimeList by its uploader; the licence shown on Kaggle was not "
            "verified here. Research use only; do not redistribute; MyAnimeList's terms apply to its content."
        ),
        citation=(
            "Sajid Uddin. 2023. Anime Dataset 2023. Kaggle. "
            "https://www.kaggle.com/datasets/dbdmobile/myanimelist-dataset"
        ),
        format="anime:ingest_anime_2023",
        files=(
            RawFile("anime-dataset-2023.csv", None),
            RawFile("users-details-2023.csv", None),
            RawFile("users-score-2023.csv", None),
        ),
        downloads=(
            # Kaggle's public download link (the zip also holds three derived files this parser ignores).
            # Kaggle versions the dataset and publishes no checksum.
            Download(url="https://www.kaggle.com/api/v1/datasets/download/dbdmobile/myanimelist-dataset",
                     filename="myanimelist-dataset.zip", sha256=None),
        ),
        feedback="explicit",
        label_rule="rating_above",
        tasks=("preference", "rp", "tkr", "uap", "ir", "tui", "seqrec", "search", "psearch"),
        rating_min=1.0,
        rating_max=10.0,
        # MyAnimeList's scale: 6 "Fine", 7 "Good", ... 10 "Masterpiece": 7 and above are liked.
        like_threshold=6.0,
        item_noun="anime",
        user_attributes=("gender", "location", "birth_date"),
        expectations=(
            ("interactions", {"id": "anime_whole_scores", "type": "in_set", "column": "rating",
                              "values": [float(x) for x in range(1, 11)], "severity": "ERROR"}),
            ("users", {"id": "anime_gender_values", "type": "in_set", "column": "gender",
                       "values": ["Male", "Female", "Non-Binary"], "severity": "WARN"}),
        ),
    ),
)
