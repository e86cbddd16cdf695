"""Amazon Reviews 2018 (Ni, Li & McAuley) and 2023 (Hou et al., McAuley lab): one partition per category.

Both releases are published as one review file and one product-metadata file per category, so each
category is its own partition `amazon-reviews-<year>.<category slug>`, read from the shared source
folder `amazon-reviews-<year>/`.

Sources of the lists below:
- 2018: the category table of https://nijianmo.github.io/amazon/index.html (29 categories, full
  review counts and metadata product counts) as copied in public repositories, and download scripts
  that fetch `categoryFilesSmall/<Cat>_5.json.gz` and `metaFiles2/meta_<Cat>.json.gz` from the lab's
  server (formerly deepyeti.ucsd.edu/jianmo/amazon and jmcauley.ucsd.edu/data/amazon_v2).
- 2023: the Hugging Face dataset card McAuley-Lab/Amazon-Reviews-2023 (33 categories + "Unknown",
  its `all_categories.txt`; per-category users/items/ratings and the datarepo download links).
  The same paths are also served under https://mcauleylab.ucsd.edu/public_datasets/data/.
"""

from itdr_pipeline.registry.spec import DatasetSpec, Download, RawFile, category_slug

_V2 = "https://datarepo.eng.ucsd.edu/mcauley_group/data/amazon_v2"
_V2023 = "https://datarepo.eng.ucsd.edu/mcauley_group/data/amazon_2023/raw"

TERMS_2018 = (
    "No explicit licence; released for academic research, cite Ni, Li & McAuley 2019. Review text and "
    "product data remain the property of Amazon and the reviewers: research use only, do not redistribute."
)
CITATION_2018 = (
    "Jianmo Ni, Jiacheng Li, Julian McAuley. 2019. Justifying recommendations using distantly-labeled "
    "reviews and fine-grained aspects. EMNLP-IJCNLP 2019."
)
TERMS_2023 = (
    "No licence stated on the site or the dataset card; released for research, cite Hou et al. 2024. "
    "Review text and product data are Amazon's and the reviewers': research use only, do not redistribute."
)
CITATION_2023 = (
    "Yupeng Hou, Jiacheng Li, Zhankui He, An Yan, Xiusi Chen, Julian McAuley. 2024. Bridging Language and "
    "Items for Retrieval and Recommendation. arXiv:2403.03952."
)

# Official 2018 category file names -> (reviews in the full file, products in the metadata file),
# as the dataset page lists them.
CATEGORIES_2018: dict[str, tuple[int, int]] = {
    "AMAZON_FASHION": (883_636, 186_637), "All_Beauty": (371_345, 32_992), "Appliances": (602_777, 30_459),
    "Arts_Crafts_and_Sewing": (2_875_917, 303_426), "Automotive": (7_990_166, 932_019),
    "Books": (51_311_621, 2_935_525), "CDs_and_Vinyl": (4_543_369, 544_442),
    "Cell_Phones_and_Accessories": (10_063_255, 590_269), "Clothing_Shoes_and_Jewelry": (32_292_099, 2_685_059),
    "Digital_Music": (1_584_082, 465_392), "Electronics": (20_994_353, 786_868), "Gift_Cards": (147_194, 1_548),
    "Grocery_and_Gourmet_Food": (5_074_160, 287_209), "Home_and_Kitchen": (21_928_568, 1_301_225),
    "Industrial_and_Scientific": (1_758_333, 167_524), "Kindle_Store": (5_722_988, 493_859),
    "Luxury_Beauty": (574_628, 12_308), "Magazine_Subscriptions": (89_689, 3_493),
    "Movies_and_TV": (8_765_568, 203_970), "Musical_Instruments": (1_512_530, 120_400),
    "Office_Products": (5_581_313, 315_644), "Patio_Lawn_and_Garden": (5_236_058, 279_697),
    "Pet_Supplies": (6_542_483, 206_141), "Prime_Pantry": (471_614, 10_815), "Software": (459_436, 26_815),
    "Sports_and_Outdoors": (12_980_837, 962_876), "Tools_and_Home_Improvement": (9_015_203, 571_982),
    "Toys_and_Games": (8_201_231, 634_414), "Video_Games": (2_565_349, 84_893),
}

