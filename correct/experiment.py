"""The correction experiment's pure parts: the agent split, scoring, the table over seeds, the plot.

GenSim Fig. 4, not circular: labels come from one set of agents (``train``)
and one judge; the score is measured on the *other* agents (``held out``,
an agent-ID split keyed by the seed) with a judge that did not make the
training labels. The runs, forks and training are driven by
:func:`socius.app.experiment.run_experiment`; this module only computes.

Result rows (one per seed and point): ``part`` (``single``: score vs number
of labels per method; ``rounds``: correction ``on`` vs ``off`` per round),
``method``, ``labels``, ``round``, ``arm``, ``seed``, ``score`` (mean 1–5 of
the held-out agents' replies), ``n`` (replies scored). :func:`summarise`
gives mean, std and count over seeds.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from socius.ecs.rng import EntityRng

__all__ = ["MOCK_NOTE", "RESULT_SCHEMA", "held_out_split", "plot_results", "result_rows", "score_agents",
           "summarise"]

RESULT_SCHEMA = pa.schema([("part", pa.string()), ("method", pa.string()), ("labels", pa.int64()),
                           ("round", pa.int64()), ("arm", pa.string()), ("seed", pa.int64()),
                           ("score", pa.float64()), ("n", pa.int64())])

MOCK_NOTE = ("engine mock: the adapters are placeholders and the mock policy answers the same with or without "
             "them, so every arm scores the same by construction. This checks the machinery (split, labels, "
             "training jobs, switches, forks, scoring, table, plot), not learning; run --engine local for that.")


def held_out_split(ids: np.ndarray, seed: int, share: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """``(train [a] int64, held_out [b] int64)``: sorted entity IDs, each agent held out with probability
    ``share``, keyed by (seed, entity) so the split does not depend on the order of ``ids``."""
    ids = np.unique(np.asarray(ids, np.int64))
    u = EntityRng(seed, "correct:experiment:split", 0).random(ids, 1)[:, 0]
    held = u < share
    if ids.size >= 2 and (held.all() or not held.any()):  # both sides non-empty
        held[np.argmin(u)], held[np.argmax(u)] = True, False
    return ids[~held], ids[held]


def score_agents(labels: pa.Table, agents: np.ndarray, ticks: tuple[int, int] | None = None) -> tuple[float, int]:
    """``(mean score, n)`` of the label rows of ``agents`` (and ``lo <= tick < hi``); ``(nan, 0)`` if none."""
    keep = pc.is_in(labels.column("entity"), pa.array(np.asarray(agents, np.int64)))
    if ticks is not None:
        t = labels.column("tick")
        keep = pc.and_(keep, pc.and_(pc.greater_equal(t, ticks[0]), pc.less(t, ticks[1])))
    s = labels.filter(keep).column("score").drop_null().to_numpy(zero_copy_only=False).astype(np.float64)
    return (float(s.mean()), int(s.size)) if s.size else (float("nan"), 0)


def result_rows(rows: list[dict]) -> pa.Table:
    """The per-seed result table (:data:`RESULT_SCHEMA`) from dicts."""
    return pa.Table.from_pylist([{k: r.get(k) for k in RESULT_SCHEMA.names} for r in rows], schema=RESULT_SCHEMA)


def summarise(results: pa.Table) -> pa.Table:
    """Mean, std (ddof 0) and count of ``score`` over seeds per point: (part, method, labels, round, arm)
    in the single round; (part, method, round, arm) over rounds, where the labels trained on so far differ
    from seed to seed (``labels``: their mean over seeds, rounded)."""
    keys = ["part", "method", "labels", "round", "arm"]
    ok = results.filter(pc.is_valid(results.column("score")))
    single = pc.equal(ok.column("part"), "single")
    point = pc.if_else(single, ok.column("labels"), pa.scalar(-1, pa.int64()))   # rounds: not a key
    ok = ok.append_column("point", point)
    g = ok.group_by(["part", "method", "point", "round", "arm"]).aggregate(
        [("score", "mean"), ("score", "stddev"), ("score", "count"), ("n", "sum"), ("labels", "mean")])
    labels = pc.cast(pc.round(g.column("labels_mean")), pa.int64())
    g = pa.table({"part": g.column("part"), "method": g.column("method"), "labels": labels,
                  "round": g.column("round"), "arm": g.column("arm"), "score_mean": g.column("score_mean"),
                  "score_std": g.column("score_stddev"), "seeds": g.column("score_count"),
                  "replies": g.column("n_sum")})
    return g.sort_by([(k, "ascending") for k in keys])


def plot_results(summary: pa.Table, path, plt, title: str = "") -> None:
    """Two panels, as GenSim Fig. 4: (a) score vs labels per method, (b) score per round, on vs off;
    error bars are the std over seeds. ``plt``: matplotlib.pyplot (``socius.app.report.pyplot()``)."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    d = summary.to_pydict()
    rows = [dict(zip(d, v)) for v in zip(*d.values())]
    for method in sorted({r["method"] for r in rows if r["part"] == "single"}):
        pts = sorted((r["labels"], r["score_mean"], r["score_std"] or 0.0) for r in rows
                     if r["part"] == "single" and r["method"] == method)
        if pts:
            x, y, e = map(np.array, zip(*pts))
            a.errorbar(x, y, yerr=e, marker="o", capsize=3, label=method)
    a.set_xticks(sorted({r["labels"] for r in rows if r["part"] == "single"}))
    a.set(xlabel="labels (train agents)", ylabel="score on held-out agents (1-5)", title="(a) single round")
    a.legend()
    for arm in ("off", "on"):
        pts = sorted((r["round"], r["score_mean"], r["score_std"] or 0.0) for r in rows
                     if r["part"] == "rounds" and r["arm"] == arm)
        if pts:
            x, y, e = map(np.array, zip(*pts))
            b.errorbar(x, y, yerr=e, marker="o", capsize=3, label=f"correction {arm}")
    b.set_xticks(sorted({r["round"] for r in rows if r["part"] == "rounds"}))
    b.set(xlabel="round", ylabel="score on held-out agents (1-5)", title="(b) multi-round")
    b.legend()
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
