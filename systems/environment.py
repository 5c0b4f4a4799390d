"""The environment API: shared state, listeners, groups, interventions, interviews, search.

Everything here works on batches of agents and on named targets, so a
scenario, a notebook or a config file can steer a running world::

    set_state(world, "price", 4.5)                     # shared state (a Resource, saved in snapshots)
    watch(world, ids, "price")                         # watchers get StateChanged next tick
    set_state(world, "mood", "tense", group=[0, 2])    # per-group state (nested environments)
    intervene(world, "Profile.occupation", "nurse", where="Profile.age >= 30")   # between ticks
    schedule_interventions(world, [{"tick": 5, "set": "state.price", "value": 9.0}])
    answers = interview(world, ids[:3], "How was your week?")   # state unchanged
    who = find_agents(world, "Profile.occupation == 'nurse'")
    ids, scores = search_agents(world, "retired teacher who likes films", k=10)

**Shared state** lives in :class:`SharedState`: JSON-safe values by key.
A group's state uses the same table under the key ``group/<g>/<key>``; an
agent's group is its :class:`Group` component.

**Listeners**: :func:`watch` records keys in the agents' :class:`Watching`
component (a global key, or with ``scope="group"`` the key in the agent's own
group). Every change is marked in ``SharedState.dirty``; the
:func:`notify_watchers` system (phase ``post``) sends one
:class:`StateChanged` message per (watcher, changed key), readable with
``ctx.read(StateChanged)`` in the next tick. Changes made between ticks are
delivered the same way (sent in the next tick's ``post``, read one tick later).

**Interventions** set a component column (``"Profile.occupation"``), a field
of a resource (``"MemoryParams.decay"``) or shared state (``"state.price"``,
``"state.group/2/mood"``), for all holders or those selected by ``ids`` and/or
``where``: a comparison ``"<Component>.<column> <op> <literal>"`` with op in
``== != < <= > >= in``, or a list of them (all must hold). Scheduled
interventions (``[[interventions]]`` tables in a scenario config: ``tick``,
``set``, ``value``, optional ``where``/``ids``) are applied by
:func:`apply_interventions` in phase ``pre`` of exactly that tick, so every
system of that tick sees the new value; add it before the scenario's own
``pre`` systems (:func:`environment_systems` returns both systems in order).

**Interviews** ask agents a question answered from their profile and their
retrieved memories through one batched :func:`~socius.llm.decide`
call; retrieval does not touch ``last_access``, so the world's state hash is
unchanged unless ``store=True`` writes the exchange back as a memory.

**Search** finds agents by attribute (:func:`find_agents`) or by text
(:func:`search_agents`: embedding similarity of rendered profiles, exact
faiss search).
"""
from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from socius.components.memory import LongTermMemory, LongTermMemoryBase
from socius.components.profile import PRIVATE_ATTRIBUTES, PUBLIC_ATTRIBUTES, Profile, render_profile
from socius.ecs import Component, Message, Ragged, RaggedArray, Resource, Scalar, String, system, world_of

from socius.llm.pipeline import Decision, decide
from socius.text.embed import HashingEmbedder
from socius.llm.engines.base import RequestBatch, Sampling
from .memory import MemoryEmbedder, join_lines, memorize, memory_policy, retrieve
from socius.llm.replies import TextReply
from socius.llm.templates import Template
from socius.text.vector_index import VectorIndex

STR = np.dtypes.StringDType()


class InterventionError(ValueError):
    """A bad intervention target, selection or value; the message names it."""


def _config_error(msg: str) -> Exception:
    from socius.errors import ConfigError
    return ConfigError(msg)


# ---------------------------------------------------------------------------------------------- state

class SharedState(Resource):
    """Shared environment state: ``values`` by key (JSON-safe), ``keys`` in the order first set
    (a key's index is its position), ``dirty``: keys changed since watchers were last notified."""

    values: dict = field(default_factory=dict)
    keys: list = field(default_factory=list)
    dirty: list = field(default_factory=list)


