"""What a jobs run writes: the per-tick metrics columns, the hires and openings tables, the plot.

:func:`metrics` turns :attr:`JobMarket.history` into ``metrics.parquet``
columns. :func:`report` writes ``hires.parquet`` (one row per hire),
``openings.parquet`` (one row per opening) — each gathered from every rank
and written by rank 0 — and ``jobs_ticks.png`` (employment and vacancies,
the pipeline per tick, the salary gaps).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from socius.app.report import gather_table, history_columns, is_lead, pyplot, write_table
from socius.ecs import World

from .components import JobMarket, Opening, Search, Seeker, Vacancy


def metrics(world: World) -> dict:
    """``{column: [ticks] array}`` of the market's measures."""
    return history_columns(world.resource(JobMarket).history)


def report(world: World, out: Path) -> None:
    """``hires.parquet`` (one row per hire), ``openings.parquet`` and ``jobs_ticks.png``."""
    s = world.query(Seeker, Search)
    hired = s[Search].status == 1
    write_table(gather_table(world, pa.table({"seeker": s.ids[hired], "opening": s[Search].job[hired],
                             "tick": s[Search].hired_tick[hired], "salary": s[Search].salary[hired],
                             "expected": s[Seeker].expected[hired],
                             "field": pa.array(s[Seeker].field[hired].astype(object), pa.string())}),
                             ["seeker"]), out / "hires.parquet")  # every rank's hires, written by rank 0
    o = world.query(Opening, Vacancy)
    write_table(gather_table(world, pa.table({"opening": o.ids, "employer": o[Opening].employer,
                             "title": pa.array(o[Opening].title.astype(object), pa.string()),
                             "low": o[Opening].low, "high": o[Opening].high, "status": o[Vacancy].status,
                             "applicants": o[Vacancy].applicants, "invited": o[Vacancy].invited,
                             "offers": o[Vacancy].offers, "declined": o[Vacancy].declined,
                             "hired": o[Vacancy].hired, "filled_tick": o[Vacancy].filled_tick}),
                             ["opening"]), out / "openings.parquet")
    cols = metrics(world)
    plt = pyplot() if cols and is_lead(world) else None
    if plt is None:
        return
    t = cols["tick"]
    fig, (ax, bx, cx) = plt.subplots(1, 3, figsize=(15, 4))
    ax.plot(t, cols["employment_rate"], "o-", label="employment rate")
    ax.plot(t, cols["filled_openings"] / np.maximum(cols["openings"], 1), "s-", label="openings filled")
    ax.plot(t, cols["offer_acceptance_total"], "^--", label="offer acceptance (so far)")
    ax.set_ylim(0, 1)
    ax.set_xlabel("tick")
    ax.set_title("Employment and vacancies")
    ax.legend(fontsize=8)
    for k in ("applications", "invites", "answers", "offers", "hires"):
        bx.plot(t, cols[k], ".-", label=k)
    bx.set_xlabel("tick")
    bx.set_title(f"Pipeline per tick (applications per opening: {np.nanmean(cols['applications_per_opening']):.1f})")
    bx.legend(fontsize=8)
    cx.plot(t, cols["offer_gap"], "o-", label="offered − expected (offers this tick)")
    cx.plot(t, cols["accepted_gap_mean"], "s-", label="salary − expected (all hires)")
    cx.axhline(0, color="grey", lw=1)
    cx.set_xlabel("tick")
    cx.set_ylabel("k a year")
    cx.set_title("Salary gaps")
    cx.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "jobs_ticks.png", dpi=110)
    plt.close(fig)
