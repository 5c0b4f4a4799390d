"""Options of ``socius run discussion`` and their validation.

:class:`DiscussionConfig` is the ``--config`` TOML/JSON table (and the
command-line options); :meth:`~DiscussionConfig.validate` raises
``ValueError`` (or ``ConfigError`` for ``[[interventions]]``) naming the
bad field, which the command turns into exit code 2. The population's
age, occupation and prior leaning come from declared distributions
(:data:`DEFAULT_POPULATION`, overridden per attribute by ``[population.*]``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from socius.population import parse_population
from socius.systems import parse_interventions

from .mock import LEANINGS

MODES = ("agent", "script")

DEFAULT_TOPICS = ["Remote work should become the default for office jobs.",
                  "Cities should ban private cars from their centres.",
                  "Social media does more harm than good."]

DEFAULT_POPULATION = {
    "age": {"dist": "normal", "mean": 40, "std": 13, "low": 18, "high": 80, "dtype": "int"},
    "occupation": {"dist": "categorical", "values": ["teacher", "nurse", "engineer", "shop assistant", "student",
                                                     "farmer", "accountant", "artist", "retired", "driver"]},
    "leaning": {"dist": "categorical", "values": list(LEANINGS), "weights": [0.15, 0.2, 0.3, 0.2, 0.15]},
}


@dataclass
class DiscussionConfig:
    """Options of ``socius run discussion`` (also a ``--config`` TOML/JSON table); see the README."""

    agents: int = 60
    room_size: int = 4                  # k; the last room takes the remainder (k .. 2k-1 members)
    mode: str = "agent"                 # agent | script
    turns: int = 8                      # messages per room and round, in both modes
    topics: list[str] = field(default_factory=lambda: list(DEFAULT_TOPICS))  # room r discusses topics[r % len]
    temperature: float = 0.7            # discussion messages / scripts
    poll_temperature: float = 0.0       # stance polls
    max_tokens: int = 80                # per message (agent mode); a script gets turns × this
    transcript_chars: int = 2400        # the last N characters of a transcript go into prompts
    population: dict = field(default_factory=dict)  # per-attribute distributions (override the defaults)
    interventions: list = field(default_factory=list)  # [[interventions]] tables: tick, set, value, where/ids

    def validate(self) -> None:
        parse_interventions(self.interventions)   # raises ConfigError naming interventions[i].<field>
        if self.mode not in MODES:
            raise ValueError(f"mode: must be one of {', '.join(MODES)}, got {self.mode!r}")
        if not 2 <= self.room_size <= 16:
            raise ValueError(f"room_size: must be in 2..16, got {self.room_size}")
        if self.agents < self.room_size:
            raise ValueError(f"agents: must be >= room_size ({self.room_size}), got {self.agents}")
        if not 1 <= self.turns <= 64:
            raise ValueError(f"turns: must be in 1..64, got {self.turns}")
        if not self.topics or any(not isinstance(t, str) or not t.strip() or "\n" in t for t in self.topics):
            raise ValueError("topics: must be a non-empty list of one-line statements")
        if self.temperature < 0 or self.poll_temperature < 0:
            raise ValueError("temperature: must be >= 0" if self.temperature < 0 else
                             "poll_temperature: must be >= 0")
        if self.max_tokens < 8:
            raise ValueError(f"max_tokens: must be >= 8, got {self.max_tokens}")
        if self.transcript_chars < 100:
            raise ValueError(f"transcript_chars: must be >= 100, got {self.transcript_chars}")
        self.population_specs()

    def population_specs(self) -> dict:
        specs = parse_population({**DEFAULT_POPULATION, **self.population})
        missing = {"age", "occupation", "leaning"} - set(specs)
        if missing:
            raise ValueError(f"population: the discussion needs attributes {sorted(missing)}")
        return specs

    @property
    def rooms(self) -> int:
        return self.agents // self.room_size