# sha256 of files that ../shared/data/raw/amazon-reviews-2018/SOURCE.md judged byte-identical to the
# server's (gzip headers keep the original name, mtime and XFL=2); the publisher gives no checksums.
# meta_Magazine_Subscriptions.json.gz is not pinned: two official releases exist (2021-05-16,
# sha256 147cb78d...1d91595, and 2020-08-07, 4e64f902...d97faf6) and a RawFile holds one hash.
_KNOWN_2018 = {
    "Magazine_Subscriptions_5.json.gz": "95c124603d62d6acdfd1bd62284934fb6c513db836ea64c2e8176c14256426f2",
    "Gift_Cards_5.json.gz": "41e1f0e50d3c1c9d7d949fb6315944c8bde51ea6b7429a29fdd0d02cbc07ef25",
    "meta_Gift_Cards.json.gz": "07fd154b7275ab9b1537e3802913508c7a5f84ed00f73201cd3fa18b2b51b342",
}
# SOURCE.md's measured 5-core sizes (reviews, users, items).
_FIVE_CORE_2018 = {"Magazine_Subscriptions": (2_375, 348, 157), "Gift_Cards": (2_972, 458, 148),
                   "All_Beauty": (5_269, 991, 85)}

# 2023 category -> (#users, #items, #ratings) as the dataset card prints them.
CATEGORIES_2023: dict[str, tuple[str, str, str]] = {
    "All_Beauty": ("632.0K", "112.6K", "701.5K"), "Amazon_Fashion": ("2.0M", "825.9K", "2.5M"),
    "Appliances": ("1.8M", "94.3K", "2.1M"), "Arts_Crafts_and_Sewing": ("4.6M", "801.3K", "9.0M"),
    "Automotive": ("8.0M", "2.0M", "20.0M"), "Baby_Products": ("3.4M", "217.7K", "6.0M"),
    "Beauty_and_Personal_Care": ("11.3M", "1.0M", "23.9M"), "Books": ("10.3M", "4.4M", "29.5M"),
    "CDs_and_Vinyl": ("1.8M", "701.7K", "4.8M"), "Cell_Phones_and_Accessories": ("11.6M", "1.3M", "20.8M"),
    "Clothing_Shoes_and_Jewelry": ("22.6M", "7.2M", "66.0M"), "Digital_Music": ("101.0K", "70.5K", "130.4K"),
    "Electronics": ("18.3M", "1.6M", "43.9M"), "Gift_Cards": ("132.7K", "1.1K", "152.4K"),
    "Grocery_and_Gourmet_Food": ("7.0M", "603.2K", "14.3M"), "Handmade_Products": ("586.6K", "164.7K", "664.2K"),
    "Health_and_Household": ("12.5M", "797.4K", "25.6M"), "Health_and_Personal_Care": ("461.7K", "60.3K", "494.1K"),
    "Home_and_Kitchen": ("23.2M", "3.7M", "67.4M"), "Industrial_and_Scientific": ("3.4M", "427.5K", "5.2M"),
    "Kindle_Store": ("5.6M", "1.6M", "25.6M"), "Magazine_Subscriptions": ("60.1K", "3.4K", "71.5K"),
    "Movies_and_TV": ("6.5M", "747.8K", "17.3M"), "Musical_Instruments": ("1.8M", "213.6K", "3.0M"),
    "Office_Products": ("7.6M", "710.4K", "12.8M"), "Patio_Lawn_and_Garden": ("8.6M", "851.7K", "16.5M"),
    "Pet_Supplies": ("7.8M", "492.7K", "16.8M"), "Software": ("2.6M", "89.2K", "4.9M"),
    "Sports_and_Outdoors": ("10.3M", "1.6M", "19.6M"), "Subscription_Boxes": ("15.2K", "641", "16.2K"),
    "Tools_and_Home_Improvement": ("12.2M", "1.5M", "27.0M"), "Toys_and_Games": ("8.1M", "890.7K", "16.3M"),
    "Video_Games": ("2.8M", "137.2K", "4.6M"), "Unknown": ("23.1M", "13.2M", "63.8M"),
}

# ITDR's 12 Amazon-2023 categories, by the names its released files use. ITDR does not say which file
# its "Beauty" and "Fashion" are; All_Beauty and Amazon_Fashion are assumed.
_ITDR_2023 = {
    "Appliances": "Appliances", "Arts_Crafts_and_Sewing": "Arts_Crafts_and_Sewing",
    "Baby_Products": "Baby_Products", "All_Beauty": "Beauty", "CDs_and_Vinyl": "CDs_and_Vinyl",
    "Amazon_Fashion": "Fashion", "Grocery_and_Gourmet_Food": "Grocery_and_Gourmet_Food",
    "Home_and_Kitchen": "Home_and_Kitchen", "Industrial_and_Scientific": "Industrial_and_Scientific",
    "Musical_Instruments": "Musical_Instruments", "Software": "Software", "Video_Games": "Video_Games",
}
# ITDR's cross-domain (CDR) pairs: the default source domain of each category in a pair.
_CDR_PAIRS = (("Appliances", "Industrial_and_Scientific"), ("All_Beauty", "Amazon_Fashion"),
              ("CDs_and_Vinyl", "Video_Games"), ("Grocery_and_Gourmet_Food", "Home_and_Kitchen"))
