"""The users' attributes: a profile from declared distributions and a genre taste, keyed by entity ID.

Everything here is a pure function of ``(config, catalogue, entity IDs, seed)``,
so the scenario's ``build`` and the mock engine's policy compute the same
values, on any rank, for any subset of users.

Taste (``[n, 20]``, rows sum to 1), by ``taste``:

* ``"data"``: each user is mapped to one of the catalogue's users (drawn by
  entity ID) and takes that user's genre shares among the movies they rated
  4 or more (:meth:`Catalogue.user_tastes`) — the tastes are the data's;
* ``"dirichlet"``: weights ``E_g · U_g^(1/α)`` over the genres the catalogue
  has (``E`` exponential, ``U`` uniform, ``α = taste_concentration``),
  normalised — roughly Dirichlet(α): small ``α`` gives narrow tastes.
"""
from __future__ import annotations

import numpy as np

from socius.ecs import STR
from socius.ecs.rng import EntityRng
from socius.population import parse_population, sample_population

from .data import GENRES, N_GENRES, Catalogue

DEFAULT_POPULATION = {
    "name": {"dist": "categorical", "values": ["Alex", "Maria", "Wei", "Fatima", "John", "Aiko", "Carlos", "Olga",
                                               "Kwame", "Priya", "Tom", "Lena", "Omar", "Sofia", "Ivan", "Mei"]},
    "gender": {"dist": "categorical", "values": ["female", "male"]},
    "age": {"dist": "normal", "mean": 35, "std": 13, "low": 16, "high": 80, "dtype": "int"},
    "occupation": {"dist": "categorical", "values": ["student", "teacher", "nurse", "engineer", "artist",
                                                     "shop assistant", "programmer", "retiree", "writer", "lawyer"]},
    "activity": {"dist": "uniform", "low": 0.3, "high": 1.0},
    "conformity": {"dist": "normal", "mean": 0.35, "std": 0.25, "low": 0.0, "high": 1.0},
}
REQUIRED = ("name", "gender", "age", "occupation", "activity", "conformity")


def population_specs(population: dict) -> dict:
    """Declared distributions (defaults overridden by ``population``); raises naming ``population.<attr>``."""
    specs = parse_population({**DEFAULT_POPULATION, **population})
    missing = set(REQUIRED) - set(specs)
    if missing:
        raise ValueError(f"population: the recommender needs attributes {sorted(missing)}")
    return specs


def tastes(kind: str, concentration: float, cat: Catalogue, ids: np.ndarray, seed: int) -> np.ndarray:
    """``[n, 20] float32`` genre tastes of users ``ids`` (see the module docstring)."""
    ids = np.asarray(ids, np.int64)
    present = cat.genres.any(axis=0)
    if kind == "data" and cat.n_users > 0:
        who = EntityRng(seed, "taste:user", 0).integers(ids, 0, cat.n_users)
        t = cat.tastes[who] * present
    else:
        u = EntityRng(seed, "taste:dirichlet", 0).random(ids, 2 * N_GENRES)
        e = -np.log1p(-u[:, :N_GENRES])
        t = e * u[:, N_GENRES:] ** (1.0 / concentration) * present
    t = t + 1e-9 * present
    return (t / t.sum(axis=1, keepdims=True)).astype(np.float32)


def user_columns(population: dict, taste: str, concentration: float, cat: Catalogue, ids: np.ndarray,
                 seed: int) -> dict:
    """Profile columns (name, gender, age, occupation, activity, conformity) and ``taste`` for ``ids``."""
    cols = sample_population(population_specs(population), np.asarray(ids, np.int64), seed)
    cols["taste"] = tastes(taste, concentration, cat, ids, seed)
    return cols


def taste_phrases(taste: np.ndarray, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """``(likes, dislikes)`` ``[n]`` texts: the ``k`` strongest genres ("Comedy, Drama and Romance") and the
    weakest common genre among Action/Comedy/Drama/Horror/Romance/Thriller."""
    names = np.array(GENRES, dtype=STR)
    top = np.argsort(-taste, axis=1, kind="stable")[:, :k]
    parts = names[top]
    likes = parts[:, 0]
    for j in range(1, k):
        sep = " and " if j == k - 1 else ", "
        likes = np.strings.add(np.strings.add(likes, sep), parts[:, j])
    common = np.array([GENRES.index(g) for g in ("Action", "Comedy", "Drama", "Horror", "Romance", "Thriller")])
    low = common[np.argmin(taste[:, common], axis=1)]
    return likes.astype(STR), names[low]


#: how the prompt words the conformity trait: (upper bound of the trait, wording, the value the mock reads back)
CONFORMITY_LEVELS = (
    (0.2, "Trusts their own taste and ignores what others think.", 0.0),
    (0.6, "Is swayed a little by other people's opinions.", 0.4),
    (0.9, "Usually goes along with what most people think.", 0.75),
    (np.inf, "Always goes along with what most people think.", 1.0),
)


def conformity_phrase(c: np.ndarray) -> np.ndarray:
    """``[n]`` text describing how much others' ratings sway a user (:data:`CONFORMITY_LEVELS`)."""
    bounds = np.array([b for b, _, _ in CONFORMITY_LEVELS[:-1]])
    words = np.array([w for _, w, _ in CONFORMITY_LEVELS], dtype=STR)
    return words[np.searchsorted(bounds, np.asarray(c, np.float64), side="left")]
