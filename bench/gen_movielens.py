"""Write N seeded SYNTHETIC ratings in a MovieLens file layout (100K's or ml-latest's), for benchmarks.

    python bench/gen_movielens.py --ratings 10000000 --out /tmp/ml-10m/ml-100k --seed 0
    python bench/gen_movielens.py --layout latest --ratings 32000000 --out /tmp/ml32/ml-32m

`--layout latest` writes ML-32M's layout: `ratings.csv` (header `userId,movieId,rating,timestamp`,
ratings 0.5-5.0 in half stars written like `3.5`), `movies.csv` (`movieId,title,genres`, '"'-quoted
titles with commas, '|'-joined genres), with ML-32M's proportions (N // 160 users, about N // 365
movies: 200,000 users and 87,671 movies at 32M). Otherwise the ml-100k layout:

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
import csv
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

GENERATOR_VERSION = "bench-ml-v2"
LAYOUTS = ("100k", "latest")
LATEST_GENRES = ("Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama",
                 "Fantasy", "Film-Noir", "Horror", "IMAX", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
                 "War", "Western")
_HALF_STARS = pa.array([f"{k / 2:.1f}" for k in range(11)])  # index = 2 * rating
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


def sizes(n_ratings: int, layout: str = "100k") -> tuple[int, int]:
    """(users, items) for N ratings. Items is prime so any stride 1..items-1 walks all items."""
    if layout == "latest":  # ML-32M: 200,948 users and 87,585 movies for 32,000,204 ratings
        n_users, n_items = max(1, n_ratings // 160), _next_prime(n_ratings // 365 + 1)
    else:
        n_users, n_items = max(1, n_ratings // 100), _next_prime(n_ratings // 1000 + 1682)
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
                quality: np.ndarray, half_stars: bool = False) -> np.ndarray:
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
    rows["rating"] = np.clip(np.rint(score), 1, 5) if not half_stars else np.clip(np.rint(score * 2), 1, 10)
    rows["ts"] = ts
    return rows


def _write_data(rng: np.random.Generator, path: Path, counts: np.ndarray, n_items: int,
                quality: np.ndarray, layout: str = "100k") -> None:
    latest = layout == "latest"  # rating column holds 2 x stars
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
                rows = _chunk_rows(rng, first, counts[first:last], n_items, quality, half_stars=latest)
                where = rng.integers(0, n_buckets, rows.size)
                order = np.argsort(where, kind="stable")
                bounds = np.searchsorted(where[order], np.arange(n_buckets + 1))
                for b in range(n_buckets):
                    rows[order[bounds[b]:bounds[b + 1]]].tofile(buckets[b])
                first = last
        finally:
            for handle in buckets:
                handle.close()
        options = pacsv.WriteOptions(include_header=False, delimiter="," if latest else "\t", quoting_style="none")
        tmp_out = path.with_name(f".{path.name}.tmp")
        tmp_out.write_text("userId,movieId,rating,timestamp\n" if latest else "")  # unquoted, as GroupLens writes it
        names = ("userId", "movieId", "rating", "timestamp") if latest else _ROW.names
        schema = pa.schema([(n, pa.string() if latest and n == "rating" else pa.int64()) for n in names])
        with open(tmp_out, "ab") as sink, pacsv.CSVWriter(sink, schema, write_options=options) as writer:
            for b in range(n_buckets):
                rows = np.fromfile(Path(tmp) / f"{b}.bin", _ROW)
                rows = rows[rng.permutation(rows.size)]
                cols = [rows[n].astype(np.int64) for n in _ROW.names]
                if latest:
                    cols[2] = _HALF_STARS.take(pa.array(cols[2]))
                writer.write_table(pa.table(dict(zip(names, cols, strict=True)), schema=schema))
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


def _movies_csv(rng: np.random.Generator, n_items: int) -> str:
    years = rng.integers(1930, 2024, n_items)
    words = rng.integers(0, len(_WORDS), (n_items, 2))
    flags = rng.random((n_items, len(LATEST_GENRES))) < 0.12
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")  # quotes only fields with commas, as GroupLens does
    writer.writerow(["movieId", "title", "genres"])
    for i in range(n_items):
        title = f"Synthetic {_WORDS[words[i, 0]]}{', The' if i % 7 == 0 else ''} {_WORDS[words[i, 1]]} {i + 1} ({years[i]})"
        genres = "|".join(g for g, f in zip(LATEST_GENRES, flags[i], strict=True) if f) or "(no genres listed)"
        writer.writerow([i + 1, title, genres])
    return out.getvalue()


def generate(n_ratings: int, out: Path, seed: int = 0, layout: str = "100k") -> Path:
    """Write the layout's files into `out`; skipped when the same N, seed, layout and generator are there."""
    stamp = out / ".generator"
    tag = f"{GENERATOR_VERSION} layout={layout} ratings={n_ratings} seed={seed}\n"
    if stamp.is_file() and stamp.read_text() == tag:
        return out
    out.mkdir(parents=True, exist_ok=True)
    stamp.unlink(missing_ok=True)
    n_users, n_items = sizes(n_ratings, layout)
    rng = np.random.default_rng(seed)
    quality = rng.normal(0.0, 0.6, n_items)
    counts = _per_user_counts(rng, n_ratings, n_users, cap=n_items)
    if layout == "latest":
        (out / ".movies.csv.tmp").write_text(_movies_csv(rng, n_items), encoding="utf-8")
        (out / ".movies.csv.tmp").replace(out / "movies.csv")
        _write_data(rng, out / "ratings.csv", counts, n_items, quality, layout)
        stamp.write_text(tag)
        return out
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
    parser.add_argument("--out", type=Path, required=True, help="folder to write the dataset's files into")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--layout", choices=LAYOUTS, default="100k", help="100k: u.data & co; latest: ratings.csv")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    generate(args.ratings, args.out, args.seed, args.layout)
    n_users, n_items = sizes(args.ratings, args.layout)
    print(f"{args.ratings:,} ratings, {n_users:,} users, {n_items:,} items -> {args.out} "
          f"in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