_CDR_PARTNER = {a: b for a, b in _CDR_PAIRS} | {b: a for a, b in _CDR_PAIRS}

_WHOLE_STARS = [1.0, 2.0, 3.0, 4.0, 5.0]
_EXPECTATIONS = tuple(
    (table, {"id": "whole_stars", "type": "in_set", "column": "rating", "values": _WHOLE_STARS, "severity": "ERROR"})
    for table in ("interactions", "reviews")
)


def _spec_2018(cat: str) -> DatasetSpec:
    reviews, products = CATEGORIES_2018[cat]
    core, meta = f"{cat}_5.json.gz", f"meta_{cat}.json.gz"
    sizes = _FIVE_CORE_2018.get(cat)
    five = f" 5-core: {sizes[0]:,} reviews by {sizes[1]:,} users on {sizes[2]:,} products." if sizes else ""
    return DatasetSpec(
        id=f"amazon-reviews-2018.{category_slug(cat)}",
        name=f"Amazon Reviews 2018: {cat.replace('_', ' ')}",
        description=(f"Amazon product reviews (1-5 stars, text, summary) and product metadata, 1996-2018. Full file: "
                     f"{reviews:,} reviews; metadata for {products:,} products (dataset page).{five} "
                     "The 5-core file is read when present, else the full file."),
        homepage="https://nijianmo.github.io/amazon/index.html",
        terms=TERMS_2018,
        citation=CITATION_2018,
        format="amazon:ingest_2018",
        files=(
            RawFile(core, _KNOWN_2018.get(core), alternatives=(f"{cat}.json.gz",)),
            RawFile(meta, _KNOWN_2018.get(meta), required=False),
        ),
        # The 5-core subset and the metadata; the full file is categoryFiles/<Cat>.json.gz.
        downloads=(
            Download(f"{_V2}/categoryFilesSmall/{core}", core, _KNOWN_2018.get(core)),
            Download(f"{_V2}/metaFiles2/{meta}", meta, _KNOWN_2018.get(meta)),
        ),
        source="amazon-reviews-2018",
        category=cat,
        # Every category feeds cdr given a source domain: `cdr_source` in the render settings.
        tasks=("preference", "rp", "tkr", "cdr", "nir", "ir", "tui", "seqrec", "search", "psearch"),
        item_noun="product",
        expectations=_EXPECTATIONS,
        collected=("1996-05-01", "2018-10-31"),  # the dataset page: "spanning May 1996 - Oct 2018"
    )


def _spec_2023(cat: str) -> DatasetSpec:
    users, items, ratings = CATEGORIES_2023[cat]
    reviews, meta = f"{cat}.jsonl.gz", f"meta_{cat}.jsonl.gz"
    extra = {}
    if cat in _ITDR_2023:
        extra["itdr_category"] = _ITDR_2023[cat]
    if cat in _CDR_PARTNER:
        extra["cdr_partner"] = f"amazon-reviews-2023.{category_slug(_CDR_PARTNER[cat])}"
    # Every category feeds cdr given a source domain; ITDR's pairs have a default partner.
    tasks = ("preference", "rp", "tkr", "cdr", "nir", "ir", "tui", "seqrec", "search", "psearch")
    return DatasetSpec(
        id=f"amazon-reviews-2023.{category_slug(cat)}",
        name=f"Amazon Reviews 2023: {cat.replace('_', ' ')}",
        description=(f"Amazon product reviews (1-5 stars, title, text; millisecond timestamps) and product "
                     f"metadata, May 1996 - Sep 2023: {ratings} ratings by {users} users on {items} products "
                     "(dataset card). Products are identified by parent_asin."),
        homepage="https://amazon-reviews-2023.github.io/",
        terms=TERMS_2023,
        citation=CITATION_2023,
        format="amazon:ingest_2023",
        # The server has gzip'd files; the Hugging Face repository has the same files uncompressed.
        files=(
            RawFile(reviews, None, alternatives=(f"{cat}.jsonl",)),
            RawFile(meta, None, required=False, alternatives=(f"meta_{cat}.jsonl",)),
        ),
        downloads=(
            Download(f"{_V2023}/review_categories/{reviews}", reviews, None),
            Download(f"{_V2023}/meta_categories/{meta}", meta, None),
        ),
        source="amazon-reviews-2023",
        category=cat,
        tasks=tasks,
        item_noun="product",
        expectations=_EXPECTATIONS,
        extra=extra,
        collected=("1996-05-01", "2023-09-30"),  # the dataset card: "May. 1996 - Sep. 2023"
    )


SPECS = tuple(_spec_2018(c) for c in CATEGORIES_2018) + tuple(_spec_2023(c) for c in CATEGORIES_2023)
