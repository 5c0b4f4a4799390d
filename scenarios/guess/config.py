"""Options of ``socius run guess`` (also a ``--config`` TOML/JSON table) and their checks.

:class:`GuessConfig` is plain data: :meth:`GuessConfig.validate` raises a
``ValueError`` naming the field (the command line turns it into exit code 2),
and the derived figures of the game (number of groups, equilibrium, offset)
are properties. The players' attributes are sampled from
:data:`DEFAULT_POPULATION`, overridden per attribute by ``[population.*]``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from socius.population import parse_population

from . import prompts

DEFAULT_POPULATION = {
    "name": {"dist": "categorical", "values": ["Alex", "Maria", "Wei", "Fatima", "John", "Aiko", "Carlos", "Olga",
                                               "Kwame", "Priya", "Tom", "Lena", "Omar", "Sofia", "Ivan", "Mei"]},
    "gender": {"dist": "categorical", "values": ["female", "male"]},
    "age": {"dist": "normal", "mean": 40, "std": 12, "low": 18, "high": 80, "dtype": "int"},
    "education": {"dist": "categorical", "values": ["High School", "Bachelor's Degree", "Master's Degree", "Ph.D."],
                  "weights": [0.35, 0.4, 0.18, 0.07]},
    "occupation": {"dist": "conditional", "on": "education", "cases": {
        "High School": {"dist": "categorical", "values": ["shop assistant", "driver", "farmer", "electrician"]},
        "Bachelor's Degree": {"dist": "categorical", "values": ["teacher", "accountant", "nurse", "software developer"]},
        "Master's Degree": {"dist": "categorical", "values": ["engineer", "economist", "lawyer", "data scientist"]},
        "Ph.D.": {"dist": "categorical", "values": ["professor", "researcher", "physician", "game theorist"]}}},
}
GAMES = ("classic", "nash10", "group")
PROFILE_KINDS = tuple(prompts.PROFILES)


@dataclass
class GuessConfig:
    """Options of ``socius run guess`` (also a ``--config`` TOML/JSON table); see the scenario README."""

    agents: int = 300
    game: str = "classic"             # classic | nash10 | group
    p: float = 2 / 3
    offset: float | None = None       # nash10: target = offset + p * mean; default 10 (1 - p): equilibrium 10
    max_value: int = 100
    groups: int = 3                   # group game: number of groups (one per model when models are given)
    prompt: str = "basic"             # basic | cot | rational | strategic
    reply_style: str = ""             # "" = the variant's default | direct | reasoned
    famous_note: bool = False         # "a variation of the famous 2/3 game" (§4.7)
    profile: str = "occupation"       # anonymous | name | education | occupation | background
    backgrounds: bool = False         # LLM-written character backgrounds before round 1 (profile = background)
    few_shot: bool = True
    extract: str = "fallback"         # fallback: an extraction call only for replies that do not parse | never
    temperature: float = 1.0
    max_tokens: int = 0               # 0: 16 for direct replies, 200 for reasoned ones
    win_tolerance: float = 0.0
    models: list[str] = field(default_factory=list)  # engine names for a mixture of LLMs (round-robin by ID)
    population: dict = field(default_factory=dict)   # per-attribute distributions (override the defaults)

    def validate(self) -> None:
        if self.agents < 1:
            raise ValueError(f"agents: must be >= 1, got {self.agents}")
        if self.game not in GAMES:
            raise ValueError(f"game: must be one of {', '.join(GAMES)}, got {self.game!r}")
        if not 0 < self.p < 1:
            raise ValueError(f"p: must be in (0, 1), got {self.p}")
        if self.max_value < 1:
            raise ValueError(f"max_value: must be >= 1, got {self.max_value}")
        if self.prompt not in prompts.VARIANTS:
            raise ValueError(f"prompt: must be one of {', '.join(prompts.VARIANTS)}, got {self.prompt!r}")
        if self.reply_style not in ("", *prompts.ANSWER_FORMAT):
            raise ValueError(f"reply_style: must be '', {', '.join(prompts.ANSWER_FORMAT)}, got {self.reply_style!r}")
        if self.profile not in PROFILE_KINDS:
            raise ValueError(f"profile: must be one of {', '.join(PROFILE_KINDS)}, got {self.profile!r}")
        if self.extract not in ("fallback", "never"):
            raise ValueError(f"extract: must be 'fallback' or 'never', got {self.extract!r}")
        if self.temperature < 0:
            raise ValueError(f"temperature: must be >= 0, got {self.temperature}")
        if self.max_tokens < 0:
            raise ValueError(f"max_tokens: must be >= 0, got {self.max_tokens}")
        if self.game == "group" and not 2 <= self.groups <= self.agents:
            raise ValueError(f"groups: the group game needs 2 <= groups <= agents, got {self.groups}")
        if self.win_tolerance < 0:
            raise ValueError(f"win_tolerance: must be >= 0, got {self.win_tolerance}")
        self.population_specs()  # raises naming population.<attr>.<field>

    def population_specs(self) -> dict:
        specs = parse_population({**DEFAULT_POPULATION, **self.population})
        missing = {"name", "gender", "age", "education", "occupation"} - set(specs)
        if missing:
            raise ValueError(f"population: the guess game needs attributes {sorted(missing)}")
        return specs

    @property
    def n_groups(self) -> int:
        if self.game != "group":
            return 0
        return len(self.models) if self.models else self.groups

    @property
    def nash(self) -> float:
        """The game's equilibrium: 0 for classic/group, offset / (1 - p) for nash10."""
        return 0.0 if self.game != "nash10" else self.offset_value / (1.0 - self.p)

    @property
    def offset_value(self) -> float:
        return (10.0 * (1.0 - self.p) if self.offset is None else self.offset) if self.game == "nash10" else 0.0
