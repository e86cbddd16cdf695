"""The embedded `demo` dataset: SYNTHETIC ratings written in MovieLens-100K's exact file format.

Deterministic (seeded numpy generator, fixed sizes), so the same files come out byte for byte
on every machine, and the real ml-100k parser reads them. The behaviour is planted, not real,
and planted where a prompt shows it: every movie has one of six genres, named in its title
("Synthetic Comedy: Echo 002 (1944)"); every user loves two of them, watches those more often
and rates them high, and some genres please everyone more than others (APPEAL). So the
preference task's answer can be read off its prompt: the target's genre, and whether it is
among the genres of the movies this user liked. A small hidden per-movie quality and noise keep
it from being a lookup. Titles say "Synthetic" so no one mistakes them for data.
"""

from pathlib import Path

import numpy as np

from itdr_pipeline.hashing import sha256_json

GENERATOR_VERSION = "demo-v2"
SEED = 20_240_601
N_USERS, N_ITEMS = 200, 400
GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
          "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
          "War", "Western")
OCCUPATIONS = ("administrator", "artist", "educator", "engineer", "librarian", "programmer", "student",
               "technician", "writer", "other")
SHOWN_GENRES = (1, 5, 8, 11, 14, 15)  # Action, Comedy, Drama, Horror, Romance, Sci-Fi
# How much everyone likes each shown genre (Comedy and Action up, Horror and Sci-Fi down), on
# top of each user's own two loved genres.
APPEAL = {1: 1.0, 5: 1.0, 8: 0.0, 11: -1.0, 14: 0.0, 15: -1.0}
LOVED_PER_USER = 2
_WORDS = ("Midnight", "Harbor", "Signal", "Garden", "Echo", "Frontier", "Paper", "Velvet", "Orbit", "Lantern",
          "Winter", "Copper", "Café", "Mirror", "Atlas", "Riviera")  # 'Café' exercises latin-1
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_T0 = 874_724_710  # same era as ml-100k (Sep 1997)


def _items(rng: np.random.Generator) -> tuple[list[str], np.ndarray, np.ndarray]:
    genre_flags = np.zeros((N_ITEMS, len(GENRES)), dtype=np.int8)
    lines = []
    quality = rng.normal(0.0, 0.15, N_ITEMS)
    for i in range(N_ITEMS):
        genre = SHOWN_GENRES[i % len(SHOWN_GENRES)]  # balanced: ~67 movies per genre
        genre_flags[i, genre] = 1
        year = int(rng.integers(1930, 1998))
        word = str(rng.choice(_WORDS))
        title = f"Synthetic {GENRES[genre]}: {word} {i + 1:03d} ({year})"  # one word: shorter prompts
        date = f"{int(rng.integers(1, 29)):02d}-{_MONTHS[int(rng.integers(0, 12))]}-{year}"
        url = f"http://example.invalid/synthetic/{i + 1}"
        lines.append("|".join([str(i + 1), title, date, "", url, *map(str, genre_flags[i])]))
    return lines, genre_flags, quality


def _ratings(rng: np.random.Generator, genre_flags: np.ndarray, quality: np.ndarray) -> list[str]:
    popularity = rng.dirichlet(np.full(N_ITEMS, 0.6))
    appeal = genre_flags[:, list(APPEAL)] @ np.array(list(APPEAL.values()))
    rows = []
    for u in range(N_USERS):
        loved = np.zeros(len(GENRES))
        loved[rng.choice(SHOWN_GENRES, size=LOVED_PER_USER, replace=False)] = 1.0
        affinity = genre_flags @ loved  # 1 for a movie of a loved genre, else 0
        n = int(rng.integers(20, 121))
        # Users watch their loved genres more often (about half of what they watch).
        weights = popularity * (1.0 + 1.5 * affinity)
        items = rng.choice(N_ITEMS, size=n, replace=False, p=weights / weights.sum())
        score = 3.0 + 0.9 * appeal[items] + 1.4 * affinity[items] + quality[items] + rng.normal(0.0, 0.4, n)
        stars = np.clip(np.rint(score), 1, 5).astype(int)
        start = _T0 + int(rng.integers(0, 150 * 86_400))
        # Ratings arrive in sessions: gaps of seconds to days, with some exact ties, as in ml-100k.
        times = start + np.cumsum(rng.choice([0, 1, 30, 600, 86_400], size=n, p=[0.1, 0.3, 0.3, 0.2, 0.1]))
        rows += [f"{u + 1}\t{items[k] + 1}\t{stars[k]}\t{times[k]}" for k in range(n)]
    order = rng.permutation(len(rows))  # like u.data, rows are not sorted
    return [rows[k] for k in order]


def _users(rng: np.random.Generator) -> list[str]:
    return [
        f"{u + 1}|{int(rng.integers(15, 70))}|{rng.choice(['M', 'F'])}|{rng.choice(OCCUPATIONS)}|"
        f"{int(rng.integers(10000, 99999))}"
        for u in range(N_USERS)
    ]


def write_demo(folder: Path) -> Path:
    """Write the demo files into `folder` (skipped when this generator version is already there)."""
    stamp = folder / ".generator"
    tag = sha256_json([GENERATOR_VERSION, SEED, N_USERS, N_ITEMS])
    if stamp.is_file() and stamp.read_text() == tag:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    item_lines, genre_flags, quality = _items(rng)
    files = {
        "u.item": ("\n".join(item_lines) + "\n", "latin-1"),
        "u.user": ("\n".join(_users(rng)) + "\n", "ascii"),
        "u.data": ("\n".join(_ratings(rng, genre_flags, quality)) + "\n", "ascii"),
        "u.genre": ("".join(f"{g}|{i}\n" for i, g in enumerate(GENRES)) + "\n", "ascii"),
        "README": ("SYNTHETIC demo data generated by itdr-pipeline in MovieLens-100K layout.\n", "ascii"),
    }
    for name, (text, encoding) in files.items():
        tmp = folder / f".{name}.tmp"
        tmp.write_bytes(text.encode(encoding))
        tmp.replace(folder / name)
    stamp.write_text(tag)
    return folder
