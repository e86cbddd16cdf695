"""Amazon Books Reviews (Kaggle, Mohamed Bakhet 2022): ITDR's "Amazon Books" source (TKR, IR).

Sources of the facts below:
- The Kaggle page https://www.kaggle.com/datasets/mohamedbakhet/amazon-books-reviews and the
  uploader's notes (github.com/mohamedbakhet/Amazon-book-reviews, data/data.md and the EDA notebook):
  3M reviews of 212,404 titles; the details file built with the Google Books API. Kaggle downloads
  need an account and publish no checksum: no download is registered and the hashes are None.
- The review fields (`product/productId`, `review/userId` ... `review/text`, price "unknown") are
  those of SNAP's web-Amazon release (snap.stanford.edu/data/web-Amazon.html), whose page asks for
  the McAuley & Leskovec 2013 citation; the uploader's notes point at McAuley's 2014 page instead.
"""

from itdr_pipeline.registry.spec import DatasetSpec, RawFile

SPECS = (
    DatasetSpec(
        id="amazon-books-reviews",
        name="Amazon Books Reviews (Kaggle)",
        description=(
            "3,000,000 Amazon book reviews (1-5 stars, summary, text, Unix day timestamps) from SNAP's "
            "web-Amazon Books data, with Google Books details (description, authors, categories, publisher, "
            "date) for 212,404 titles, joined by title. Anonymous reviews (no User_id) are dropped."
        ),
        homepage="https://www.kaggle.com/datasets/mohamedbakhet/amazon-books-reviews",
        terms=(
            "Kaggle re-release of Amazon review data collected for research (SNAP web-Amazon): research use "
            "only, review text belongs to Amazon and its reviewers; details from the Google Books API. Check "
            "the Kaggle page's licence before redistributing."
        ),
        citation=(
            "Julian McAuley and Jure Leskovec. 2013. Hidden Factors and Hidden Topics: Understanding Rating "
            "Dimensions with Review Text. RecSys 2013. (Kaggle: Mohamed Bakhet, Amazon Books Reviews, 2022.)"
        ),
        format="amazon_books:ingest",
        files=(
            RawFile("Books_rating.csv", None),
            RawFile("books_data.csv", None, required=False),
        ),
        feedback="explicit",
        label_rule="rating_above",
        tasks=("preference", "tkr", "ir", "seqrec", "search", "psearch"),
        rating_min=1.0,
        rating_max=5.0,
        like_threshold=3.0,
        item_noun="book",
        expectations=(
            ("interactions", {"id": "amazon_books_whole_stars", "type": "in_set", "column": "rating",
                              "values": [1.0, 2.0, 3.0, 4.0, 5.0], "severity": "ERROR"}),
            ("interactions", {"id": "amazon_books_reviews_only", "type": "in_set", "column": "event",
                              "values": ["review"], "severity": "ERROR"}),
        ),
    ),
)
