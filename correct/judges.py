"""Judges: score a run's logged replies, vectorised over rows, into label tables.

A judge takes a replies table (rows of :func:`~socius.correct.load_replies`:
the :data:`~socius.correct.labels.REPLY_COLUMNS` plus ``completion_index``
and ``error``, ``[m]`` rows) and returns a label table
(:func:`~socius.correct.labels.make_labels`) with a :class:`JudgeResult`
that also counts what it could not label.

* :class:`RuleJudge` — a scenario's plain-Python rule over columns:
  ``fn(replies, world) -> (score [m] int8 1..5, rationale [m] str[, revision [m] str])``
  (a rule that can also rewrite a reply returns the rewrite, ``""`` where it has none:
  SFT and DPO targets without an LLM).
  Everything an agent decided on is in its logged prompt, so most rules
  read the prompt and the completion with Arrow regex kernels; a rule that
  needs more (``world=True``) gets the run's final world, restored from its
  snapshot, and looks agents up by ``entity``. Source ``rule:<name>``.
* :class:`~socius.correct.judge_llm.LLMJudge` — a rubric prompt per decision,
  sent through the normal decision pipeline (any engine, every call logged
  and replayable); a reply the pipeline had to fall back on gives no label.
  Source ``judge:<model>``. :func:`~socius.correct.judge_llm.judge_policy`
  is its mock-engine policy.

Only ``answer`` rows are judged (an ``extract`` row answers the extraction
prompt, not the agent's), and only those the engine answered (``error`` "").

Modules: this one (rule judges, and the whole API re-exported),
``judge_base`` (:class:`JudgeResult`, which rows are judged, helpers for
rules over string columns: :func:`extract`, :func:`extract_number`,
:func:`contains`) and ``judge_llm`` (the LLM judge and its mock policy).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pyarrow as pa

from socius.ecs import STR
from socius.errors import ConfigError

from .judge_base import (JudgeResult, contains, count_rows, extract, extract_number, first_finding, judgeable,
                         matching, score_counts)
from .judge_llm import LLMJudge, judge_policy
from .labels import LABEL_SCHEMA, LabelError, make_labels

__all__ = ["JudgeResult", "RuleJudge", "LLMJudge", "judge_policy", "judgeable", "matching", "extract",
           "extract_number", "contains", "first_finding", "score_counts", "JUDGE_SPECS", "select_judges"]

#: the judge flags' grammar, as their errors name it
JUDGE_SPECS = "rule:NAME[,NAME...], rule:all (or rule), or llm[:NAME]"


@dataclass(frozen=True)
class RuleJudge:
    """A scenario's rule: ``fn(replies, world) -> (score [m] int8 1..5, rationale [m] str)``, or with a
    third ``revision [m] str`` (``""``: none for that row) for a rule that also rewrites replies.

    ``name``: the label source is ``rule:<name>``; ``decisions``: the
    decision names (or globs, ``speak*``) it judges; ``world``: whether it
    needs the run's final world (else it is given None); ``revises``: whether
    ``fn`` returns the third column (then its labels can train DPO). ``fn``
    sees only the judgeable rows of its decisions (see :func:`judgeable`) and
    must return one score 1..5 per row.
    """

    name: str
    decisions: tuple[str, ...]
    fn: Callable[[pa.Table, Any], tuple[np.ndarray, ...]]
    world: bool = False
    help: str = ""
    revises: bool = False

    @property
    def source(self) -> str:
        return f"rule:{self.name}"

    def judge(self, replies: pa.Table, world=None) -> JudgeResult:
        rows = judgeable(replies, self.decisions)
        m = rows.num_rows
        if m == 0:
            return JudgeResult(self.source, LABEL_SCHEMA.empty_table(), {})
        out = self.fn(rows, world if self.world else None)
        score, rationale = out[0], out[1]
        revision = _revisions(out[2], m, self.name) if len(out) > 2 else None
        score = np.asarray(score)
        rationale = np.asarray(rationale, dtype=STR)
        if score.shape != (m,) or rationale.shape != (m,):
            raise LabelError(f"rule judge {self.name}: returned scores of shape {score.shape} and rationales of "
                             f"shape {rationale.shape} for {m} replies")
        if score.dtype.kind not in "iu" or ((score < 1) | (score > 5)).any():
            raise LabelError(f"rule judge {self.name}: scores must be integers 1..5")
        labels = make_labels(rows, self.source, score=score.astype(np.int8), revision=revision,
                             rationale=pa.array(rationale.astype(object), pa.large_string()))
        return JudgeResult(self.source, labels, count_rows(rows.column("decision"), np.ones(m, dtype=bool)))


def _revisions(revision, m: int, name: str) -> pa.Array:
    """``[m]`` large_string, null where the rule wrote ``""`` (no revision)."""
    rev = np.asarray(revision, dtype=STR)
    if rev.shape != (m,):
        raise LabelError(f"rule judge {name}: returned revisions of shape {rev.shape} for {m} replies")
    return pa.array(rev.astype(object), pa.large_string(), mask=rev == "")


def select_judges(spec: str, rules, flag: str, scenario: str = "") -> tuple[str, str, tuple[RuleJudge, ...]]:
    """What a judge flag (``--judge``, ``--train-judge``, ...) names: ``("rule", "", judges)`` for ``rule``,
    ``rule:all`` (every one of ``rules``) or ``rule:A[,B…]``; ``("llm", name, ())`` for ``llm[:NAME]``
    (name ``llm`` by default). ``rules``: the scenario's rule judges (None: check the grammar only);
    a :class:`~socius.errors.ConfigError` names ``flag`` and ``scenario``."""
    kind, _, names = spec.partition(":")
    if kind == "llm":
        name = names or "llm"
        if "/" in name or name.startswith("."):
            raise ConfigError(f"{flag}: bad LLM judge name {name!r} (it names a folder judges/NAME)")
        return "llm", name, ()
    if kind != "rule":
        raise ConfigError(f"{flag}: expected {JUDGE_SPECS}, got {spec!r}")
    if rules is None:
        return "rule", "", ()
    where = f"scenario {scenario}" if scenario else "the scenario"
    known = {j.name: j for j in rules}
    if not known:
        raise ConfigError(f"{flag}: {where} declares no rule judges")
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    if wanted == ["all"]:
        wanted = []
    bad = [n for n in wanted if n not in known]
    if bad:
        raise ConfigError(f"{flag}: {where} has no rule judge {bad[0]!r} (known: {', '.join(sorted(known))}, or all)")
    return "rule", "", tuple(known[n] for n in wanted) if wanted else tuple(known.values())
