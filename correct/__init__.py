"""Correctable agents: labels, judges, adapters (GenSim §2.3).

The simulation's (prompt, reply) pairs, read from the response log, are
scored ``(q, a, s)`` or revised ``(q, a')`` by a judge (an LLM with a rubric,
or a scenario's rule over columns) or by people; LoRA adapters are trained
from those labels (TRL + PEFT, the ``train`` extra) and loaded into the
running engines, so the next ticks use the corrected model.

Modules: ``labels`` (the label store), ``responses`` (a run's logged replies,
one row per completion).
"""
from socius.correct.labels import LABEL_SCHEMA, REPLY_COLUMNS, LabelError, LabelStore, make_labels
from socius.correct.responses import load_replies, response_files

__all__ = ["LABEL_SCHEMA", "REPLY_COLUMNS", "LabelError", "LabelStore", "load_replies", "make_labels",
           "response_files"]
