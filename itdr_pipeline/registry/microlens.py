"""MicroLens (Westlake University): the 50k, 100k and 1M micro-video releases.

Files are served one by one from recsys.westlake.edu.cn/MicroLens-<size>-Dataset/ (linked from
github.com/westlake-repl/MicroLens); the publisher gives no checksums. Counts below are those
reported by users who inspected the files (50k, 100k) or ran the 1M release; the publisher's
README gives only the user counts. Covers, videos, audio and feature files are not read.
"""

from itdr_pipeline.registry.spec import DatasetSpec, Download, RawFile

_HOST = "https://recsys.westlake.edu.cn"
TERMS = (
    "Research use; the README forbids privately modifying the dataset and offering secondary "
    "downloads (share processing code instead); no license file is published; cite Ni et al. 2023."
)
CITATION = (
    "Yongxin Ni, Yu Cheng, Xiangyan Liu, Junchen Fu, Youhua Li, Xiangnan He, Yongfeng Zhang, and Fajie Yuan. "
    "2023. A Content-Driven Micro-Video Recommendation Dataset at Scale. arXiv:2309.15379."
)
_EXPECTATIONS = (
    ("items", {"id": "microlens_video_id", "type": "regex", "column": "item_id", "regex": "^[0-9]+$",
               "severity": "WARN"}),
    ("users", {"id": "microlens_user_id", "type": "regex", "column": "user_id", "regex": "^[0-9]+$",
               "severity": "WARN"}),
)


def _spec(size: str, name: str, description: str, parser: str, files: tuple[RawFile, ...]) -> DatasetSpec:
    folder = f"{_HOST}/MicroLens-{size}-Dataset"
    return DatasetSpec(
        id=f"microlens-{size.lower()}", name=name, description=description,
        homepage="https://github.com/westlake-repl/MicroLens", terms=TERMS, citation=CITATION,
        format=f"microlens:{parser}", files=files,
        downloads=tuple(Download(url=f"{folder}/{f.name}", filename=f.name, sha256=None) for f in files),
        feedback="implicit", label_rule="positive_only", tasks=("tkr", "nir", "tui", "seqrec"), item_noun="video",
        expectations=_EXPECTATIONS,
    )


SPECS = (
    _spec("50k", "MicroLens-50k",
          "50,000 users, 19,220 micro-videos and 359,708 timestamped interactions (2020-03 to 2022-09), "
          "with English video titles.",
          "ingest_50k",
          (RawFile("MicroLens-50k_pairs.csv", None), RawFile("MicroLens-50k_titles.csv", None, required=False))),
    _spec("100k", "MicroLens-100k",
          "100,000 users, 19,738 micro-videos and 719,405 timestamped interactions, with English titles, "
          "one category per video and English user comments.",
          "ingest_100k",
          (RawFile("MicroLens-100k_pairs.csv", None),
           RawFile("MicroLens-100k_title_en.csv", None, required=False),
           RawFile("tags_to_summary.csv", None, required=False),
           RawFile("MicroLens-100k_comment_en.txt", None, required=False))),
    _spec("1M", "MicroLens-1M",
          "1,000,000 users and about 9.1 million timestamped interactions, with Chinese video titles.",
          "ingest_1m",
          (RawFile("MicroLens-1M_pairs.csv", None), RawFile("MicroLens-1M_title.csv", None, required=False))),
)
