"""Social-network propagation (S3: Gao et al., "S3: Social-network Simulation System with LLM-Empowered Agents").

Agents follow each other on a follow graph (scale-free, small-world, or an
edge list; :mod:`.graph`), stored as a ragged component. A news event reaches
a few seed agents at ``event_tick``; from then on, every tick, agents read
the posts of those they follow, the acting ones make ONE batched LLM call
(post / forward / idle, emotion, stance), idle ones calm down, and exact
global figures are recorded (:mod:`.systems` lists the tick in order).

A post is one :class:`Post` message from its author with no single target
(``target = -1``); a follower picks out the posts of those it follows by
sender ID — the columnar form of "one message per follower": ``m`` posts
cost ``m`` rows, not ``m × followers``, and under MPI the router gives every
rank all posts in the same (tick, sender, seq) order. Every per-agent value
is drawn keyed by entity ID and agents are spawned with explicit global IDs
(``socius.mpi.owned_block``), so a seed gives the same state on any number
of ranks.

Modules: :mod:`.components` (schemas), :mod:`.config` (options),
:mod:`.graph` (follow graphs), :mod:`.prompts` (the decision's text),
:mod:`.systems` (the tick), :mod:`.scenario` (build and registration),
:mod:`.report` (metrics and ``social.png``), :mod:`.mock` (the mock
engine's policy).
"""
from . import graph, prompts
from .components import (Action, Follows, Inbox, Mood, Post, Profile, SocialEvent, SocialPrompts,
                         SocialStats)
from .config import SocialConfig
from .report import metrics, report
from .scenario import SCENARIO, build, choose_seeds, edges, make_decision
from .systems import decide_actions, inject_event, read_posts, record_metrics, relax_emotions

__all__ = ["SCENARIO", "SocialConfig", "Profile", "Follows", "Mood", "Inbox", "Action", "Post", "SocialEvent",
           "SocialStats", "SocialPrompts", "build", "edges", "metrics", "report", "choose_seeds", "make_decision",
           "read_posts", "inject_event", "decide_actions", "relax_emotions", "record_metrics", "graph", "prompts"]
