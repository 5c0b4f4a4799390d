"""What a discussion run writes into its run directory.

:func:`metrics` gives ``metrics.parquet``'s columns: the per-round measures
of :class:`~.components.DiscussionState` and, where this process ran the
round, its cost (NaN for rounds run before a ``--resume``). :func:`report`
writes ``utterances.parquet`` (tick, turn, room, speaker, text),
``stances.parquet`` (per agent: room, first and final stance, utterances,
mentions received) — both gathered from every rank, written by rank 0 — and
``discussion_rounds.png`` (:func:`plot_rounds`, needs matplotlib).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from socius.app.report import gather_table, history_columns, is_lead, pyplot, write_table
from socius.ecs import World
from socius.text.strings import arrow_strings

from . import measures, prompts
from .components import LEVELS, DiscussionRuntime, DiscussionState, Seat, Stance, Talk

UTTERANCES = pa.schema([("tick", pa.int64()), ("turn", pa.int32()), ("room", pa.int64()), ("speaker", pa.int64()),
                        ("text", pa.large_string())])


def metrics(world: World) -> dict:
    """Per round: the measures and (where this process ran the round) its cost; NaN for resumed rounds."""
    h = world.resource(DiscussionState).history
    cols = history_columns(h)
    if not cols:
        return {}
    cost = {c["round"]: c for c in world.resource(DiscussionRuntime).cost}
    keys = next(iter(cost.values())).keys() if cost else ()
    for k in keys:
        if k != "round":
            cols[k] = np.array([cost[r["round"]][k] if r["round"] in cost else np.nan for r in h], dtype=np.float64)
    return cols


def report(world: World, out: Path) -> None:
    """``utterances.parquet``, ``stances.parquet`` and ``discussion_rounds.png`` (needs matplotlib)."""
    rt = world.resource(DiscussionRuntime)
    log = rt.utterances
    cols = {k: np.concatenate([u[k] for u in log]) for k in log[0]} if log else \
        {f.name: np.zeros(0, np.int64 if f.name != "turn" else np.int32) for f in UTTERANCES if f.name != "text"}
    cols["text"] = arrow_strings(cols["text"]) if log else pa.array([], pa.large_string())
    # every rank's rooms (a room lives on one rank), written by rank 0
    table = pa.table({f.name: pa.array(cols[f.name]).cast(f.type) for f in UTTERANCES}, schema=UTTERANCES)
    write_table(gather_table(world, table, ["tick", "room", "turn", "speaker"]), out / "utterances.parquet")
    v = world.query(Stance, Talk, Seat)
    write_table(gather_table(world, pa.table({"id": v.ids.copy(), "room": v[Seat].index, "initial": v[Stance].initial,
                                              "final": v[Stance].value, "utterances": v[Talk].utterances,
                                              "mentions_received": v[Talk].mentions_received}), ["id"]),
                out / "stances.parquet")
    if world.resource(DiscussionState).history and is_lead(world):
        plot_rounds(world, out / "discussion_rounds.png")


def plot_rounds(world: World, path: Path) -> None:
    """Stance shares per round; polarisation, talk Gini and shift; requests and tokens per round."""
    plt = pyplot()
    if plt is None:
        return
    cols = metrics(world)
    rounds = cols["round"]
    fig, (ax, bx, cx) = plt.subplots(1, 3, figsize=(15, 4))
    shares = np.stack([cols[f"stance_{k}"] for k in LEVELS]) / np.maximum(cols["agents"], 1)
    bottom = np.zeros(rounds.shape[0])
    for k in LEVELS:
        ax.bar(rounds, shares[k - 1], bottom=bottom, label=prompts.LEVELS[k - 1],
               color=plt.get_cmap("RdYlGn")((k - 1) / 4))
        bottom += shares[k - 1]
    ax.set_xlabel("round")
    ax.set_ylabel("share of agents")
    ax.set_title(f"Stance after each round ({world.resource(DiscussionState).mode} mode)")
    ax.legend(fontsize=7)
    bx.plot(rounds, cols["stance_var"], "o-", label="stance variance")
    bx.plot(rounds, cols["bimodality"], "s-", label="bimodality coefficient")
    bx.axhline(measures.BIMODAL_THRESHOLD, color="grey", ls=":", lw=1)
    bx.plot(rounds, cols["talk_gini"], "^-", label="talk Gini (cumulative)")
    bx.plot(rounds, cols["shift_abs"], "d--", label="mean |stance shift|")
    bx.set_xlabel("round")
    bx.set_title("Polarisation, talk share, shift")
    bx.legend(fontsize=7)
    if "requests" in cols:
        cx.bar(rounds - 0.2, cols["talk_requests"], width=0.4, label="discussion requests")
        cx.bar(rounds + 0.2, cols["requests"] - cols["talk_requests"], width=0.4, label="poll requests")
        cx2 = cx.twinx()
        cx2.plot(rounds, cols["prompt_tokens"] + cols["output_tokens"], "k.-", label="tokens")
        cx2.set_ylabel("tokens (prompt + output)")
        cx.set_xlabel("round")
        cx.set_ylabel("LLM requests")
        cx.set_title("Cost per round")
        cx.legend(fontsize=7, loc="upper left")
    for a in (ax, bx, cx):
        a.set_xticks(rounds)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