class Group(Component):
    """The group (nested environment) an agent belongs to: ``group [n] int64`` (-1 none)."""

    group = Scalar(np.int64, default=-1)


class Watching(Component):
    """Indices (into ``SharedState.keys``) of the state keys an agent watches."""

    keys = Ragged(np.int64)


class StateChanged(Message):
    """A watched key changed: ``key`` (its full name), ``value`` (JSON text), ``key_index``."""

    key = String()
    value = String()
    key_index = Scalar(np.int64)


def _state(world) -> SharedState:
    s = world.get_resource(SharedState)
    if s is None:
        s = SharedState()
        world.insert_resource(s)
    return s


def group_key(key: str, group: int) -> str:
    """The shared-state key of ``key`` in group ``group``: ``"group/<g>/<key>"``."""
    return f"group/{int(group)}/{key}"


def _json_safe(value):
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, np.ndarray):
        value = value.tolist()
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError):
        raise InterventionError(f"shared state values must be JSON-safe (numbers, strings, lists, dicts), "
                                f"got {type(value).__name__}") from None


def _key_index(state: SharedState, key: str) -> int:
    try:
        return state.keys.index(key)
    except ValueError:
        state.keys.append(key)
        return len(state.keys) - 1


def set_state(ctx, key: str, value, group=None) -> None:
    """Set shared state ``key`` (or, with ``group`` an int or a list of ints, that key in each group;
    ``value`` may then be a list with one value per group). Unchanged values do not notify."""
    world = world_of(ctx)
    if not isinstance(key, str) or not key:
        raise InterventionError(f"state key must be a non-empty string, got {key!r}")
    state = _state(world)
    if group is None:
        full, vals = [key], [value]
    else:
        groups = np.atleast_1d(np.asarray(group, dtype=np.int64)).tolist()
        vals = list(value) if isinstance(value, (list, tuple, np.ndarray)) and len(value) == len(groups) \
            and len(groups) > 1 else [value] * len(groups)
        full = [group_key(key, g) for g in groups]
    for k, v in zip(full, vals):
        v = _json_safe(v)
        _key_index(state, k)
        if k in state.values and state.values[k] == v:
            continue
        state.values[k] = v
        if k not in state.dirty:
            state.dirty.append(k)


def get_state(ctx, key: str, default=None, group=None):
    """Shared state ``key`` (in ``group`` when given), or ``default``."""
    world = world_of(ctx)
    state = world.get_resource(SharedState)
    if state is None:
        return default
    return state.values.get(key if group is None else group_key(key, group), default)


def group_values(ctx, ids, key: str, default=None) -> np.ndarray:
    """``[n] object``: each agent's value of its group's ``key`` (``default`` where unset or no group)."""
    world = world_of(ctx)
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    groups = np.full(ids.shape[0], -1, dtype=np.int64)
    has = world.has(ids, Group)
    groups[has] = world.get(Group, "group", ids[has])
    state = world.get_resource(SharedState)
    vals = state.values if state is not None else {}
    uniq, inverse = np.unique(groups, return_inverse=True)
    per_group = np.empty(uniq.shape[0], dtype=object)
    per_group[:] = [vals.get(group_key(key, g), default) if g >= 0 else default for g in uniq.tolist()]
    return per_group[inverse]


