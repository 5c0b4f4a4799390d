"""The recommender's options: :class:`RecommenderConfig`, one flat dataclass and its validation.

``socius run recommender`` fills it from the command line and ``--config``
(a TOML or JSON table, :func:`socius.app.config.build_config`);
:meth:`RecommenderConfig.validate` checks every field and names the one that
is wrong (the command line exits 2). The fields and what they do are listed
in the scenario README.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from socius.components.memory import ShortTermMemory
from socius.systems import parse_interventions

from .data import check_headers
from .users import population_specs

RECOMMENDERS = ("popularity", "content", "mf")


@dataclass
class RecommenderConfig:
    """Options of ``socius run recommender`` (also a ``--config`` TOML table); see the scenario README."""

    agents: int = 200
    data: str = ""                    # MovieLens folder (movies.csv + ratings.csv, or u.item + u.data); "" = shipped
    recommender: str = "mf"           # popularity | content | mf
    page_size: int = 5
    refit_every: int = 2              # mf: refit on all ratings so far every F ticks
    factors: int = 16
    reg: float = 0.1
    als_iters: int = 8
    mf_backend: str = "numpy"         # numpy | jax (the jax extra)
    embedder: str = "hashing"         # content: hashing | minilm (the embeddings extra)
    liked: float = 4.0                # content: items rated >= liked make the user's query
    friends: int = 3
    memories: int = 3                 # memories shown in the prompt (0..8)
    long_memory: bool = False         # also long-term memory (embedded with `embedder`); the prompt then shows
                                      # the memories most relevant to the page (recency × importance × relevance)
    show_average: bool = True         # show the others' average rating on the page (conformity)
    taste: str = "data"               # data | dirichlet
    taste_concentration: float = 0.5  # dirichlet: alpha
    temperature: float = 0.7
    max_tokens: int = 48
    population: dict = field(default_factory=dict)
    interventions: list = field(default_factory=list)  # [[interventions]] tick, set, value, where, ids

    def validate(self) -> None:
        if self.agents < 1:
            raise ValueError(f"agents: must be >= 1, got {self.agents}")
        if self.recommender not in RECOMMENDERS:
            raise ValueError(f"recommender: must be one of {', '.join(RECOMMENDERS)}, got {self.recommender!r}")
        if not 1 <= self.page_size <= 50:
            raise ValueError(f"page_size: must be in 1..50, got {self.page_size}")
        for name in ("refit_every", "factors", "als_iters"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.reg <= 0:
            raise ValueError(f"reg: must be > 0, got {self.reg}")
        if self.mf_backend not in ("numpy", "jax"):
            raise ValueError(f"mf_backend: must be 'numpy' or 'jax', got {self.mf_backend!r}")
        if self.embedder not in ("hashing", "minilm"):
            raise ValueError(f"embedder: must be 'hashing' or 'minilm', got {self.embedder!r}")
        if not 0.5 <= self.liked <= 5.0:
            raise ValueError(f"liked: must be in 0.5..5.0, got {self.liked}")
        if not 0 <= self.memories <= ShortTermMemory.capacity:
            raise ValueError(f"memories: must be in 0..{ShortTermMemory.capacity}, got {self.memories}")
        if self.friends < 0:
            raise ValueError(f"friends: must be >= 0, got {self.friends}")
        if self.taste not in ("data", "dirichlet"):
            raise ValueError(f"taste: must be 'data' or 'dirichlet', got {self.taste!r}")
        if self.taste_concentration <= 0:
            raise ValueError(f"taste_concentration: must be > 0, got {self.taste_concentration}")
        if self.temperature < 0:
            raise ValueError(f"temperature: must be >= 0, got {self.temperature}")
        if self.max_tokens < 8:
            raise ValueError(f"max_tokens: must be >= 8, got {self.max_tokens}")
        if self.data:
            check_headers(self.data)  # DataError (a ConfigError) names the file
        population_specs(self.population)
        parse_interventions(self.interventions)  # ConfigError naming interventions[i].<field>
