"""Build and registration of ``socius run discussion``.

:func:`make_decisions` turns the config into the run's decisions (a speak
decision per turn, the script, the two polls). :func:`build` seats the
agents: agent ``i`` sits in room ``min(i // k, rooms - 1)`` (the last room
takes the remainder) and rooms get IDs after the agents; every rank
computes the same group partition, so a room and its members live on one
rank. It then spawns this rank's rooms and agents (population sampled per
global ID: the same people on any number of ranks), inserts the resources
and adds the systems of the mode. :data:`SCENARIO` is what the registry
finds under ``discussion``.
"""
from __future__ import annotations

import numpy as np

from socius.app.registry import Scenario
from socius.ecs import STR, World
from socius.llm import Decision, DecisionStats, JsonReply, Number, Sampling, Template, Text, TextReply
from socius.mpi import Ranks, group_partition, world_ranks
from socius.population import sample_population
from socius.systems import Group, apply_interventions, ensure_environment, schedule_interventions

from . import prompts
from .components import DiscussionRuntime, DiscussionState, Inbox, Persona, Room, Seat, Stance, Talk
from .config import DiscussionConfig
from .judges import JUDGES
from .mock import discussion_policy
from .report import metrics, report
from .systems import (notify_mentioned, poll_stance_after, poll_stance_before, record_round, start_clock,
                      take_turns, write_scripts)
from .transcript import join_groups

NAMES = ("Maria", "Wei", "Tom", "Aiko", "Carlos", "Olga", "Kwame", "Priya", "Lena", "Omar", "Sofia", "Ivan",
         "Mei", "John", "Fatima", "Alex", "Nadia", "Pedro", "Yuki", "Hassan", "Emma", "Ravi", "Chloe", "Jonas",
         "Amara", "Diego", "Hana", "Luca", "Zara", "Felix", "Ines", "Kofi")


def make_decisions(cfg: DiscussionConfig) -> dict:
    """``speak`` (one decision per turn), ``script``, ``poll_first``, ``poll_after``: DiscussionRuntime's fields."""
    talk = Sampling(temperature=cfg.temperature, max_tokens=cfg.max_tokens, stop=("\n",))
    poll = Sampling(temperature=cfg.poll_temperature, max_tokens=12, stop=("\n",))
    stance = JsonReply(stance=Number(1, 5, integer=True))
    return {
        "speak": [Decision(f"speak{t:02d}", Template(prompts.SPEAK, untrusted=("transcript",)),
                           JsonReply(message=Text()), fallback={"message": "I have nothing to add."}, sampling=talk)
                  for t in range(cfg.turns)],
        "script": Decision("script", Template(prompts.SCRIPT), TextReply(), fallback={"text": ""},
                           sampling=Sampling(temperature=cfg.temperature, max_tokens=cfg.max_tokens * cfg.turns,
                                             stop=("\n\n", "\n#")), extract=None),
        "poll_first": Decision("poll_first", Template(prompts.POLL_FIRST), stance, fallback={"stance": 3},
                               sampling=poll),
        "poll_after": Decision("poll_after", Template(prompts.POLL_AFTER, untrusted=("transcript",)), stance,
                               fallback={"stance": -1}, sampling=poll),
    }


def build(world: World, cfg: DiscussionConfig) -> None:
    """Rooms (one group each) and their members on this rank; decisions; the systems of the mode."""
    cfg.validate()
    k, n_rooms = cfg.room_size, cfg.rooms
    agent_ids = np.arange(cfg.agents, dtype=np.int64)
    room_index = np.minimum(agent_ids // k, n_rooms - 1)            # the last room takes the remainder
    room_ids = cfg.agents + np.arange(n_rooms, dtype=np.int64)
    position = (agent_ids - room_index * k).astype(np.int32)
    names = np.array(NAMES, dtype=STR)[(room_index * 5 + position) % len(NAMES)]  # unique within a room
    # every rank computes the same group partition: a room and its members on one rank
    ranks = world_ranks(world)
    held = world.resource(Ranks)
    if held.partition is None:
        held.partition = group_partition(np.r_[agent_ids, room_ids], np.r_[room_index, np.arange(n_rooms)],
                                         ranks.size)
    mine_a = held.partition.owner_of(agent_ids) == ranks.rank
    mine_r = held.partition.owner_of(room_ids) == ranks.rank
    sizes = np.bincount(room_index, minlength=n_rooms)
    members = join_groups(names, sizes, ", ")
    topics = np.array(cfg.topics, dtype=STR)
    world.insert_resource(DiscussionState(mode=cfg.mode, turns=cfg.turns, transcript_chars=cfg.transcript_chars))
    world.insert_resource(DiscussionRuntime(**make_decisions(cfg)))
    if world.get_resource(DecisionStats) is None:
        world.insert_resource(DecisionStats())
    r_ids = room_ids[mine_r]
    r_idx = np.arange(n_rooms)[mine_r]
    world.spawn(r_ids.shape[0], {Room: {"index": r_idx.astype(np.int32), "statement": topics[r_idx % len(topics)],
                                        "members": members[r_idx], "size": sizes[r_idx].astype(np.int32)}},
                ids=r_ids)
    a_ids = agent_ids[mine_a]
    cols = sample_population(cfg.population_specs(), a_ids, world.seed)
    world.spawn(a_ids.shape[0], {
        Persona: {"name": names[mine_a], "age": cols["age"].astype(np.int32),
                  "occupation": cols["occupation"].astype(STR), "leaning": cols["leaning"].astype(STR)},
        Seat: {"room": room_ids[room_index[mine_a]], "index": room_index[mine_a].astype(np.int32),
               "position": position[mine_a]},
        Group: {"group": room_index[mine_a]}, Stance: {}, Talk: {}, Inbox: {}}, ids=a_ids)
    ensure_environment(world)
    schedule_interventions(world, cfg.interventions)
    world.add_systems(start_clock, apply_interventions, notify_mentioned, poll_stance_before,
                      take_turns if cfg.mode == "agent" else write_scripts, poll_stance_after, record_round)


SCENARIO = Scenario(name="discussion", summary="Group discussion in rooms (GenSim §2.1), agent or script mode",
                    config=DiscussionConfig, build=build, metrics=metrics, unit="rounds",
                    mock_policy=lambda cfg: discussion_policy(), report=report,
                    judges=JUDGES)