def watch(ctx, ids, key: str, scope: str = "global") -> None:
    """Agents ``ids`` watch ``key`` (``scope="group"``: the key in each agent's own group)."""
    world = world_of(ctx)
    ids = np.unique(np.asarray(ids, dtype=np.int64).reshape(-1))
    if scope not in ("global", "group"):
        raise InterventionError(f"watch: scope must be 'global' or 'group', got {scope!r}")
    if ids.size == 0:
        return
    state = _state(world)
    if scope == "global":
        idx = np.full(ids.shape[0], _key_index(state, key), dtype=np.int64)
    else:
        has = world.has(ids, Group)
        if not has.all():
            raise InterventionError(f"watch(scope='group'): entity {int(ids[~has][0])} has no Group")
        uniq, inverse = np.unique(world.get(Group, "group", ids), return_inverse=True)
        idx = np.array([_key_index(state, group_key(key, g)) for g in uniq.tolist()], dtype=np.int64)[inverse]
    has = world.has(ids, Watching)
    new = ids[~has]
    if new.size:
        world.add_component(new, Watching, keys=RaggedArray.from_lengths(np.ones(new.size, np.int64),
                                                                           idx[~has]))
    old = ids[has]
    if old.size:
        cur = world.get(Watching, "keys", old)
        owner = np.repeat(np.arange(old.size), cur.lengths)
        already = np.zeros(old.size, dtype=bool)
        already[owner[cur.values == idx[has][owner]]] = True
        add = ~already
        lengths = cur.lengths + add
        # append the key at the end of the rows that lack it
        ins = np.insert(cur.values, np.repeat(cur.offsets[1:], add.astype(np.int64)), idx[has][add])
        world.set(Watching, old, keys=RaggedArray.from_lengths(lengths, ins))


@system(phase="post", reads=(Watching,), resources=(SharedState,), sends=(StateChanged,))
def notify_watchers(ctx):
    """Send :class:`StateChanged` to every watcher of a key changed since the last run."""
    state = ctx.world.get_resource(SharedState)
    if state is None or not state.dirty:
        return
    changed = np.array(sorted(state.keys.index(k) for k in state.dirty), dtype=np.int64)
    state.dirty = []
    v = ctx.query(Watching)
    keys = v.get(Watching, "keys")
    owner = np.repeat(v.ids, keys.lengths)
    hit = np.isin(keys.values, changed)
    if not hit.any():
        return
    target, kidx = owner[hit], keys.values[hit]
    names = np.array(state.keys, dtype=STR)[kidx]
    values = np.array([json.dumps(state.values.get(k)) for k in state.keys], dtype=STR)[kidx]
    ctx.send(StateChanged, sender=np.full(target.shape[0], -1, dtype=np.int64), target=target,
             key=names, value=values, key_index=kidx)


# ---------------------------------------------------------------------------------------------- targets

def _component_named(world, name: str):
    hits = [c for c in world.component_types()
            if name in (c.__qualname__, c.__name__, getattr(c, "__component_name__", ""))]
    if len(hits) > 1:
        raise InterventionError(f"component name {name!r} is ambiguous: "
                                f"{', '.join(c.__component_name__ for c in hits)} (use the full name)")
    return hits[0] if hits else None


def _resource_named(world, name: str):
    hits = [r for r in world.resources() if name in (r.__qualname__, r.__name__)]
    return hits[0] if len(hits) == 1 else None


def _split_target(target: str) -> tuple[str, str]:
    if not isinstance(target, str) or "." not in target:
        raise InterventionError(f"target must look like 'Component.column', 'Resource.field' or 'state.key', "
                                f"got {target!r}")
    head, _, tail = target.partition(".")
    if not head or not tail:
        raise InterventionError(f"target {target!r}: expected 'Name.field'")
    return head, tail


def resolve_target(world, target: str):
    """``("state", key)``, ``("component", C, column)`` or ``("resource", R, field)`` for ``target``."""
    head, tail = _split_target(target)
    if head == "state":
        return ("state", tail)
    comp = _component_named(world, head)
    if comp is not None:
        if tail not in comp.columns():
            raise InterventionError(f"target {target!r}: {comp.__qualname__} has no column {tail!r} "
                                    f"(columns: {', '.join(comp.columns())})")
        return ("component", comp, tail)
    res = _resource_named(world, head)
    if res is not None:
        if not hasattr(world.resource(res), tail):
            raise InterventionError(f"target {target!r}: resource {res.__qualname__} has no field {tail!r}")
        return ("resource", res, tail)
    raise InterventionError(f"target {target!r}: no component or resource named {head!r} in this world")


