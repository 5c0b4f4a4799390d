"""The application: the ``socius`` command and what it drives, one module per concern.

``cli`` (the parser and the dispatch), ``commands`` (``list`` and ``run``),
``args`` (what the commands share: flag types, the scenario the flags name,
ranks, failing with exit code 2), ``run`` (build, run, resume, snapshots, the
run directory), ``engines`` (engine choice, the ``LLM`` resource, device
pinning), ``registry`` (``Scenario``, ``Command``; built-ins and the
``socius.scenarios`` entry-point group), ``config`` (scenario configs from
files and flags), ``report`` (what scenario reports share), ``profile``
(``socius profile``). ``python -m socius.app`` is the ``socius`` command.

Nothing here imports a scenario module by name: scenarios are found by
reference string, when asked for.
"""
