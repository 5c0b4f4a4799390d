"""``socius fork RUN_DIR --at TICK --out DIR``: a new run branching from a snapshot tick.

::

    socius fork runs/guess --at 5 --out runs/guess-b [--config overrides.toml] [--steps N]

The branch starts from RUN_DIR's snapshot at tick TICK: the new run directory
gets a copy of that snapshot and of the response log of ticks ``< TICK`` (so
``socius run … --replay DIR`` replays the branch from tick 0), and its
``run.json`` names its ``parent`` (run directory, tick, snapshot state hash).
Then it runs on to ``--steps`` ticks in total (default: as many as the parent
ran) with the parent's scenario, config, seed and engine. Both branches share
the past exactly: a branch forked with no changes reaches the parent's final
``state_hash``.

Which ticks can be forked: the snapshots a run keeps — ``snapshot.socius`` (or
``snapshot.ranks/``), the last one, and ``snapshots/tick-XXXXXXXX.socius``
kept by :func:`socius.app.run.keep_snapshot` every ``--snapshot-every`` ticks. A tick with no
snapshot is a usage error (exit 2) that lists the ticks there are.

Overrides (``--config FILE``, TOML or JSON): scenario config fields replace the
parent's before the world is built, then the snapshot is restored over it — so
they reach what ``build`` makes and the snapshot does not hold (prompts,
decisions, systems, engine-side settings), not state the snapshot saved.
``[[adapter_switches]]`` tables (``tick >= TICK``, ``adapter``, ``path``,
``where``/``ids``/``model``: :mod:`socius.correct.switch`) switch agents of
this branch only — the correction experiment's treated arm.
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from socius.errors import ConfigError

from .registry import Command

__all__ = ["COMMANDS", "fork_run", "tick_snapshots"]

#: where a run keeps a snapshot per ``--snapshot-every`` tick (besides the newest, ``snapshot.socius``)
_TICK_FILE = re.compile(r"^tick-(\d{8})-")


def tick_snapshots(run_dir: Path) -> dict[int, Path]:
    """``{tick: snapshot path}`` of every snapshot in ``run_dir`` (kept ones and the newest)."""
    from .run import SNAPSHOTS
    from socius.ecs import SnapshotError

    from .run import snapshot_tick
    run_dir = Path(run_dir)
    found = sorted((run_dir / SNAPSHOTS).glob("tick-*")) if (run_dir / SNAPSHOTS).is_dir() else []
    found += [p for p in (run_dir / "snapshot.socius", run_dir / "snapshot.ranks") if p.exists()]
    out: dict[int, Path] = {}
    for p in found:
        if p.name.startswith("."):
            continue
        try:
            out.setdefault(snapshot_tick(p), p)
        except SnapshotError:
            continue  # a damaged snapshot is no branch point
    return dict(sorted(out.items()))


def _copy_log(src: Path, dst: Path, before: int) -> int:
    """Copy the response-log files of ticks ``< before`` (rank folders kept); returns how many."""
    from .run import _link
    n = 0
    for f in sorted(src.rglob("tick-*.parquet")):
        m = _TICK_FILE.match(f.name)
        if m is None or int(m.group(1)) >= before:
            continue
        target = dst / f.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        _link(f, target)
        n += 1
    return n


def fork_run(run_dir: Path, at: int, out: Path, overrides: dict | None = None, steps: int | None = None,
             scenario: str | None = None, engine=None, snapshot_every: int = 0):
    """Branch ``run_dir`` at tick ``at`` into ``out`` and run it (see the module docstring); returns the
    :class:`~socius.app.run.RunResult`. Usage errors raise ``ConfigError`` naming the flag."""
    from .run import SNAPSHOTS, run_scenario
    from socius.correct.switch import SWITCH_LOG, AdapterSchedule, parse_switches, read_switches
    from socius.mpi.snapshot import snapshot_info

    from .config import build_config
    from .engines import EngineChoice
    from .registry import ScenarioNotFound, get_scenario

    run_dir, out = Path(run_dir), Path(out)
    info_path = run_dir / "run.json"
    if not info_path.is_file():
        raise ConfigError(f"RUN_DIR: {run_dir} is not a run directory (no run.json)")
    try:
        parent = json.loads(info_path.read_text())
    except ValueError as e:
        raise ConfigError(f"RUN_DIR: {info_path} is not JSON: {e}") from None
    snaps = tick_snapshots(run_dir)
    if at not in snaps:
        have = ", ".join(map(str, snaps)) or "none"
        raise ConfigError(f"--at: no snapshot at tick {at} in {run_dir} (snapshots at ticks: {have}; "
                          f"a run keeps one every --snapshot-every K ticks in {SNAPSHOTS}/)")
    if out.exists() and (out.resolve() == run_dir.resolve() or any(out.iterdir())):
        raise ConfigError(f"--out: {out} exists and is not empty (a fork writes a new run directory)")
    try:
        sc = get_scenario(scenario or parent["scenario"])
    except ScenarioNotFound as e:
        raise ConfigError(f"--scenario: {e} (give --scenario for a scenario run from a file or module)") from None
    overrides = dict(overrides or {})
    switches = parse_switches(overrides.pop("adapter_switches", None), "--config: adapter_switches")
    for i, s in enumerate(switches):
        if s.tick < at:
            raise ConfigError(f"--config: adapter_switches[{i}].tick: {s.tick} is before the fork tick {at}")
    cfg = build_config(sc.config, {**parent.get("config", {}), **overrides}, prefix="--config: ")
    ticks = int(parent.get("ticks", at)) if steps is None else int(steps)
    if ticks < at:
        raise ConfigError(f"--steps: {ticks} ticks in total is before the fork tick {at}")
    if engine is None and sc.mock_policy is not None:
        e = parent.get("engine") or {}
        engine = EngineChoice(kind=e.get("kind", "mock"), config=e.get("config") or {})

    src = snaps[at]
    snap_info = snapshot_info(src)
    out.mkdir(parents=True, exist_ok=True)
    snap = out / ("snapshot.ranks" if src.is_dir() else "snapshot.socius")
    shutil.copytree(src, snap) if src.is_dir() else shutil.copy2(src, snap)
    logged = _copy_log(run_dir / "responses", out / "responses", at) if (run_dir / "responses").is_dir() else 0
    rows = [r for r in read_switches(run_dir) if r["tick"] < at] + [s.row() for s in switches]
    if rows:
        (out / SWITCH_LOG).write_text(json.dumps(rows, indent=1, sort_keys=True) + "\n")
    lineage = {"run_dir": str(run_dir.resolve()), "tick": at, "state_hash": snap_info["state_hash"],
               "snapshot": str(src.resolve()), "overrides": overrides, "adapter_switches": [s.row() for s in switches],
               "response_files": logged}
    res = run_scenario(sc, cfg, seed=int(parent["seed"]), ticks=ticks, out=out, resume=snap, engine=engine,
                       snapshot_every=snapshot_every, parent=lineage)
    if switches:
        sched = res.world.get_resource(AdapterSchedule)
        have = {json.dumps(r["tick"]) + r["adapter"] for r in (sched.items if sched is not None else [])}
        if not all(json.dumps(s.tick) + s.adapter in have for s in switches):
            raise ConfigError("--config: adapter_switches: the runner did not apply them (it does not call "
                              "socius.correct.switch.install_switch)")
    return res


def _merge_info(out: Path, fields: dict) -> None:
    path = out / "run.json"
    info = json.loads(path.read_text()) if path.is_file() else {}
    info.update(fields)
    tmp = out / ".run.json.tmp"
    tmp.write_text(json.dumps(info, indent=2, default=str) + "\n")
    tmp.replace(path)


def _add_arguments(p) -> None:
    from .args import int_flag
    p.add_argument("run_dir", metavar="RUN_DIR", type=Path, help="the run directory to branch from")
    p.add_argument("--at", metavar="TICK", type=int_flag("--at", 0), required=True,
                   help="the snapshot tick to branch at")
    p.add_argument("--out", metavar="DIR", type=Path, required=True, help="the new run directory")
    p.add_argument("--config", metavar="FILE", type=Path,
                   help="TOML/JSON overrides: scenario config fields, [[adapter_switches]]")
    p.add_argument("--steps", "--rounds", dest="steps", metavar="N", type=int_flag("--steps", 0),
                   help="ticks in total (default: as many as the parent ran)")
    p.add_argument("--scenario", metavar="NAME", help="the scenario, if not the registered name in run.json")
    p.add_argument("--snapshot-every", type=int_flag("--snapshot-every", 0), default=0,
                   help="also snapshot every K ticks")


def _run(args) -> int:
    from .config import load_config_file
    overrides = load_config_file(args.config) if args.config else {}
    res = fork_run(args.run_dir, args.at, args.out, overrides, args.steps, args.scenario,
                   snapshot_every=args.snapshot_every)
    print(f"forked {args.run_dir} at tick {args.at} into {args.out}: {res.ticks_run} ticks run, {res.ticks} in total")
    print(f"state_hash: {res.state_hash}", flush=True)
    return 0


COMMANDS = (Command(("fork",), "branch a run from one of its snapshot ticks into a new run directory",
                    _add_arguments, _run),)
