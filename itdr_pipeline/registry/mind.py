"""MIND, the Microsoft News Dataset: MIND-small and MIND (large), training and validation splits.

One id per size holds both splits (`train/`, `dev/`): a user's click history and impressions
span them, and the publisher's own split is kept by file order. The official zips hold
behaviors.tsv and news.tsv at their root under the same names, so each is unpacked into its own
folder (`Download.target`). The publisher gives no checksums; the zip sizes seen on the release
host are 52,952,752 / 30,945,572 bytes (small train / dev) and 530,196,631 / 103,456,245 (large).
See the parser module for the file format.
"""

from itdr_pipeline.registry.spec import DatasetSpec, Download, RawFile

_RELEASE = "https://mind201910small.blob.core.windows.net/release"
TERMS = (
    "Microsoft Research License Terms (github.com/msnews/MIND, 'MSR License_Data.pdf'): non-commercial "
    "research use only, free of charge, no license to the underlying news content, provided as is; "
    "cite Wu et al. 2020."
)
CITATION = (
    "Fangzhao Wu, Ying Qiao, Jiun-Hung Chen, Chuhan Wu, Tao Qi, Jianxun Lian, Danyang Liu, Xing Xie, "
    "Jianfeng Gao, Winnie Wu, and Ming Zhou. 2020. MIND: A Large-scale Dataset for News Recommendation. "
    "In Proceedings of ACL 2020, pages 3597-3606."
)
_EXPECTATIONS = (
    ("interactions", {"id": "mind_event_kinds", "type": "in_set", "column": "event",
                      "values": ["impression", "click"], "severity": "ERROR"}),
    ("interactions", {"id": "mind_click_label", "type": "in_set", "column": "weight",
                      "values": [0.0, 1.0], "severity": "ERROR"}),
    ("items", {"id": "mind_news_id", "type": "regex", "column": "item_id", "regex": "^N[0-9]+$",
               "severity": "WARN"}),
    ("users", {"id": "mind_user_id", "type": "regex", "column": "user_id", "regex": "^U[0-9]+$",
               "severity": "WARN"}),
)


def _files(size: str) -> tuple[RawFile, ...]:
    """train/ required, dev/ optional; `MIND<size>_<split>/` (what `unzip -d` by name makes) also read."""
    return tuple(
        RawFile(f"{split}/{name}", None, required=split == "train",
                alternatives=(f"MIND{size}_{split}/{name}",))
        for split in ("train", "dev") for name in ("behaviors.tsv", "news.tsv")
    )


def _spec(rid: str, size: str, name: str, about: str) -> DatasetSpec:
    return DatasetSpec(
        id=rid, name=name,
        description=(
            f"{about} Impressions (clicked / shown but not clicked) with their time, and each user's click "
            f"history (no times). By hand: unzip MIND{size}_train.zip into train/ and MIND{size}_dev.zip "
            f"into dev/."
        ),
        homepage="https://msnews.github.io/", terms=TERMS, citation=CITATION,
        format="mind:ingest", files=_files(size),
        downloads=tuple(Download(url=f"{_RELEASE}/MIND{size}_{split}.zip", filename=f"MIND{size}_{split}.zip",
                                 sha256=None, target=split) for split in ("train", "dev")),
        feedback="implicit", label_rule="clicked", tasks=("preference", "tkr", "tui", "seqrec", "search", "psearch"),
        item_noun="news article", expectations=_EXPECTATIONS,
        collected=("2019-10-12", "2019-11-22"),  # the MIND paper (ACL 2020): six weeks, Oct 12 - Nov 22, 2019
    )


SPECS = (
    _spec("mind-small", "small", "MIND-small (Microsoft News Dataset)",
          "50,000 users sampled at random from MIND, with their behaviour logs (training and validation "
          "weeks, October-November 2019)."),
    _spec("mind-large", "large", "MIND (Microsoft News Dataset, large)",
          "About 160k English news articles and over 15 million impression logs from 1 million users of "
          "Microsoft News (training and validation weeks; the unlabelled test week is not read)."),
)
