"""Book-Crossing (Ziegler et al. 2005): one id for the original BX-CSV-Dump and its Kaggle re-release.

Sources of the facts below:
- The original page http://www2.informatik.uni-freiburg.de/~cziegler/BX/ (offline; its text is
  quoted in many READMEs): counts, file descriptions, and the terms "Freely available for research
  use when acknowledged with the following reference".
- The MD5 of BX-CSV-Dump.zip: PIReTship/bookdata-tools, `data/BX-CSV-Dump.zip.dvc` (a DVC lock
  recorded when the zip was downloaded from the official URL); no SHA-256 was ever published.
- The Kaggle re-release https://www.kaggle.com/datasets/arashnic/book-recommendation-dataset
  (Books.csv 271,360 rows, Ratings.csv 1,149,780, Users.csv 278,858): no checksum published.
"""

from itdr_pipeline.registry.spec import DatasetSpec, Download, RawFile

SPECS = (
    DatasetSpec(
        id="bookcrossing",
        name="Book-Crossing (BX)",
        description=(
            "1,149,780 book ratings (1-10 explicit, 0 = implicit interaction) by 105,283 users on 340,556 "
            "ISBNs, crawled from bookcrossing.com in August-September 2004; 278,858 users with free-text "
            "location and age, 271,379 books with title, first author, year, publisher and cover URLs. "
            "Reads the original BX-CSV-Dump or its Kaggle re-release (arashnic/book-recommendation-dataset)."
        ),
        homepage="http://www2.informatik.uni-freiburg.de/~cziegler/BX/",
        terms=(
            "Freely available for research use when acknowledged with the reference below (Ziegler et al. "
            "2005), collected with permission of Humankind Systems; the original site is offline."
        ),
        citation=(
            "Cai-Nicolas Ziegler, Sean M. McNee, Joseph A. Konstan, and Georg Lausen. 2005. Improving "
            "Recommendation Lists Through Topic Diversification. WWW 2005. DOI:10.1145/1060745.1060754."
        ),
        format="bookcrossing:ingest",
        files=(
            RawFile("BX-Book-Ratings.csv", None, alternatives=("Ratings.csv",)),
            RawFile("BX-Books.csv", None, required=False, alternatives=("Books.csv",)),
            RawFile("BX-Users.csv", None, required=False, alternatives=("Users.csv",)),
        ),
        downloads=(
            Download(url="http://www2.informatik.uni-freiburg.de/~cziegler/BX/BX-CSV-Dump.zip",
                     filename="BX-CSV-Dump.zip", sha256=None, md5="37d647ee9e18ba134ea6d78ee4fe5292"),
        ),
        feedback="explicit",
        label_rule="rating_above",
        tasks=("preference", "rp", "uap", "tui", "seqrec", "search", "psearch"),
        rating_min=1.0,
        rating_max=10.0,
        like_threshold=5.0,  # TALLRec's book rule: liked when rating > 5
        item_noun="book",
        user_attributes=("age", "location", "country"),
        expectations=(
            ("interactions", {"id": "bx_events", "type": "in_set", "column": "event",
                              "values": ["rating", "interaction"], "severity": "ERROR"}),
            ("interactions", {"id": "bx_whole_ratings", "type": "in_set", "column": "rating",
                              "values": [float(r) for r in range(1, 11)], "severity": "ERROR"}),
            ("users", {"id": "bx_age_cleaned", "type": "between", "column": "age", "min": 1, "max": 120,
                       "severity": "ERROR"}),
        ),
        extra={"kaggle": "https://www.kaggle.com/datasets/arashnic/book-recommendation-dataset"},
    ),
)