_COND = re.compile(r"^\s*([A-Za-z_][\w.]*)\.(\w+)\s*(==|!=|>=|<=|>|<|not in|in)\s*(.+?)\s*$")
_OPS = {"==": np.equal, "!=": np.not_equal, ">=": np.greater_equal, "<=": np.less_equal,
        ">": np.greater, "<": np.less}


def find_agents(ctx, where, ids=None) -> np.ndarray:
    """``[m] int64`` sorted IDs of the entities meeting every condition in ``where``, optionally
    within ``ids``. A condition is a string (see module doc) or a predicate ``f(world, ids) -> [m] bool``
    over whole columns (candidates: ``ids``, else the agents with a :class:`Profile`)."""
    world = world_of(ctx)
    conds = [where] if isinstance(where, str) or callable(where) else list(where)
    out = None if ids is None else np.unique(np.asarray(ids, dtype=np.int64))
    for cond in conds:
        if callable(cond):  # a predicate over whole columns: cond(world, ids) -> [m] bool
            cand = world.ids_of(Profile) if out is None else out
            mask = np.asarray(cond(world, cand))
            if mask.dtype != bool or mask.shape != cand.shape:
                raise InterventionError(f"where predicate must return a bool mask of shape {cand.shape}, "
                                        f"got {mask.dtype} {mask.shape}")
            out = cand[mask]
            continue
        m = _COND.match(cond) if isinstance(cond, str) else None
        if m is None:
            raise InterventionError(f"where {cond!r}: expected '<Component>.<column> <op> <literal>' "
                                    "with op in == != < <= > >= in")
        cname, col, op, lit = m.groups()
        comp = _component_named(world, cname)
        if comp is None:
            raise InterventionError(f"where {cond!r}: no component named {cname!r} in this world")
        if col not in comp.columns() or comp.column(col).kind not in ("scalar", "string"):
            raise InterventionError(f"where {cond!r}: {comp.__qualname__} has no scalar or string column {col!r}")
        try:
            value = ast.literal_eval(lit)
        except (ValueError, SyntaxError):
            raise InterventionError(f"where {cond!r}: {lit!r} is not a literal (quote strings)") from None
        holders = world.ids_of(comp)
        data = world.get(comp, col)
        try:
            if op in ("in", "not in"):
                if not isinstance(value, (list, tuple, set)):
                    raise InterventionError(f"where {cond!r}: 'in' needs a list")
                vals = np.asarray(list(value), dtype=STR if data.dtype == STR else None)
                mask = np.isin(data, vals)
                mask = ~mask if op == "not in" else mask
            else:
                mask = _OPS[op](data, np.asarray(value, dtype=STR) if data.dtype == STR else value)
        except (TypeError, np.exceptions.DTypePromotionError) as exc:  # e.g. a number against a string column
            raise InterventionError(f"where {cond!r}: cannot compare {comp.__qualname__}.{col} "
                                    f"({data.dtype}) with {value!r}: {exc}") from None
        sel = holders[np.asarray(mask, dtype=bool)]
        out = sel if out is None else np.intersect1d(out, sel, assume_unique=True)
    return np.zeros(0, np.int64) if out is None else out


