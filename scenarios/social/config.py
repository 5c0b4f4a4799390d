"""Options of ``socius run social`` (also a ``--config`` TOML/JSON table) and their validation.

:class:`SocialConfig` is a flat dataclass: the graph, the event, the agents'
behaviour, the LLM sampling, the mock engine's dynamics, the population's
attribute distributions and ``[[interventions]]`` tables. ``validate`` raises
``ValueError`` naming the field (the command line turns it into exit code 2).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from socius.population import parse_population
from socius.systems import parse_interventions

from . import graph, prompts
from .components import MAX_SHOWN

SELECTIONS = ("random", "hubs", "ids")
DYNAMICS = ("converge", "polarise")

DEFAULT_POPULATION = {
    "name": {"dist": "categorical", "values": ["Alex", "Maria", "Wei", "Fatima", "John", "Aiko", "Carlos", "Olga",
                                               "Kwame", "Priya", "Tom", "Lena", "Omar", "Sofia", "Ivan", "Mei"]},
    "age": {"dist": "normal", "mean": 35, "std": 13, "low": 16, "high": 80, "dtype": "int"},
    "occupation": {"dist": "categorical", "values": ["student", "teacher", "nurse", "engineer", "journalist",
                                                     "shop assistant", "driver", "lawyer", "retiree", "farmer"]},
    "trait": {"dist": "categorical", "values": ["outspoken", "cautious", "curious", "sceptical", "empathetic"]},
}


@dataclass
class SocialConfig:
    """Options of ``socius run social`` (also a ``--config`` TOML/JSON table); see the scenario README."""

    agents: int = 1000
    graph: str = "scale_free"        # scale_free | small_world | file
    degree: int = 10                 # mean number of follows per agent
    gamma: float = 2.5               # scale_free: exponent of the in-degree power law (> 2)
    rewire: float = 0.1              # small_world: rewiring probability
    edges_file: str = ""             # graph = file: CSV or Parquet with columns src,dst (src follows dst)
    event_tick: int = 0              # tick at which the news reaches the seeds
    seeds: int = 5                   # how many agents get the news first
    seed_selection: str = "random"   # random | hubs (most followers) | ids (seed_ids)
    seed_ids: list[int] = field(default_factory=list)
    headline: str = "The government announces that treated nuclear wastewater will be released into the sea."
    news_stance: float = 0.0         # the stance the news item carries, in [-1, 1]
    news_emotion: str = "moderate"   # the mood the news item carries
    shown_posts: int = 3             # posts shown in a prompt (1..3); all of them count in the summary
    react: float = 0.8               # chance that an aware agent with new posts acts this tick
    activity: float = 0.05           # chance that an aware agent acts without new posts
    relax: float = 0.3               # chance that an agent that did not act calms down one level
    attitude_mean: float = 0.0       # initial stances: normal(mean, std), clipped to [-1, 1]
    attitude_std: float = 0.3
    bins: int = 10                   # attitude histogram bins over [-1, 1]
    temperature: float = 0.7
    max_tokens: int = 96
    few_shot: bool = True
    dedup: bool = False              # merge identical prompts (every prompt here is an agent's own: off saves time)
    dynamics: str = "converge"       # mock engine: converge | polarise
    influence: float = 0.3           # mock engine: how far a stance moves per decision
    share: float = 0.6               # mock engine: chance to post/forward right after hearing of the event
    forward: float = 0.6             # mock engine: share of forwards among shares when posts were read
    novelty: float = 3.0             # mock engine: ticks over which interest in the event fades
    population: dict = field(default_factory=dict)   # per-attribute distributions (override the defaults)
    interventions: list = field(default_factory=list)  # [[interventions]] tables: tick, set, value, where/ids

    def validate(self) -> None:
        def unit(name):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name}: must be in [0, 1], got {v}")
        if not 2 <= self.agents <= graph.MAX_AGENTS:
            raise ValueError(f"agents: must be in 2..{graph.MAX_AGENTS}, got {self.agents}")
        if self.graph not in graph.GRAPHS:
            raise ValueError(f"graph: must be one of {', '.join(graph.GRAPHS)}, got {self.graph!r}")
        if self.degree < 1:
            raise ValueError(f"degree: must be >= 1, got {self.degree}")
        if not self.gamma > 2.0:
            raise ValueError(f"gamma: must be > 2, got {self.gamma}")
        if self.graph == "file" and not self.edges_file:
            raise ValueError("edges_file: graph = 'file' needs an edge list (CSV or Parquet with src,dst)")
        if self.event_tick < 0:
            raise ValueError(f"event_tick: must be >= 0, got {self.event_tick}")
        if self.seed_selection not in SELECTIONS:
            raise ValueError(f"seed_selection: must be one of {', '.join(SELECTIONS)}, got {self.seed_selection!r}")
        if self.seed_selection == "ids":
            if not self.seed_ids:
                raise ValueError("seed_ids: seed_selection = 'ids' needs a non-empty list of agent IDs")
            bad = [i for i in self.seed_ids if not 0 <= i < self.agents]
            if bad:
                raise ValueError(f"seed_ids: agent ID {bad[0]} is outside 0..{self.agents - 1}")
        elif not 1 <= self.seeds <= self.agents:
            raise ValueError(f"seeds: must be in 1..agents, got {self.seeds}")
        for name in ("rewire", "react", "activity", "relax", "influence", "share", "forward"):
            unit(name)
        if not -1.0 <= self.news_stance <= 1.0:
            raise ValueError(f"news_stance: must be in [-1, 1], got {self.news_stance}")
        if self.news_emotion not in prompts.EMOTIONS:
            raise ValueError(f"news_emotion: must be one of {', '.join(prompts.EMOTIONS)}, got {self.news_emotion!r}")
        if not 1 <= self.shown_posts <= MAX_SHOWN:
            raise ValueError(f"shown_posts: must be in 1..{MAX_SHOWN}, got {self.shown_posts}")
        if self.attitude_std < 0:
            raise ValueError(f"attitude_std: must be >= 0, got {self.attitude_std}")
        if not 1 <= self.bins <= 200:
            raise ValueError(f"bins: must be in 1..200, got {self.bins}")
        if self.temperature < 0:
            raise ValueError(f"temperature: must be >= 0, got {self.temperature}")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens: must be >= 1, got {self.max_tokens}")
        if self.dynamics not in DYNAMICS:
            raise ValueError(f"dynamics: must be one of {', '.join(DYNAMICS)}, got {self.dynamics!r}")
        if self.novelty <= 0:
            raise ValueError(f"novelty: must be > 0, got {self.novelty}")
        self.population_specs()
        parse_interventions(self.interventions)   # raises ConfigError naming interventions[i].<field>

    def population_specs(self) -> dict:
        specs = parse_population({**DEFAULT_POPULATION, **self.population})
        missing = {"name", "age", "occupation", "trait"} - set(specs)
        if missing:
            raise ValueError(f"population: the social scenario needs attributes {sorted(missing)}")
        return specs
