"""Write N seeded SYNTHETIC ratings in MovieLens-100K's exact file layout, for benchmarks.

    python bench/gen_movielens.py --ratings 10000000 --out /tmp/ml-10m/ml-100k --seed 0

Files (as in ml-100k: no header, LF line endings):
- `u.data`  user<TAB>item<TAB>rating<TAB>unix_ts, rows in random order (not grouped, not sorted);
- `u.item`  id|title|DD-Mon-YYYY||url|19 genre flags, ISO-8859-1 (some titles carry 'é');
- `u.user`  id|age|M/F|occupation|zip;
- `u.genre` name|index for indexes 0..18, then one blank line.

Sizes scale with N: N // 100 users, N // 1000 + 1682 items (the next prime, see below); every user
has at least 20 ratings (a heavy-tailed share of the rest on top), never the same item twice, and
per-user timestamps come in sessions with exact ties, so the timestamp sort's tie-break (file
order) matters. Ratings depend on a hidden item quality and user bias (about 55% are above 3).

Memory stays small at any N: users are generated in chunks of about `CHUNK_ROWS` ratings, each row
is sent to one of K random buckets (binary temp files), then each bucket is shuffled and written as
text. Random buckets followed by a uniform shuffle within each bucket give a uniform random
permutation of all rows, so the file order is a true global shuffle, with ~CHUNK_ROWS rows in
memory at a time. Text is formatted by pyarrow's CSV writer (C++), not a Python loop.
Same N and seed -> the same bytes.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

GENERATOR_VERSION = "bench-ml-v1"
CHUNK_ROWS = 1_000_000
MIN_PER_USER = 20
GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
          "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
          "War", "Western")
OCCUPATIONS = ("administrator", "artist", "doctor", "educator", "engineer", "entertainment", "executive",
               "healthcare", "homemaker", "lawyer", "librarian", "marketing", "none", "other", "programmer",
               "retired", "salesman", "scientist", "student", "technician", "writer")
_WORDS = ("Midnight", "Harbor", "Signal", "Garden", "Echo", "Frontier", "Paper", "Velvet", "Orbit", "Lantern",
          "Winter", "Copper", "Café", "Mirror", "Atlas", "Riviera", "Hotel", "Summer", "Last", "Return")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_T0 = 874_724_710  # ml-100k era (Sep 1997)
_ROW = np.dtype([("user", "<i4"), ("item", "<i4"), ("rating", "i1"), ("ts", "<i8")])


def sizes(n_ratings: int) -> tuple[int, int]:
    """(users, items) for N ratings. Items is prime so any stride 1..items-1 walks all items."""
    n_users = max(1, n_ratings // 100)
    n_items = _next_prime(n_ratings // 1000 + 1682)
    if n_users * MIN_PER_USER > n_ratings:
        raise ValueError(f"--ratings must be at least {MIN_PER_USER * 100} (every user needs {MIN_PER_USER})")
    return n_users, n_items


def _next_prime(n: int) -> int:
    def is_prime(k: int) -> bool:
        return k > 1 and all(k % d for d in range(2, int(k**0.5) + 1))

    while not is_prime(n):
        n += 1
    return n


def _per_user_counts(rng: np.random.Generator, n_ratings: int, n_users: int, cap: int) -> np.ndarray:
    weights = rng.lognormal(0.0, 1.0, n_users)
    counts = MIN_PER_USER + rng.multinomial(n_ratings - MIN_PER_USER * n_users, weights / weights.sum())
    counts = np.minimum(counts, cap)  # a user rates each item at most once
    while (deficit := n_ratings - int(counts.sum())) > 0:
        room = np.flatnonzero(counts < cap)
        counts[rng.choice(room, size=min(deficit, room.size), replace=False)] += 1
    return counts


def _chunk_rows(rng: np.random.Generator, first_user: int, counts: np.ndarray, n_items: int,
                quality: np.ndarray) -> np.ndarray:
    """Rows for users first_user .. first_user + len(counts) - 1 (0-based), grouped by user, in time order."""
    n_users, total = counts.size, int(counts.sum())
    owner = np.repeat(np.arange(n_users), counts)
    starts = np.cumsum(counts) - counts
    k = np.arange(total) - starts[owner]  # position within the user
    # Distinct items per user: offset + k * stride (mod a prime) never repeats for k < n_items.
    offset = rng.integers(0, n_items, n_users)
    stride = rng.integers(1, n_items, n_users)
    item = (offset[owner] + k * stride[owner]) % n_items
    bias = rng.normal(0.0, 0.5, n_users)
    score = 3.55 + quality[item] + bias[owner] + rng.normal(0.0, 0.9, total)
    # Sessions: gaps of 0 s (exact ties), seconds, minutes, hours or days.
    gaps = rng.choice(np.array([0, 1, 30, 600, 3_600, 86_400]), size=total,
                      p=[0.12, 0.28, 0.25, 0.2, 0.1, 0.05])
    gaps[starts] = 0
    elapsed = np.cumsum(gaps)
    elapsed -= elapsed[starts][owner]
    ts = (_T0 + rng.integers(0, 200 * 86_400, n_users))[owner] + elapsed
    rows = np.empty(total, _ROW)
    rows["user"] = first_user + owner + 1
    rows["item"] = item + 1
    rows["rating"] = np.clip(np.rint(score), 1, 5)
    rows["ts"] = ts
    return rows


def _write_data(rng: np.random.Generator, path: Path, counts: np.ndarray, n_items: int,
                quality: np.ndarray) -> None:
    n_ratings = int(counts.sum())
    n_buckets = max(1, -(-n_ratings // CHUNK_ROWS))
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".buckets-") as tmp:
        buckets = [open(Path(tmp) / f"{b}.bin", "wb") for b in range(n_buckets)]  # noqa: SIM115
        try:
            ends = np.cumsum(counts)
            first = 0
            while first < counts.size:
                # Users whose ratings fit in about CHUNK_ROWS rows (at least one user).
                last = max(first + 1, int(np.searchsorted(ends, ends[first] - counts[first] + CHUNK_ROWS)))
                rows = _chunk_rows(rng, first, counts[first:last], n_items, quality)
                where = rng.integers(0, n_buckets, rows.size)
                order = np.argsort(where, kind="stable")
                bounds = np.searchsorted(where[order], np.arange(n_buckets + 1))
                for b in range(n_buckets):
                    rows[order[bounds[b]:bounds[b + 1]]].tofile(buckets[b])
                first = last
        finally:
            for handle in buckets:
                handle.close()
        options = pacsv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none")
        tmp_out = path.with_name(f".{path.name}.tmp")
        schema = pa.schema([(n, pa.int64()) for n in _ROW.names])
        with pacsv.CSVWriter(tmp_out, schema, write_options=options) as writer:
            for b in range(n_buckets):
                rows = np.fromfile(Path(tmp) / f"{b}.bin", _ROW)
                rows = rows[rng.permutation(rows.size)]
                writer.write_table(pa.table({n: rows[n].astype(np.int64) for n in _ROW.names}))
        tmp_out.replace(path)


def _items(rng: np.random.Generator, n_items: int) -> list[str]:
    years = rng.integers(1930, 1999, n_items)
    words = rng.integers(0, len(_WORDS), (n_items, 2))
    days, months = rng.integers(1, 29, n_items), rng.integers(0, 12, n_items)
    flags = rng.random((n_items, len(GENRES))) < 0.12
    lines = []
    for i in range(n_items):
        title = f"Synthetic {_WORDS[words[i, 0]]} {_WORDS[words[i, 1]]} {i + 1} ({years[i]})"
        date = f"{days[i]:02d}-{_MONTHS[months[i]]}-{years[i]}"
        url = f"http://example.invalid/synthetic/{i + 1}"
        lines.append("|".join([str(i + 1), title, date, "", url, *("1" if f else "0" for f in flags[i])]))
    return lines


def _users(rng: np.random.Generator, n_users: int) -> list[str]:
    ages = rng.integers(7, 74, n_users)
    gender = rng.random(n_users) < 0.71
    jobs = rng.integers(0, len(OCCUPATIONS), n_users)
    zips = rng.integers(10_000, 100_000, n_users)
    return [f"{u + 1}|{ages[u]}|{'M' if gender[u] else 'F'}|{OCCUPATIONS[jobs[u]]}|{zips[u]}"
            for u in range(n_users)]


def generate(n_ratings: int, out: Path, seed: int = 0) -> Path:
    """Write the four files into `out`; skipped when the same N, seed and generator are already there."""
    stamp = out / ".generator"
    tag = f"{GENERATOR_VERSION} ratings={n_ratings} seed={seed}\n"
    if stamp.is_file() and stamp.read_text() == tag:
        return out
    out.mkdir(parents=True, exist_ok=True)
    stamp.unlink(missing_ok=True)
    n_users, n_items = sizes(n_ratings)
    rng = np.random.default_rng(seed)
    quality = rng.normal(0.0, 0.6, n_items)
    counts = _per_user_counts(rng, n_ratings, n_users, cap=n_items)
    small = {
        "u.item": ("\n".join(_items(rng, n_items)) + "\n", "latin-1"),
        "u.user": ("\n".join(_users(rng, n_users)) + "\n", "ascii"),
        "u.genre": ("".join(f"{g}|{i}\n" for i, g in enumerate(GENRES)) + "\n", "ascii"),
    }
    for name, (text, encoding) in small.items():
        tmp = out / f".{name}.tmp"
        tmp.write_bytes(text.encode(encoding))
        tmp.replace(out / name)
    _write_data(rng, out / "u.data", counts, n_items, quality)
    stamp.write_text(tag)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratings", type=int, default=10_000_000, help="number of ratings (rows of u.data)")
    parser.add_argument("--out", type=Path, required=True, help="folder to write u.data, u.item, u.user, u.genre")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    generate(args.ratings, args.out, args.seed)
    n_users, n_items = sizes(args.ratings)
    print(f"{args.ratings:,} ratings, {n_users:,} users, {n_items:,} items -> {args.out} "
          f"in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
