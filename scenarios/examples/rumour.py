"""A rumour spreads by word of mouth; each agent's LLM decides whether to pass it on."""
from dataclasses import dataclass

import numpy as np

from socius import (LLM, STR, ChoiceReply, Component, Decision, Message, Resource, Scalar, Scenario, String, Template,
                    choice_policy, decide, history_columns, int_sum, owned_block, system, world_ranks)

@dataclass
class RumourConfig:
    agents: int = 1000
    seeds: int = 5  # agents who know the rumour at the start

class Person(Component):
    job = String()
    knows = Scalar(np.bool_)

class Whisper(Message):  # sent in tick t, heard in t+1
    pass

class Log(Resource):
    history: list
    agents: int

ASK = Decision("pass_on", Template("You are a {job}. A friend told you a juicy rumour.\n"
                                   "Do you tell someone else? Answer yes or no: "),
               ChoiceReply("yes", "no"), fallback={"choice": "no"})

@system(writes=(Person,), receives=(Whisper,))
def hear(ctx):
    v = ctx.query(Person)
    v.set(Person, knows=v[Person].knows | np.isin(v.ids, ctx.read(Whisper).target))

@system(reads=(Person,), sends=(Whisper,), resources=(Log, LLM))
def gossip(ctx):
    everyone = ctx.query(Person)
    v = everyone.filter(everyone[Person].knows)
    tells = decide(ctx, ASK, v.ids, {"job": v[Person].job}).values["choice"] == "yes"
    ranks, n = world_ranks(ctx), ctx.resource(Log).agents
    ctx.send(Whisper, sender=v.ids[tells], target=ctx.rng("friend").integers(v.ids[tells], 0, n))
    aware = int_sum(ranks, everyone[Person].knows)
    ctx.resource(Log).history.append({"tick": ctx.tick, "aware": aware, "aware_share": aware / n})

def build(world, cfg: RumourConfig):
    ids = owned_block(world, cfg.agents)  # this rank's agents: all of them on one rank
    jobs = np.array(["baker", "nurse", "teacher", "journalist"], dtype=STR)
    world.spawn(len(ids), {Person: {"job": jobs[ids % 4], "knows": ids < cfg.seeds}}, ids=ids)
    world.insert_resource(Log(history=[], agents=cfg.agents))
    world.add_systems(hear, gossip)

SCENARIO = Scenario("rumour", "A rumour spreads by word of mouth", RumourConfig, build,
                    metrics=lambda w: history_columns(w.resource(Log).history),
                    mock_policy=lambda cfg: choice_policy(["yes", "no"], [0.7, 0.3]))
