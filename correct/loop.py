"""The online correction loop: label, train in the background, switch — at tick boundaries.

::

    loop = CorrectionLoop(run_dir, LoopSettings(every=5, judge="rule:all", method="kto"),
                          rules=scenario.judges)
    run_scenario(..., progress=loop)      # loop(world, total) at every tick boundary (rank 0)
    loop.close()

At a boundary where ``world.tick % every == 0`` and no training is under way,
a *round* starts: the response log is flushed (``world.flush()``), the
replies of the ticks since the last round are sampled (``sample``, default
all), judged (rule judges inline; the LLM judge through its own engine, given
as ``llm_judge(rows, round) -> JudgeResult``), the new labels are appended to
``RUN_DIR/labels/``, and training starts on every label this loop has made so
far (``trainer``: :func:`~socius.correct.train.start_training`, which returns
at once). At each later boundary the job is polled; once its adapter is
published, a switch is scheduled at the next tick for the cohort (``cohort``:
``where`` conditions; None: every agent). The run waits only with
``wait=True`` (then a round trains and switches at the boundary it started).

Scores only (rule judges) and ``sft``: SFT learns from revisions, so the
replies scored ≥ ``good`` become their own targets (filtered SFT, in memory;
the store keeps the plain scores). ``dpo`` needs revisions: an LLM judge
(it revises for ``sft``/``dpo``) or a rule judge that writes them
(``RuleJudge.revises``); with rule judges none of which does, it is refused.

Every event is a line of ``RUN_DIR/correction.jsonl`` (:func:`read_rounds`
merges them per round): ``labelled`` (tick, replies, labels, mean score,
source), ``training`` (job folder), ``switch`` (adapter, folder, switch
tick), ``failed`` (stage and error: the run keeps its adapter and goes on),
``cancelled`` (a job still training when the run ended is stopped).
Resume: a loop over a run directory that already has rounds starts its
next round after the last recorded tick; the recorded switches themselves
come back through ``switches.json`` (:mod:`.switch`). Replay: no loop.

Several MPI ranks: the loop runs on rank 0 (the runner's boundary hook) and
*queues* its switches (:mod:`.rank_switch`); every rank adds them to its
schedule at the start of the next tick, so all switch at the tick one rank
would. Each round reads only the log files of the ticks since the last round
(``load_replies(since_tick=…)``); under MPI up to the tick before the
boundary, whose files every rank has flushed by then.
"""
from __future__ import annotations

import json
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from socius.errors import ConfigError

from .judges import select_judges
from .labels import LabelStore
from .placeholder import PlaceholderTraining, placeholder_trainer
from .switch import SwitchLog, queue_switch, schedule_switch

__all__ = ["CORRECTION_LOG", "CorrectionLoop", "LoopSettings", "PlaceholderTraining", "placeholder_trainer",
           "read_rounds", "sft_targets"]

CORRECTION_LOG = "correction.jsonl"


@dataclass
class LoopSettings:
    """``every``: ticks per round; ``judge``: ``rule:all``, ``rule:NAME[,NAME…]`` or ``llm[:NAME]``
    (:func:`~socius.correct.judges.select_judges`); ``method``:
    sft, kto or dpo; ``sample``: a :func:`~socius.correct.sampling.sample` spec (None: every reply);
    ``cohort``: who switches (``where`` conditions, None: everyone); ``wait``: train at the boundary;
    ``name``: the adapter name; ``base``/``chat``/``hparams``: passed to the trainer."""

    every: int
    judge: str = "rule:all"
    method: str = "kto"
    sample: str | None = None
    cohort: str | None = None
    wait: bool = False
    name: str = "online"
    seed: int = 0
    good: int = 4
    base: str | None = None
    chat: bool | None = None
    hparams: dict = field(default_factory=dict)

    def __post_init__(self):
        if isinstance(self.every, bool) or not isinstance(self.every, int) or self.every < 1:
            raise ConfigError(f"--correct-every: must be an int >= 1, got {self.every!r}")
        if self.method not in ("sft", "kto", "dpo"):
            raise ConfigError(f"--method: {self.method!r} is not one of sft, kto, dpo")
        select_judges(self.judge, None, "--judge")  # the grammar; the names are checked against the scenario's


