"""The profile report as rich tables: summary, ranks, systems, LLM decisions, component memory.

:func:`render` prints to a console (a terminal's width); :func:`render_text`
gives the same tables as plain text, ``TEXT_WIDTH`` columns wide, for
``profile.txt``.
"""
from __future__ import annotations

import io
import math
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["TEXT_WIDTH", "render", "render_text"]

TEXT_WIDTH = 120   # columns of profile.txt and of tables printed to a pipe or file


def _ms(s) -> str:
    if s is None or (isinstance(s, float) and not math.isfinite(s)):
        return "—"
    ms = s * 1e3
    return f"{ms:,.1f}" if ms >= 100 else (f"{ms:.2f}" if ms >= 1 else f"{ms:.3f}")


def _pct(x) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def _bytes(b) -> str:
    if b is None:
        return "—"
    b = float(b)
    for unit, k in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(b) >= k:
            return f"{b / k:.1f} {unit}"
    return f"{b:.0f} B"


def _int(n) -> str:
    return "—" if n is None else f"{n:,}"


def render(report: dict[str, Any], console: Console) -> None:
    """The report as rich tables (summary, systems, LLM decisions, components)."""
    r = report
    head = Table(title=f"socius profile {r['scenario']}: {r['entities']:,} entities, {r['ticks']} ticks "
                       f"({r['unit']}), seed {r['seed']}" + (" — interrupted" if r.get("interrupted") else ""),
                 show_header=False, title_justify="left")
    head.add_column("what")
    head.add_column("value")
    tps, tick = r["ticks_per_s"], r["tick_s"]
    fmt_tps = lambda x: "—" if x is None else f"{x:,.2f}"  # noqa: E731
    head.add_row("build", f"{r['build_s']:.3f} s")
    head.add_row("ticks/s", f"median {fmt_tps(tps['median'])}  "
                            f"(p10–p90 {fmt_tps(tps['p10'])}–{fmt_tps(tps['p90'])}, "
                            f"min–max {fmt_tps(tps['min'])}–{fmt_tps(tps['max'])})")
    head.add_row("tick", f"median {_ms(tick['median'])} ms  (p10–p90 {_ms(tick['p10'])}–{_ms(tick['p90'])} ms), "
                         f"{r['run_s']:.3f} s in all")
    if r.get("engine"):
        head.add_row("engine", r["engine"]["kind"])
    mem = r["memory"]
    if mem.get("method"):
        head.add_row("memory", f"RSS after build {_bytes(mem['rss_after_build_bytes'])}, "
                               f"peak {_bytes(mem['peak_rss_bytes'])}")
    head.add_row("ranks", "1 (this process)" if not r.get("mpi") else
                 f"{r['mpi']['ranks']} (MPI); systems below are rank {r['slowest_rank']}'s, the slowest")
    console.print(head)
    if r.get("mpi"):
        rk = Table(title="ranks (per tick: median tick; halo / routing / other collectives are wall time "
                         "inside them, waiting included)", title_justify="left")
        for c in ("rank", "host", "entities", "tick ms", "busy ms", "halo ms", "route ms", "reduce ms",
                  "routed"):
            rk.add_column(c, justify="right" if c not in ("host",) else "left")
        for x in r["ranks"]:
            cs = x["comm_s_per_tick"]
            rk.add_row(str(x["rank"]) + (" (slowest)" if x["rank"] == r["slowest_rank"] else ""), x["host"],
                       _int(x["entities"]), _ms(x["tick_s_median"]), _ms(x["busy_s_per_tick"]), _ms(cs["halo"]),
                       _ms(cs["route"]), _ms(cs["reduce"]), _bytes(x["route_bytes_per_tick"]))
        console.print(rk)

    t = Table(title="systems in schedule order (per tick: median over ticks)", title_justify="left")
    for name, just in (("#", "right"), ("system", "left"), ("phase", "left"), ("ms/tick", "right"),
                       ("p10–p90 ms", "right"), ("share", "right"), ("agents", "right"), ("µs/agent", "right"),
                       ("peak mem +", "right")):
        t.add_column(name, justify=just, overflow="fold")
    for k, sr in enumerate(r["systems"], 1):
        sec = sr["seconds"]
        upa = sr["us_per_agent"]
        t.add_row(str(k), sr["name"], sr["phase"], _ms(sr["median_s"]), f"{_ms(sec['p10'])}–{_ms(sec['p90'])}",
                  _pct(sr["share"]), _int(sr["agents"]), "—" if upa is None else f"{upa:.3g}",
                  _bytes(sr["peak_mem_growth_bytes"]))
    t.add_row("", "(kernel: sync, hooks)", "", _ms(r["kernel"]["median_s"]), "", _pct(r["kernel"]["share"]),
              "", "", "")
    t.add_row("", "[bold]tick[/]", "", _ms(tick["median"]), f"{_ms(tick['p10'])}–{_ms(tick['p90'])}", "100%",
              _int(r["entities"]), "—" if not r["entities"] else f"{tick['median'] * 1e6 / r['entities']:.3g}",
              _bytes(mem.get("tick_peak_growth_bytes")))
    console.print(t)
    probed = mem.get("ticks_probed")
    console.print("agents: entities holding every component the system declares (reads/writes)\n"
                  "peak mem +: largest RSS rise while it ran"
                  + (f", over the {probed} of {r['ticks']} ticks probed (a time budget)" if probed else ""),
                  style="dim")

    llm = [sr for sr in r["systems"] if sr.get("llm")]
    if llm:
        t = Table(title="LLM decisions: time per tick (median ms)", title_justify="left")
        for name in ("system · decision", "wall", "engine", "overlap", "ours", "render", "dedup", "parse", "log",
                     "apply & other", "engine share"):
            t.add_column(name, justify="left" if name.startswith("system") else "right", overflow="fold")
        for sr in llm:
            L = sr["llm"]
            m = L["median_s"]
            t.add_row(f"{sr['name']} · {', '.join(L['decisions'])}", _ms(m["wall"]), _ms(m["engine"]),
                      _ms(m.get("overlap")), _ms(m["ours"]), _ms(m["render"]), _ms(m["dedup"]), _ms(m["parse"]),
                      _ms(m["log"]), _ms(m["apply_other"]), _pct(L["engine_share"]))
        console.print(t)
        console.print("engine: time with an engine call out; overlap: engine time hidden behind our own work "
                      "(streamed calls); ours = wall - engine + overlap", style="dim")
        t = Table(title=f"LLM decisions: requests and tokens (totals over {r['ticks']} ticks)", title_justify="left")
        for name in ("system · decision", "agents", "requests", "completions", "prompt tokens", "output tokens",
                     "agents/request"):
            t.add_column(name, justify="left" if name.startswith("system") else "right", overflow="fold")
        o = Table(title="LLM decisions: parse outcomes (agents, all ticks)", title_justify="left")
        for name in ("system · decision", "ok", "extracted", "fallback", "failed"):
            o.add_column(name, justify="left" if name.startswith("system") else "right", overflow="fold")
        for sr in llm:
            for dname, d in sr["llm"]["per_decision"].items():
                ratio = d["agents"] / d["requests"] if d["requests"] else None
                label = f"{sr['name']} · {dname}"
                t.add_row(label, _int(d["agents"]), _int(d["requests"]), _int(d["completions"]),
                          _int(d["prompt_tokens"]), _int(d["output_tokens"]),
                          "—" if ratio is None else f"{ratio:,.1f}")
                n = d["agents"] or 1
                o.add_row(label, *(f"{d[k]:,} ({100 * d[k] / n:.1f}%)"
                                   for k in ("ok", "extracted", "fallback", "failed")))
        console.print(t)
        console.print(o)
    if r.get("build_decisions"):
        n = sum(d.get("agents") or 0 for d in r["build_decisions"])
        console.print(f"LLM calls during the build (in the build time): {len(r['build_decisions'])} decisions, "
                      f"{n:,} agents", style="dim")

    t = Table(title="component memory", title_justify="left")
    for name in ("component", "entities", "bytes", "bytes/agent", "after build"):
        t.add_column(name, justify="left" if name == "component" else "right", overflow="fold")
    total = 0
    for c in r["components"]:
        total += c["bytes"]
        bpa = c["bytes_per_agent"]
        t.add_row(c["name"], _int(c["entities"]), _bytes(c["bytes"]), "—" if bpa is None else f"{bpa:,.1f}",
                  _bytes(c["bytes_after_build"]))
    t.add_row("[bold]all[/]", _int(r["entities"]), _bytes(total),
              "—" if not r["entities"] else f"{total / r['entities']:,.1f}",
              _bytes(sum(c["bytes_after_build"] for c in r["components"])))
    console.print(t)
    console.print("bytes: the table's columns and its entity IDs (8 bytes per row); strings estimated",
                  style="dim")


def render_text(report: dict[str, Any], width: int = TEXT_WIDTH) -> str:
    """The tables as plain text (what ``profile.txt`` holds)."""
    buf = io.StringIO()
    render(report, Console(file=buf, width=width, color_system=None, force_terminal=False, highlight=False))
    return buf.getvalue()

