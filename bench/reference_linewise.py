"""The baseline: TALLRec's movie preprocessing as plain line-by-line Python (no numpy, no SQL).

The same algorithm as `itdr_pipeline.tasks.preference` with profile `tallrec`, written the way
such scripts usually are: read u.data line by line, group by user in a dict of lists (users in
order of first appearance), label = rating > 3, sort each user's interactions by timestamp (a
stable sort, so ties keep file order), build EVERY window of 10 prior items over all users, keep
the last 10,000, split by position 8:1:1 (int(n*0.8), int(n*0.9)) and render TALLRec's strings.

    python bench/reference_linewise.py DATASET_FOLDER   # prints per-split counts and a sha256
"""

import sys
from pathlib import Path

HISTORY_LEN = 10
KEEP = 10_000
INSTRUCTION = (
    "Given the user's preference and unpreference, identify whether the user will like the target movie "
    'by answering "Yes." or "No.".'
)


def read_titles(path: Path) -> dict[str, str]:
    titles = {}
    with open(path, encoding="latin-1") as handle:
        for line in handle:
            fields = line.rstrip("\n").split("|")
            if len(fields) > 1:
                titles[fields[0]] = fields[1]
    return titles


def read_users(path: Path) -> dict[str, list[tuple[int, str, bool]]]:
    """user -> [(timestamp, item, liked)] in file order; dict order = first appearance."""
    users: dict[str, list[tuple[int, str, bool]]] = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            fields = line.rstrip("\n").split("\t")
            if len(fields) != 4:
                continue
            user, item, rating, ts = fields
            users.setdefault(user, []).append((int(ts), item, int(rating) > 3))
    return users


def build_windows(users: dict[str, list[tuple[int, str, bool]]]) -> list[tuple[list, tuple]]:
    windows = []
    for seq in users.values():
        seq.sort(key=lambda event: event[0])  # stable: equal timestamps keep file order
        for i in range(HISTORY_LEN, len(seq)):
            windows.append((seq[i - HISTORY_LEN:i], seq[i]))
    return windows


def render(history: list[tuple[int, str, bool]], target: tuple[int, str, bool], titles: dict[str, str]) -> dict:
    liked = ", ".join(f'"{titles[item]}"' for _, item, like in history if like)
    disliked = ", ".join(f'"{titles[item]}"' for _, item, like in history if not like)
    text = (f"User Preference: {liked}\nUser Unpreference: {disliked}\n"
            f'Whether the user will like the target movie "{titles[target[1]]}"?')
    return {"instruction": INSTRUCTION, "input": text, "output": "Yes." if target[2] else "No."}


def render_linewise(folder: Path | str) -> dict[str, list[dict]]:
    """split -> records ({instruction, input, output}), in TALLRec's order."""
    folder = Path(folder)
    titles = read_titles(folder / "u.item")
    windows = build_windows(read_users(folder / "u.data"))[-KEEP:]
    n = len(windows)
    cuts = {"train": (0, int(n * 0.8)), "valid": (int(n * 0.8), int(n * 0.9)), "test": (int(n * 0.9), n)}
    return {split: [render(h, t, titles) for h, t in windows[a:b]] for split, (a, b) in cuts.items()}


def main(argv: list[str] | None = None) -> int:
    import hashlib
    import json

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    records = render_linewise(args[0])
    digest = hashlib.sha256()
    for split, rows in records.items():
        for r in rows:
            digest.update(json.dumps([split, r["instruction"], r["input"], r["output"]]).encode() + b"\n")
    print(json.dumps({"counts": {k: len(v) for k, v in records.items()}, "sha256": digest.hexdigest()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