def intervene(ctx, target: str, value, where=None, ids=None) -> int:
    """Set ``target`` to ``value`` now (between ticks, or from a system). Returns how many entities
    (or 1 for a resource / state key) changed. ``value`` is one value for all, or one per selected
    entity in ID order (``[m]``; ``[m, d]`` for vector columns). On a world split over MPI ranks
    every rank calls it with the same arguments; each changes the listed ``ids`` it holds (an ID held
    by no rank is then not reported)."""
    world = world_of(ctx)
    kind = resolve_target(world, target)
    if kind[0] == "state":
        if where is not None or ids is not None:
            raise InterventionError(f"target {target!r}: shared state takes no where/ids (use state.group/<g>/key)")
        set_state(world, kind[1], value)
        return 1
    if kind[0] == "resource":
        if where is not None or ids is not None:
            raise InterventionError(f"target {target!r}: a resource field takes no where/ids")
        res = world.resource(kind[1])
        old = getattr(res, kind[2])
        new = type(old)(value) if isinstance(old, (bool, int, float, str)) and not isinstance(value, type(old)) \
            and not (isinstance(old, bool) != isinstance(value, bool)) else value
        setattr(res, kind[2], new)
        post = getattr(res, "__post_init__", None)
        if post is not None:
            try:
                post()
            except ValueError as exc:
                setattr(res, kind[2], old)
                raise InterventionError(f"target {target!r}: {exc}") from None
        return 1
    _, comp, col = kind
    sel = world.ids_of(comp)
    if ids is not None:
        want = np.unique(np.asarray(ids, dtype=np.int64))
        missing = ~np.isin(want, sel)
        if missing.any() and not world.is_share:
            raise InterventionError(f"target {target!r}: entity {int(want[missing][0])} has no {comp.__qualname__}")
        if missing.any():  # this rank's share of the listed entities (and of per-entity values)
            arr = np.asarray(value) if not isinstance(value, (str, bytes)) else None
            if arr is not None and arr.ndim >= 1 and arr.shape[0] == want.shape[0] and want.shape[0] > 1:
                value = arr[~missing]
            want = want[~missing]
        sel = want
    if where is not None:
        sel = find_agents(world, where, sel)
    if sel.size:
        try:
            world.set(comp, sel, **{col: value})
        except (TypeError, ValueError) as exc:
            raise InterventionError(f"target {target!r}: {exc}") from None
    return int(sel.size)


# ---------------------------------------------------------------------------------------------- scheduling

@dataclass(frozen=True)
class Intervention:
    """One scheduled change: at ``tick``, set ``target`` to ``value`` where/for ids."""

    tick: int
    target: str
    value: Any
    where: Any = None
    ids: tuple | None = None


class InterventionSchedule(Resource):
    """Scheduled interventions as plain dicts (saved in snapshots) and the ticks already applied."""

    items: list = field(default_factory=list)


def parse_interventions(raw, where: str = "interventions") -> list[Intervention]:
    """Interventions from config tables (``[[interventions]]``: ``tick``, ``set``, ``value``,
    optional ``where`` and ``ids``). Errors raise ``ConfigError`` naming the field."""
    if raw is None:
        return []
    if not isinstance(raw, (list, tuple)):
        raise _config_error(f"{where}: expected a list of tables, got {type(raw).__name__}")
    out = []
    for i, item in enumerate(raw):
        at = f"{where}[{i}]"
        if isinstance(item, Intervention):
            out.append(item)
            continue
        if not isinstance(item, Mapping):
            raise _config_error(f"{at}: expected a table with tick, set, value")
        unknown = set(item) - {"tick", "set", "value", "where", "ids"}
        if unknown:
            raise _config_error(f"{at}.{sorted(unknown)[0]}: unknown field (use tick, set, value, where, ids)")
        for req in ("tick", "set", "value"):
            if req not in item:
                raise _config_error(f"{at}.{req}: missing")
        tick = item["tick"]
        if isinstance(tick, bool) or not isinstance(tick, int) or tick < 0:
            raise _config_error(f"{at}.tick: must be an int >= 0, got {tick!r}")
        target = item["set"]
        try:
            _split_target(target)
        except InterventionError as exc:
            raise _config_error(f"{at}.set: {exc}") from None
        w = item.get("where")
        if w is not None:
            conds = [w] if isinstance(w, str) else w
            if not isinstance(conds, (list, tuple)) or not all(isinstance(c, str) and _COND.match(c) for c in conds):
                raise _config_error(f"{at}.where: expected '<Component>.<column> <op> <literal>' or a list of them, "
                                    f"got {w!r}")
        ids = item.get("ids")
        if ids is not None and (not isinstance(ids, (list, tuple)) or
                                not all(isinstance(x, int) and not isinstance(x, bool) for x in ids)):
            raise _config_error(f"{at}.ids: expected a list of entity IDs, got {ids!r}")
        out.append(Intervention(tick, target, item["value"], w, None if ids is None else tuple(ids)))
    return out


