"""PixelRec (Westlake University): the PixelRec50K sample and the Pixel200K, Pixel1M and Pixel8M releases.

All are shared as Google Drive folders linked from github.com/westlake-repl/PixelRec (no direct
file URLs, no checksums), so no downloads are registered. Covers and extracted features are not
read. The full PixelRec interaction file (about 200 million interactions of 30 million users) is
not registered.
"""

from itdr_pipeline.registry.spec import DatasetSpec, RawFile

_HOMEPAGE = "https://github.com/westlake-repl/PixelRec"
_INTERACTION_FOLDER = "https://drive.google.com/drive/folders/1vR1lgQUZCy1cuhzPkM2q7AsdYRP43feQ"
_ITEM_FOLDER = "https://drive.google.com/drive/folders/1rXBM-zi5sSdLHNshXWtGgVReWLuYNgDB"
_SAMPLE_FOLDER = "https://drive.google.com/drive/folders/1bQPgM-6yAnzcD0jKBoUUheA9LL5xnCHG"
TERMS = (
    "Westlake Representation Learning Lab dataset license (LICENSE in the repository): non-commercial "
    "research and educational use only; no rights to copy, modify, publish, distribute or commercialize "
    "the dataset; provided as is; cite Cheng et al. 2024."
)
CITATION = (
    "Yu Cheng, Yunzhu Pan, Jiaqi Zhang, Yongxin Ni, Aixin Sun, and Fajie Yuan. 2024. An Image Dataset for "
    "Benchmarking Recommender Systems with Raw Pixels. In Proceedings of the 2024 SIAM International "
    "Conference on Data Mining (SDM). arXiv:2309.06789."
)
_EXPECTATIONS = (
    ("items", {"id": "pixelrec_item_id", "type": "regex", "column": "item_id", "regex": "^i[0-9]+$",
               "severity": "WARN"}),
    ("users", {"id": "pixelrec_user_id", "type": "regex", "column": "user_id", "regex": "^u[0-9]+$",
               "severity": "WARN"}),
)


def _spec(rid: str, name: str, description: str, files: tuple[RawFile, RawFile]) -> DatasetSpec:
    return DatasetSpec(
        id=rid, name=name, description=description, homepage=_HOMEPAGE, terms=TERMS, citation=CITATION,
        format="pixelrec:ingest", files=files, feedback="implicit", label_rule="positive_only",
        tasks=("tkr", "nir", "tui", "seqrec"), item_noun="item", expectations=_EXPECTATIONS,
    )


def _release(size: str) -> DatasetSpec:
    """Pixel<size>.csv in the Drive 'Interaction' and 'Item Information' folders, unpacked side by side."""
    file = f"Pixel{size}.csv"
    return _spec(
        f"pixelrec-{size.lower()}", f"PixelRec Pixel{size}",
        f"The Pixel{size} subset of PixelRec (cover-image items of a content platform, English titles, "
        f"tags and descriptions; timestamped implicit interactions). Download {file} from the Interaction "
        f"folder ({_INTERACTION_FOLDER}) into pixelrec_interaction/ and from the Item Information folder "
        f"({_ITEM_FOLDER}) into pixelrec_iteminfo/.",
        (RawFile(f"pixelrec_interaction/{file}", None,
                 alternatives=(f"interactions/{file}", f"interaction/{file}", f"dataset/{file}")),
         RawFile(f"pixelrec_iteminfo/{file}", None, required=False,
                 alternatives=(f"items/{file}", f"item_info/{file}", f"information/{file}"))),
    )


SPECS = (
    _spec("pixelrec-50k", "PixelRec50K (sample)",
          "The PixelRec50K sample: 989,494 interactions from 50,000 users on 82,865 items, with English "
          f"titles, tags and descriptions. Download interaction.csv and item_info.csv from {_SAMPLE_FOLDER}.",
          (RawFile("interaction.csv", None), RawFile("item_info.csv", None, required=False))),
    _release("200K"),
    _release("1M"),
    _release("8M"),
)