def sft_targets(labels: pa.Table, good: int = 4) -> pa.Table:
    """Labels for SFT: those with a revision as they are, plus replies scored ≥ ``good`` without one,
    with their own completion as the revision (filtered SFT); nothing is written to the store."""
    rev = labels.column("revision")
    has = pc.and_(rev.is_valid(), pc.not_equal(rev.fill_null(""), "")).to_numpy(zero_copy_only=False)
    score = labels.column("score").fill_null(0).to_numpy(zero_copy_only=False)
    keep = has | (score >= good)
    comp = labels.column("completion").to_numpy(zero_copy_only=False)
    revised = np.where(has, rev.fill_null("").to_numpy(zero_copy_only=False), comp)
    i = labels.schema.get_field_index("revision")
    out = labels.set_column(i, labels.schema.field(i), pa.array(revised, labels.schema.field(i).type))
    return out.filter(pa.array(keep))


def read_rounds(run_dir: str | Path) -> list[dict]:
    """The rounds of ``RUN_DIR/correction.jsonl``, one dict per round (events merged, in order)."""
    path = Path(run_dir) / CORRECTION_LOG
    rounds: dict[int, dict] = {}
    if not path.is_file():
        return []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            ev = json.loads(line)
        except ValueError:
            warnings.warn(f"{path}:{n}: not JSON, skipped")
            continue
        r = rounds.setdefault(int(ev.get("round", -1)), {"round": int(ev.get("round", -1)), "events": []})
        r["events"].append(ev["event"])
        r.update({k: v for k, v in ev.items() if k not in ("event", "time")})
    return [rounds[k] for k in sorted(rounds)]


