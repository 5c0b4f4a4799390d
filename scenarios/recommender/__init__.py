"""A movie recommender with LLM users (RecAgent / GenSim §2.1): browse, watch, rate, chat, post.

Each tick every active user (activity trait) gets a page of ``page_size``
movies from the recommender system — popularity, content-based (faiss over
item embeddings) or matrix factorisation refitted every ``refit_every`` ticks
on all ratings collected so far — and, in ONE batched LLM call for all of
them, watches one and rates it (0.5–5.0 in 0.5 steps; its own opinion and the
rating posted after seeing the others' average) or skips, and may tell a
friend (chat) or all friends (post) about it; friends see that next tick.

Per tick → ``metrics.parquet``: rating distribution, mean rating, catalogue
coverage (recommended / watched so far), mean per-user genre entropy (the
information cocoon) and conformity (the shift of posted ratings toward the
shown average, from the users' own opinion); ``report`` plots them.

Modules: :mod:`.components` (schemas), :mod:`.config` (options),
:mod:`.data` (MovieLens catalogues), :mod:`.synthetic` (the shipped one),
:mod:`.users` (profiles and tastes), :mod:`.recsys` (the three
recommenders), :mod:`.prompts` (the decisions' text), :mod:`.systems` (the
tick), :mod:`.scenario` (build and registration), :mod:`.report` (metrics
and ``recommender.png``), :mod:`.mock` (the mock engine's policy),
:mod:`.fluctuation` (GenSim's fluctuation experiment, ``socius experiment
fluctuation``).
"""
from . import fluctuation, prompts, recsys
from .components import Choice, Friends, History, Mention, Page, RecSetup, RecState, Taste, Traits
from .config import RECOMMENDERS, RecommenderConfig
from .report import metrics, report
from .scenario import SCENARIO, build, mock_policy
from .systems import browse_page, genre_entropy, record_tick, recommend_items, refit_model

__all__ = ["SCENARIO", "RecommenderConfig", "RECOMMENDERS", "Traits", "Taste", "Friends", "History", "Page",
           "Choice", "Mention", "RecState", "RecSetup", "build", "metrics", "report", "mock_policy",
           "refit_model", "recommend_items", "browse_page", "record_tick", "genre_entropy", "fluctuation",
           "prompts", "recsys"]
