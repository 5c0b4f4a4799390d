"""MovieLens-format catalogues: movies with genres, and the ratings users gave them.

Two layouts are read from a folder the user gives (columnar, with pyarrow):

* ``movies.csv`` + ``ratings.csv`` — ml-latest, ml-latest-small, ml-25m, ml-32m
  (``movieId,title,genres`` with ``|``-separated genres;
  ``userId,movieId,rating,timestamp``);
* ``u.item`` + ``u.data`` — ml-100k (``|``-separated, Latin-1, 19 genre flags;
  tab-separated ``user item rating timestamp``).

A small synthetic catalogue in the first layout ships with the scenario
(``data/synthetic/``, written by :mod:`.synthetic`) for tests and the demo.

Genres are mapped onto one fixed list, :data:`GENRES` (MovieLens' 20, with
ml-100k's ``unknown`` as ``(no genres listed)`` and ``Children's`` as
``Children``), so a genre vector is always ``[20]`` whatever the source.
Problems with the files raise :class:`DataError` naming the file and what is
wrong.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from socius.ecs import STR
from socius.errors import ConfigError

GENRES = ("Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
          "Film-Noir", "Horror", "IMAX", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
          "(no genres listed)")
N_GENRES = len(GENRES)
ML100K_GENRES = ("(no genres listed)", "Action", "Adventure", "Animation", "Children", "Comedy", "Crime",
                 "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
                 "Thriller", "War", "Western")
SYNTHETIC = Path(__file__).parent / "data" / "synthetic"
RATING_STEPS = np.arange(1, 11) / 2.0   # 0.5, 1.0, ..., 5.0


class DataError(ConfigError):
    """A MovieLens folder or file that is missing or malformed (the message names the file)."""


@dataclass(frozen=True)
class Catalogue:
    """Items and historical ratings. ``M`` items, ``U`` users, ``R`` ratings.

    movie_id ``[M] int64`` (the source's IDs), title ``[M]`` StringDType,
    genres ``[M, 20] bool`` (see :data:`GENRES`); user ``[R] int64`` (dense
    0..U-1, in order of first appearance in the source's user IDs sorted),
    item ``[R] int64`` (row in the item arrays), rating ``[R] float32`` on the
    0.5 grid.
    """

    movie_id: np.ndarray
    title: np.ndarray
    genres: np.ndarray
    user: np.ndarray
    item: np.ndarray
    rating: np.ndarray
    source: str

    @property
    def n_items(self) -> int:
        return int(self.movie_id.shape[0])

    @property
    def n_users(self) -> int:
        return int(self.user.max()) + 1 if self.user.shape[0] else 0

    def counts(self) -> np.ndarray:
        """``[M] int64``: ratings per item."""
        return np.bincount(self.item, minlength=self.n_items).astype(np.int64)

    def half_star_sums(self) -> np.ndarray:
        """``[M] int64``: sum of ratings per item in half stars (exact integers)."""
        return np.bincount(self.item, weights=np.round(self.rating * 2), minlength=self.n_items).astype(np.int64)

    def quality(self, prior: float = 10.0) -> np.ndarray:
        """``[M] float64``: each item's mean rating shrunk toward the global mean by ``prior`` pseudo-ratings."""
        mu = float(self.rating.mean()) if self.rating.shape[0] else 3.5
        return (self.half_star_sums() / 2.0 + prior * mu) / (self.counts() + prior)

    def genre_names(self) -> np.ndarray:
        """``[M]`` StringDType: ``"Comedy|Romance"`` per item."""
        g = np.array(GENRES, dtype=STR)
        out = np.full(self.n_items, "", dtype=STR)
        for k in range(N_GENRES):  # 20 genres, not a loop over items
            has = self.genres[:, k]
            sep = np.where(out == "", "", "|").astype(STR)
            out = np.where(has, np.strings.add(np.strings.add(out, sep), g[k]), out).astype(STR)
        return out

    def user_tastes(self, smoothing: float = 0.5, liked: float = 4.0) -> np.ndarray:
        """``[U, 20] float64``: each data user's genre shares among the items they rated >= ``liked``
        (all their items when none), plus ``smoothing`` pseudo-counts spread evenly; rows sum to 1."""
        u = self.n_users
        good = self.rating >= liked
        has_good = np.bincount(self.user[good], minlength=u) > 0
        use = good | ~has_good[self.user]
        users, items = self.user[use], self.item[use]
        acc = np.stack([np.bincount(users, weights=self.genres[items, g], minlength=u) for g in range(N_GENRES)],
                       axis=1)  # one bincount per genre over the ratings
        acc += smoothing / N_GENRES
        return acc / acc.sum(axis=1, keepdims=True)

    @cached_property
    def tastes(self) -> np.ndarray:
        """:meth:`user_tastes` with the defaults, computed once per catalogue."""
        return self.user_tastes()


def _need(folder: Path, *names: str) -> list[Path]:
    paths = [folder / n for n in names]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise DataError(f"data: {folder} has no {' / '.join(missing)} (need movies.csv + ratings.csv "
                        "of ml-latest(-small), or u.item + u.data of ml-100k)")
    return paths


def detect_layout(folder: str | Path) -> str:
    """``"latest"`` (movies.csv + ratings.csv) or ``"100k"`` (u.item + u.data); DataError otherwise."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"data: no such folder {folder}")
    if (folder / "movies.csv").is_file() or (folder / "ratings.csv").is_file():
        _need(folder, "movies.csv", "ratings.csv")
        return "latest"
    if (folder / "u.item").is_file() or (folder / "u.data").is_file():
        _need(folder, "u.item", "u.data")
        return "100k"
    _need(folder, "movies.csv", "ratings.csv")  # raises naming what is missing
    return "latest"


def check_headers(folder: str | Path) -> str:
    """Cheap check of a folder before a run (layout and CSV headers); returns the layout."""
    folder = Path(folder)
    layout = detect_layout(folder)
    if layout == "latest":
        for name, cols in (("movies.csv", ("movieId", "title", "genres")),
                           ("ratings.csv", ("userId", "movieId", "rating"))):
            with open(folder / name, encoding="utf-8", errors="replace") as f:
                head = f.readline().strip().split(",")
            missing = [c for c in cols if c not in head]
            if missing:
                raise DataError(f"data: {folder / name}: header lacks column(s) {', '.join(missing)} "
                                f"(found: {','.join(head)[:80]})")
    return layout


def _read_csv(path: Path, **kw) -> pa.Table:
    try:
        return pcsv.read_csv(path, **kw)
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError) as e:
        raise DataError(f"data: {path}: cannot parse: {str(e).splitlines()[0]}") from None


def _column(t: pa.Table, path: Path, name: str) -> pa.ChunkedArray:
    if name not in t.column_names:
        raise DataError(f"data: {path}: no column {name!r} (columns: {', '.join(t.column_names)})")
    col = t.column(name)
    if col.null_count:
        raise DataError(f"data: {path}: column {name!r} has {col.null_count} empty value(s)")
    return col


def _as_int(col: pa.ChunkedArray, path: Path, name: str) -> np.ndarray:
    if not pa.types.is_integer(col.type):
        raise DataError(f"data: {path}: column {name!r} must hold integers, got {col.type}")
    return col.to_numpy().astype(np.int64)


def _ratings(users: np.ndarray, movies: np.ndarray, ratings: np.ndarray, movie_id: np.ndarray, path: Path):
    if ratings.shape[0] and (np.isnan(ratings).any() or ratings.min() < 0.5 or ratings.max() > 5.0
                              or (ratings * 2 != np.round(ratings * 2)).any()):
        bad = int(np.flatnonzero(np.isnan(ratings) | (ratings < 0.5) | (ratings > 5.0)
                                 | (ratings * 2 != np.round(ratings * 2)))[0])
        raise DataError(f"data: {path}: rating {ratings[bad]!r} in row {bad + 1} is not in 0.5..5.0 in steps of 0.5")
    order = np.argsort(movie_id, kind="stable")
    pos = np.searchsorted(movie_id[order], movies)
    pos = np.minimum(pos, max(order.shape[0] - 1, 0))
    found = order.shape[0] > 0
    ok = (movie_id[order][pos] == movies) if found else np.zeros(movies.shape[0], bool)
    if not ok.all():
        bad = int(np.flatnonzero(~ok)[0])
        raise DataError(f"data: {path}: row {bad + 1} rates movie {int(movies[bad])}, which the movie file lacks")
    item = order[pos].astype(np.int64)
    _, user = np.unique(users, return_inverse=True)
    return user.astype(np.int64), item, ratings.astype(np.float32)


def load_latest(folder: Path) -> Catalogue:
    mpath, rpath = _need(folder, "movies.csv", "ratings.csv")
    mt = _read_csv(mpath, convert_options=pcsv.ConvertOptions(
        column_types={"movieId": pa.int64(), "title": pa.string(), "genres": pa.string()}))
    movie_id = _as_int(_column(mt, mpath, "movieId"), mpath, "movieId")
    if np.unique(movie_id).shape[0] != movie_id.shape[0]:
        raise DataError(f"data: {mpath}: movieId values are not unique")
    title = _column(mt, mpath, "title").to_numpy().astype(STR)
    gcol = _column(mt, mpath, "genres").combine_chunks()
    parts = pc.split_pattern(gcol, "|")
    flat = pc.list_flatten(parts)
    row = pc.list_parent_indices(parts).to_numpy()
    code = pc.index_in(flat, value_set=pa.array(GENRES)).to_numpy(zero_copy_only=False)
    code = np.where(np.isnan(code.astype(np.float64)), N_GENRES - 1, code).astype(np.int64)
    genres = np.zeros((movie_id.shape[0], N_GENRES), dtype=bool)
    genres[row, code] = True
    rt = _read_csv(rpath, convert_options=pcsv.ConvertOptions(
        column_types={"userId": pa.int64(), "movieId": pa.int64(), "rating": pa.float32()},
        include_columns=["userId", "movieId", "rating"]))
    users = _as_int(_column(rt, rpath, "userId"), rpath, "userId")
    movies = _as_int(_column(rt, rpath, "movieId"), rpath, "movieId")
    ratings = _column(rt, rpath, "rating").to_numpy().astype(np.float32)
    user, item, rating = _ratings(users, movies, ratings, movie_id, rpath)
    return Catalogue(movie_id, title, genres, user, item, rating, str(folder))


def load_100k(folder: Path) -> Catalogue:
    ipath, dpath = _need(folder, "u.item", "u.data")
    names = ["movieId", "title", "release", "video", "url", *[f"g{k}" for k in range(19)]]
    it = _read_csv(ipath, read_options=pcsv.ReadOptions(column_names=names, encoding="latin-1"),
                   parse_options=pcsv.ParseOptions(delimiter="|", quote_char=False),
                   convert_options=pcsv.ConvertOptions(column_types={"movieId": pa.int64(), "title": pa.string(),
                                                                     **{f"g{k}": pa.int8() for k in range(19)}},
                                                       strings_can_be_null=False))
    movie_id = _as_int(_column(it, ipath, "movieId"), ipath, "movieId")
    title = _column(it, ipath, "title").to_numpy().astype(STR)
    flags = np.stack([_column(it, ipath, f"g{k}").to_numpy() for k in range(19)], axis=1) != 0
    genres = np.zeros((movie_id.shape[0], N_GENRES), dtype=bool)
    for k, g in enumerate(ML100K_GENRES):  # 19 columns
        genres[:, GENRES.index(g)] |= flags[:, k]
    dt = _read_csv(dpath, read_options=pcsv.ReadOptions(column_names=["userId", "movieId", "rating", "timestamp"]),
                   parse_options=pcsv.ParseOptions(delimiter="\t"),
                   convert_options=pcsv.ConvertOptions(column_types={"userId": pa.int64(), "movieId": pa.int64(),
                                                                     "rating": pa.float32()}))
    users = _as_int(_column(dt, dpath, "userId"), dpath, "userId")
    movies = _as_int(_column(dt, dpath, "movieId"), dpath, "movieId")
    ratings = _column(dt, dpath, "rating").to_numpy().astype(np.float32)
    user, item, rating = _ratings(users, movies, ratings, movie_id, dpath)
    return Catalogue(movie_id, title, genres, user, item, rating, str(folder))


def load_catalogue(folder: str | Path | None = None) -> Catalogue:
    """The catalogue in ``folder`` (either layout); the shipped synthetic one when ``folder`` is empty/None."""
    folder = SYNTHETIC if not folder else Path(folder)
    layout = detect_layout(folder)
    cat = load_latest(folder) if layout == "latest" else load_100k(folder)
    if cat.n_items == 0:
        raise DataError(f"data: {folder}: the movie file lists no movies")
    return cat