class CorrectionLoop:
    """``loop(world, total)`` at every tick boundary (see the module docstring); ``close()`` at the end."""

    def __init__(self, run_dir: str | Path, settings: LoopSettings, rules=(), llm_judge: Callable | None = None,
                 trainer: Callable | None = None, world_for_rules=None):
        self.run_dir, self.s = Path(run_dir), settings
        kind, _, chosen = select_judges(settings.judge, rules, "--judge")
        if kind == "llm" and llm_judge is None:
            raise ConfigError("--judge llm: no engine for the LLM judge")
        self.rules = list(chosen)
        if settings.method == "dpo" and self.rules and not any(j.revises for j in self.rules):
            raise ConfigError(f"--method dpo: learns from revisions, which none of the rule judges "
                              f"{', '.join(j.name for j in self.rules)} writes; use a rule judge that revises, "
                              "--judge llm (it revises) or --method kto/sft")
        self.llm_judge = llm_judge
        self.world_for_rules = world_for_rules or (lambda w: w)  # rules with world=True read the live world
        if trainer is None:
            from .train import start_training as trainer
        self.trainer = trainer
        self.job = None  # (round, handle) of the training under way
        self.sources: set[str] = set()
        done = read_rounds(self.run_dir)
        self.round = 1 + max((r["round"] for r in done), default=-1)
        # replies of ticks >= since are new (``until``: where a round under MPI stopped reading)
        self.since = max((int(r.get("until", r.get("tick", 0))) for r in done), default=0)
        self.sources.update(r["source"] for r in done if r.get("source"))
        self.switches = sum("switch" in r["events"] for r in done)
        self.ranks = 1

    # -- the log ------------------------------------------------------------------------------------
    def _log(self, event: str, rnd: int, **fields) -> dict:
        ev = {"event": event, "round": rnd, **fields, "time": time.time()}
        with open(self.run_dir / CORRECTION_LOG, "a") as f:  # one line per event: an append never loses one
            f.write(json.dumps(ev, default=str) + "\n")
            f.flush()
            os.fsync(f.fileno())
        return ev

    # -- the boundary -------------------------------------------------------------------------------
    def __call__(self, world, total: int) -> None:
        from socius.mpi import world_ranks
        self.ranks = world_ranks(world).size
        log = world.get_resource(SwitchLog)
        if log is not None and self.ranks > 1:
            log.flush = True  # every rank writes its log each tick, so this rank can read them all
        if self.job is not None and (self.s.wait or self.job[1].poll()):
            self._finish(world, total)
        if self.job is None and world.tick % self.s.every == 0 and self.since < world.tick < total:
            self._round(world, total)
            if self.job is not None and self.s.wait:
                self._finish(world, total)

    def _round(self, world, total: int) -> None:
        from .responses import load_replies
        rnd, tick = self.round, world.tick
        self.round += 1
        until = tick if self.ranks == 1 else tick - 1  # other ranks' files of the last tick may be unwritten
        try:
            world.flush()
            replies = load_replies(self.run_dir, since_tick=self.since, before_tick=until)
            self.since = until
            rows = self._sample(replies)
            results = [j.judge(*self._for_rule(j, rows, world)) for j in self.rules] if self.rules \
                else [self.llm_judge(rows, rnd)]
        except Exception as e:  # noqa: BLE001 - a failed round is logged; the run goes on
            self._fail(rnd, tick, "judge", e)
            return
        store = LabelStore(self.run_dir)
        made, scores = 0, []
        for res in results:
            if res.labels.num_rows:
                store.append(res.labels)
                made += res.labels.num_rows
                scores.append(res.labels.column("score").drop_null().to_numpy(zero_copy_only=False))
                self.sources.add(res.source)
        s = np.concatenate(scores) if scores else np.zeros(0)
        self._log("labelled", rnd, tick=tick, until=until, replies=rows.num_rows, labels=made,
                  mean_score=float(s.mean()) if s.size else None, source=",".join(r.source for r in results))
        try:
            labels = store.read(latest=True)
            labels = labels.filter(pc.is_in(labels.column("source"), pa.array(sorted(self.sources))))
            if self.s.method == "sft":
                labels = sft_targets(labels, self.s.good)
            handle = self.trainer(self.run_dir, self.s.name, self.s.method, labels=labels, base=self.s.base,
                                  chat=self.s.chat, **self.s.hparams)
        except Exception as e:  # noqa: BLE001
            self._fail(rnd, tick, "train", e)
            return
        self.job = (rnd, handle)
        self._log("training", rnd, job=str(getattr(handle, "job_dir", "")), train_labels=labels.num_rows)

    def _for_rule(self, judge, rows: pa.Table, world) -> tuple:
        """``(rows, world)`` for a rule judge: one that reads the world gets it, and under MPI only the rows
        of the agents this rank holds (the others' rows are in no world here)."""
        if not judge.world:
            return rows, None
        if self.ranks > 1:
            ids = rows.column("entity").to_numpy(zero_copy_only=False)
            rows = rows.filter(pa.array(world.is_alive(ids)))
        return rows, self.world_for_rules(world)

    def _sample(self, replies: pa.Table) -> pa.Table:
        ok = pc.and_(pc.equal(replies.column("kind"), "answer"), pc.equal(replies.column("error").fill_null(""), ""))
        if self.s.sample is None:
            return replies.filter(ok)
        from .sampling import sample
        idx = sample(replies, self.s.sample, self.s.seed + self.round,
                     eligible=np.asarray(ok.to_numpy(zero_copy_only=False), bool))
        return replies.take(pa.array(idx, pa.int64()))

    def _finish(self, world, total: int) -> None:
        rnd, handle = self.job
        self.job = None
        try:
            manifest = handle.wait()
        except Exception as e:  # noqa: BLE001 - a crash: the agents keep their adapter
            self._fail(rnd, world.tick, "train", e)
            return
        path = str(Path(manifest["path"]).resolve())  # a resume from another directory still finds it
        if world.tick >= total:
            self._log("unused", rnd, adapter=self.s.name, path=path, reason="the run ended")
            return
        try:
            (schedule_switch if self.ranks == 1 else queue_switch)(world, tick=world.tick, adapter=self.s.name,
                                                                  path=path, where=self.s.cohort)
        except Exception as e:  # noqa: BLE001
            self._fail(rnd, world.tick, "switch", e)
            return
        self.switches += 1
        self._log("switch", rnd, adapter=self.s.name, path=path, version=manifest.get("version"),
                  switch_tick=world.tick, cohort=self.s.cohort, loss=_loss(manifest))

    def _fail(self, rnd: int, tick: int, stage: str, e: Exception) -> None:
        warnings.warn(f"correction round {rnd} at tick {tick}: {stage} failed ({type(e).__name__}: {e}); "
                      "the agents keep their adapter")
        self._log("failed", rnd, tick=tick, stage=stage, error=f"{type(e).__name__}: {e}")

    def close(self) -> None:
        """Stop a training still under way (logged ``cancelled``); the run has ended."""
        if self.job is None:
            return
        rnd, handle = self.job
        self.job = None
        proc = getattr(handle, "proc", None)
        if proc is not None and proc.poll() is None:
            proc.terminate()
            proc.wait(30)
        self._log("cancelled", rnd, job=str(getattr(handle, "job_dir", "")))


def _loss(manifest: dict):
    """The training's last logged loss, else its mean (None for a placeholder)."""
    loss = manifest.get("loss") or {}
    return loss.get("final") if loss.get("final") is not None else loss.get("mean")
