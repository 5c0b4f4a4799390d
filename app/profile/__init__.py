"""``socius profile``: where a scenario spends its tick.

::

    socius profile SCENARIO [--agents N] [--ticks T] [--seed S] [--engine mock|local|vllm|openai]
                            [--engine-config FILE] [--config FILE] [--json] [--trace FILE] [--out DIR]

SCENARIO is a built-in name, ``pkg.module:NAME`` or ``path/to/file.py[:NAME]``
(nothing has to be installed). The world is built (timed on its own, engine
start-up and LLM calls made during the build included), then T ticks run
under :class:`socius.ecs.profiler.Profiler`. The report:

* **ticks per second**: median and spread (p10–p90, min–max) over the ticks;
  each tick is timed on its own, so a slow first tick (JIT, caches) shows in
  the spread, not in the median;
* **per system**, in schedule order: wall time per tick (median), share of
  the tick (median over ticks of system time / tick time), agents processed
  (entities holding every component the system declares in ``reads`` /
  ``writes``), µs per agent, and peak memory growth (largest rise of the
  process RSS while the system ran, over the ticks probed — all of them once
  ticks take a few ms, see :mod:`socius.ecs.profiler`); a ``(kernel)`` row holds
  the rest of the tick: phase sync points, message flip, profiler hooks;
* **LLM decision systems** (from the :class:`~socius.llm.pipeline.DecisionStats`
  rows each system's ``decide`` calls added during the profiled ticks):
  engine time against our own time, split into render / dedup / parse / log
  and *apply & other* (the system's wall time minus all of those: querying,
  preparing fields, the extraction prompts and their parse, writing results),
  and the overlap: engine time hidden behind our own work when the decision
  streams into its engine (``overlap = engine - wait``; ``ours = wall - wait``);
  requests, completions, prompt and output tokens, dedup ratio (agents per
  request) and parse outcomes (ok / extracted / fallback / failed);
* **components**: bytes per agent of every component table (string columns
  estimated from their lengths), after the build and after the run.

Output: rich tables on the terminal, or with ``--json`` the same report as
one JSON object on stdout (status lines go to stderr). A copy is always
saved: ``profile.json`` and ``profile.txt`` in the run directory, ``--out DIR``
or by default ``runs/profile-<scenario>-<YYYYmmdd-HHMMSS>``; an LLM scenario's
response log goes there too (``responses/``), as in a real run. ``--trace
FILE`` writes a Chrome trace / Perfetto JSON: one track, the build, then each
tick with its systems nested in it (decision stage figures in the events'
``args``), plus an RSS counter — open it in https://ui.perfetto.dev or
``chrome://tracing``.

MPI: ``mpiexec -n N socius profile SCENARIO ...`` profiles the world split
over N ranks. Every rank profiles its share; rank 0 prints and saves the
report: the systems table is the slowest rank's (the rank with the most
busy time per tick — tick time less time spent waiting in collectives), and
``ranks`` lists every rank with its entities, tick time, busy time and, per
tick, the wall time inside halo exchanges, message routing and other
collectives (reductions), plus bytes routed.

Modules: ``measure`` (build, profiled ticks, the decision probe), ``report``
(the report as plain data), ``ranks`` (every MPI rank's figures), ``tables``
(rich tables, ``profile.txt``), ``trace`` (Chrome trace), ``command`` (the
``socius profile`` command).
"""
from .measure import DecisionProbe, ProfileRun, profile_scenario
from .report import FORMAT, build_report, to_json
from .tables import render, render_text
from .trace import chrome_trace

__all__ = ["DecisionProbe", "ProfileRun", "profile_scenario", "FORMAT", "build_report", "to_json", "render",
           "render_text", "chrome_trace"]