def schedule_interventions(ctx, raw, where: str = "interventions") -> list[Intervention]:
    """Parse ``raw`` (see :func:`parse_interventions`), check each target against ``world`` (raising
    ``ConfigError`` naming ``interventions[i].set``), and add them to the world's schedule."""
    world = world_of(ctx)
    items = parse_interventions(raw, where)
    for i, it in enumerate(items):
        try:
            resolve_target(world, it.target)
        except InterventionError as exc:
            raise _config_error(f"{where}[{i}].set: {exc}") from None
        if it.tick < world.tick:
            raise _config_error(f"{where}[{i}].tick: tick {it.tick} has already run (the world is at {world.tick})")
    sched = world.get_resource(InterventionSchedule)
    if sched is None:
        sched = InterventionSchedule()
        world.insert_resource(sched)
    for it in items:
        sched.items.append({"tick": it.tick, "set": it.target, "value": _json_safe(it.value),
                            "where": it.where if it.where is None or isinstance(it.where, str) else list(it.where),
                            "ids": None if it.ids is None else list(it.ids)})
    return items


@system(phase="pre", resources=(InterventionSchedule,))
def apply_interventions(ctx):
    """Apply the scheduled interventions whose tick is this tick, in the order they were scheduled."""
    sched = ctx.world.get_resource(InterventionSchedule)
    for it in (sched.items if sched is not None else ()):
        if it["tick"] == ctx.tick:
            intervene(ctx, it["set"], it["value"], where=it["where"], ids=it["ids"])


def environment_systems() -> tuple:
    """``(apply_interventions, notify_watchers)``: add them with ``world.add_systems(*...)`` before the
    scenario's own systems (needs the :class:`InterventionSchedule` and :class:`SharedState` resources,
    which :func:`ensure_environment` inserts)."""
    return (apply_interventions, notify_watchers)


def ensure_environment(ctx) -> None:
    """Insert empty :class:`SharedState` and :class:`InterventionSchedule` resources if absent."""
    world = world_of(ctx)
    _state(world)
    if world.get_resource(InterventionSchedule) is None:
        world.insert_resource(InterventionSchedule())


# ---------------------------------------------------------------------------------------------- interviews

INTERVIEW = Decision(
    "interview",
    Template(
        "You are being interviewed. Answer as the person described, in the first person, in one or two "
        "sentences.\n"
        "About you: {profile}\n"
        "What you remember:\n{memories}\n"
        "Interviewer: {question}\n"
        "You:",
        untrusted=("memories", "question")),
    TextReply(),
    fallback={"text": ""},
    sampling=Sampling(temperature=0.0, max_tokens=80),
)


@dataclass
class InterviewResult:
    """Per interviewed agent: ``answers [n] StringDType`` ("" when no reply could be had), ``outcome [n] int8``."""

    ids: np.ndarray
    answers: np.ndarray
    outcome: np.ndarray


