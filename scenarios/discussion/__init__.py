"""Group discussion (GenSim §2.1): rooms of k agents talk about a statement, in agent or script mode.

Every room is a nested environment: a ``Room`` entity with its statement, its
members and this round's transcript; its members carry a ``Seat`` pointing at
it. One tick is one round of discussion in every room:

1. ``poll_stance_before`` (tick 0 only): every agent's stance on its room's
   statement, 1 (strongly disagree) … 5 (strongly agree), one batched call;
2. the discussion, by ``mode``:

   - **agent** (``take_turns``): ``turns`` turns; in each, the next speaker of
     *every* room speaks in the first person with its room's history — one
     batched ``decide`` per turn across all rooms. Next speaker: the one the
     last message addressed (``@Name``), else the next seat;
   - **script** (``write_scripts``): one call per room writes the whole
     exchange from a third-person view (``Name: message`` lines), parsed into
     utterances per agent — one batched ``decide`` over the rooms;

3. ``poll_stance_after``: every agent's stance after reading its room's
   discussion (one batched call);
4. ``record_round``: stance shift, polarisation (variance, bimodality, share at
   the extremes), talk share (Gini of utterances per agent), mentions, and the
   cost of the round (batched calls, requests, prompt/output tokens, engine and
   wall time), reduced over ranks.

Mentions notify: an ``@Name`` gives the addressed member the next turn (the
room's listener) and sends a ``Mention`` message to that agent, which
``notify_mentioned`` files in its ``Inbox`` next tick (shown in its next
prompt: "Maria addressed you: …").

MPI: a room and its members live on one rank (a group partition: rooms are
groups), so reading the room's row from a member is local; everything
between agents beyond the room goes through messages; global figures use
:mod:`socius.mpi` reductions.

Modules: :mod:`.components` (schemas and resources), :mod:`.config`
(options), :mod:`.prompts` (the decisions' text), :mod:`.transcript` (text
over whole batches), :mod:`.rooms` (rooms and mentions as a system sees
them), :mod:`.systems` (the tick), :mod:`.measures` (figures from
histograms), :mod:`.scenario` (build and registration), :mod:`.report`
(metrics, parquet tables, plot), :mod:`.mock` (the mock engine's policy).
"""
from . import measures, prompts
from .components import (LEVELS, DiscussionRuntime, DiscussionState, Inbox, Mention, Persona, Room, Seat, Stance,
                         Talk)
from .config import DEFAULT_POPULATION, DEFAULT_TOPICS, MODES, DiscussionConfig
from .mock import discussion_policy
from .report import metrics, plot_rounds, report
from .scenario import NAMES, SCENARIO, build, make_decisions
from .systems import (notify_mentioned, poll_stance_after, poll_stance_before, record_round, start_clock,
                      take_turns, write_scripts)

__all__ = ["SCENARIO", "DiscussionConfig", "DEFAULT_POPULATION", "DEFAULT_TOPICS", "MODES", "NAMES", "LEVELS",
           "Persona", "Seat", "Stance", "Talk", "Inbox", "Room", "Mention", "DiscussionState", "DiscussionRuntime",
           "build", "make_decisions", "metrics", "report", "plot_rounds", "start_clock", "notify_mentioned",
           "poll_stance_before", "take_turns", "write_scripts", "poll_stance_after", "record_round",
           "discussion_policy", "measures", "prompts"]
