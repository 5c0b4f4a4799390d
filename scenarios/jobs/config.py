"""Options of ``socius run jobs`` and the default population specs they override.

:class:`JobsConfig` is the ``--config`` TOML/JSON table (see ``jobs.toml``
and the README); :meth:`JobsConfig.validate` raises ``ValueError`` (or
``ConfigError`` for interventions and population specs) naming the field.
``seekers`` and ``openings`` hold per-attribute distributions
(``population/``) merged over :data:`DEFAULT_SEEKERS` and
:data:`DEFAULT_OPENINGS`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from socius.population import parse_population
from socius.systems import parse_interventions
from socius.text.embed import EMBEDDER_KINDS

from .data import CITIES, FIELDS, SALARY, SKILLS, TITLES


def _by_field(table: dict) -> dict:
    return {"dist": "conditional", "on": "field",
            "cases": {f: {"dist": "categorical", "values": v} for f, v in table.items()}}


def _salary(spread: float) -> dict:
    return {"dist": "conditional", "on": "field",
            "cases": {f: {"dist": "normal", "mean": m, "std": m * spread, "low": m * 0.5, "high": m * 2}
                      for f, m in SALARY.items()}}


DEFAULT_SEEKERS = {
    "field": {"dist": "categorical", "values": FIELDS, "weights": [0.25, 0.15, 0.25, 0.2, 0.15]},
    "skills": _by_field(SKILLS),
    "experience": {"dist": "normal", "mean": 6, "std": 5, "low": 0, "high": 40, "dtype": "int"},
    "education": {"dist": "categorical", "values": ["vocational training", "Bachelor's degree", "Master's degree"],
                  "weights": [0.45, 0.4, 0.15]},
    "location": {"dist": "categorical", "values": CITIES, "weights": [0.35, 0.25, 0.25, 0.15]},
    "expected_salary": _salary(0.18),
}
DEFAULT_OPENINGS = {
    "field": {"dist": "categorical", "values": FIELDS, "weights": [0.25, 0.15, 0.25, 0.2, 0.15]},
    "title": _by_field(TITLES),
    "requirements": _by_field(SKILLS),
    "min_experience": {"dist": "uniform", "low": 0, "high": 8, "dtype": "int"},
    "location": {"dist": "categorical", "values": CITIES + ["remote"], "weights": [0.3, 0.2, 0.2, 0.15, 0.15]},
    "salary_low": _salary(0.12),
}


@dataclass
class JobsConfig:
    """Options of ``socius run jobs`` (also a ``--config`` TOML/JSON table); see the README."""

    agents: int = 200                  # seekers
    employers: int = 40
    openings_per_employer: int = 3
    search_k: int = 5                  # ads a seeker sees per tick
    shortlist: int = 6                 # applicants an opening reads per tick (best match first)
    max_invites: int = 3
    embedder: str = "hashing"          # hashing | minilm (all-MiniLM-L6-v2, the `embeddings` extra)
    index: str = "flat"                # flat | ivf | hnsw (faiss)
    temperature: float = 0.7
    max_tokens: int = 96
    seekers: dict = field(default_factory=dict)    # per-attribute distributions (override the defaults)
    openings: dict = field(default_factory=dict)
    interventions: list = field(default_factory=list)  # [[interventions]] tables: tick, set, value, where/ids

    def validate(self) -> None:
        parse_interventions(self.interventions)   # raises ConfigError naming interventions[i].<field>
        for name in ("agents", "employers", "openings_per_employer", "search_k", "shortlist", "max_invites"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.search_k > 12 or self.shortlist > 12:
            raise ValueError("search_k: must be <= 12" if self.search_k > 12 else "shortlist: must be <= 12")
        if self.max_invites > self.shortlist:
            raise ValueError(f"max_invites: must be <= shortlist ({self.shortlist}), got {self.max_invites}")
        if self.embedder not in EMBEDDER_KINDS:
            raise ValueError(f"embedder: must be one of {', '.join(EMBEDDER_KINDS)}, got {self.embedder!r}")
        if self.index not in ("flat", "ivf", "hnsw"):
            raise ValueError(f"index: must be flat, ivf or hnsw, got {self.index!r}")
        if self.temperature < 0:
            raise ValueError(f"temperature: must be >= 0, got {self.temperature}")
        if self.max_tokens < 16:
            raise ValueError(f"max_tokens: must be >= 16, got {self.max_tokens}")
        self.seeker_specs()
        self.opening_specs()

    def seeker_specs(self) -> dict:
        """The seekers' population specs: the defaults with ``seekers`` merged over them."""
        specs = parse_population({**DEFAULT_SEEKERS, **self.seekers}, "seekers")
        missing = set(DEFAULT_SEEKERS) - set(specs)
        if missing:
            raise ValueError(f"seekers: needs attributes {sorted(missing)}")
        return specs

    def opening_specs(self) -> dict:
        """The openings' population specs: the defaults with ``openings`` merged over them."""
        return parse_population({**DEFAULT_OPENINGS, **self.openings}, "openings")