def interview(ctx, ids, question, attributes: Sequence[str] = PUBLIC_ATTRIBUTES + PRIVATE_ATTRIBUTES + ("background",),
              k: int = 5, memory: type[LongTermMemoryBase] = LongTermMemory, store: bool = False) -> InterviewResult:
    """Ask agents ``ids`` ``question`` (one str, or ``[n]``) in one batched LLM call. Answers come from
    the chosen profile ``attributes`` and the ``k`` memories most relevant to the question (retrieved
    without touching them). State is unchanged unless ``store=True``, which memorizes the exchange."""
    world = world_of(ctx)
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    n = ids.shape[0]
    q = np.broadcast_to(np.asarray(question, dtype=STR), (n,)).copy() if np.ndim(question) == 0 else \
        np.asarray(question, dtype=STR).reshape(-1)
    if q.shape != (n,):
        raise ValueError(f"interview: {q.shape[0]} questions for {n} agents")
    profile = np.full(n, "", dtype=STR)
    has = world.has(ids, Profile) if n else np.zeros(0, bool)
    if has.any():
        profile[has] = render_profile(world, ids[has], attributes)
    memories = np.full(n, "(nothing yet)", dtype=STR)
    has_mem = world.has(ids, memory) if n else np.zeros(0, bool)
    if has_mem.any() and world.get_resource(MemoryEmbedder) is not None:
        rec = retrieve(world, ids[has_mem], q[has_mem], k=k, memory=memory, touch=False)
        memories[has_mem] = rec.joined()
    res = decide(world, INTERVIEW, ids, {"profile": profile, "memories": memories, "question": q})
    answers = np.asarray(res.values["text"], dtype=STR)
    if store and n:
        ok = np.strings.str_len(answers) > 0
        text = np.strings.add(np.strings.add(np.strings.add("I was asked: ", q), " I answered: "), answers)
        memorize(world, ids[ok], text[ok])
    return InterviewResult(ids, answers, res.outcome)


def environment_policy(batch: RequestBatch, seed: int) -> np.ndarray:
    """Mock-engine policy for interviews (a first-person line naming the agent and its best memory),
    falling back to :func:`~socius.systems.memory.memory_policy` for the memory prompts."""
    out = np.asarray(memory_policy(batch, seed), dtype=STR)
    prompts = np.repeat(batch.prompts, batch.n)
    is_iv = np.strings.find(prompts, "You are being interviewed.") >= 0
    if not is_iv.any():
        return out
    from .memory import _between
    name = _between(prompts, "About you: name: ", ";")
    best = np.strings.replace(_between(prompts, "What you remember:\n<<<quote>>>- ", "\n"), "<<<end quote>>>", "")
    line = np.strings.add(np.strings.add("I am ", np.where(np.strings.str_len(name) > 0, name, "someone")), ".")
    line = np.where(np.strings.str_len(best) > 0,
                    np.strings.add(np.strings.add(line, " What comes to mind: "), best), line)
    return np.where(is_iv, line, out).astype(STR)


# ---------------------------------------------------------------------------------------------- search

def search_agents(ctx, text, k: int = 10, attributes: Sequence[str] = ("occupation", "education", "background"),
                  embedder=None, ids=None) -> tuple[np.ndarray, np.ndarray]:
    """Agents whose rendered profile ``attributes`` are most similar to ``text``.

    ``text`` is one str (returns ``ids [m]``, ``scores [m]``, ``m = min(k, agents)``) or a list
    (returns ``[q, k]`` arrays padded with -1 / -inf). ``embedder`` defaults to the world's
    :class:`MemoryEmbedder`, else a 384-dim :class:`HashingEmbedder`. ``ids`` limits the candidates.
    """
    world = world_of(ctx)
    if embedder is None:
        res = world.get_resource(MemoryEmbedder)
        embedder = res.embedder if res is not None else HashingEmbedder(384)
    cand = world.ids_of(Profile) if ids is None else np.unique(np.asarray(ids, dtype=np.int64))
    single = isinstance(text, str)
    queries = np.asarray([text] if single else list(text), dtype=STR)
    docs = render_profile(world, cand, attributes)
    index = VectorIndex.build(cand, embedder.embed(docs))
    found, scores = index.search(embedder.embed(queries), k)
    if single:
        keep = found[0] >= 0
        return found[0][keep], scores[0][keep]
    return found, scores


__all__ = ["Group", "INTERVIEW", "Intervention", "InterventionError", "InterventionSchedule", "InterviewResult",
           "SharedState", "StateChanged", "Watching", "apply_interventions", "ensure_environment",
           "environment_policy", "environment_systems", "find_agents", "get_state", "group_key", "group_values",
           "intervene", "interview", "notify_watchers", "parse_interventions", "resolve_target",
           "schedule_interventions", "search_agents", "set_state", "watch"]
