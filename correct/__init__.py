"""Correctable agents: labels, judges, adapters (GenSim §2.3).

The simulation's (prompt, reply) pairs, read from the response log, are
scored ``(q, a, s)`` or revised ``(q, a')`` by a judge (an LLM with a rubric,
or a scenario's rule over columns) or by people; LoRA adapters are trained
from those labels (TRL + PEFT, the ``train`` extra) and loaded into the
running engines, so the next ticks use the corrected model.

Modules: ``labels`` (the label store), ``responses`` (a run's logged replies,
one row per completion), ``sampling`` (which replies to label),
``importing`` (labels from CSV/Parquet), ``judge_base`` / ``judges`` /
``judge_llm`` (rule judges and the LLM judge, batched through the decision
pipeline), ``switch`` / ``switch_rows`` (adapters loaded into the running
engines and agents moved to them at a tick boundary, recorded for replay and
resume), ``rank_switch`` (a switch decided on rank 0 reaching every rank at
the same tick), ``datasets`` (labels → SFT / KTO / DPO rows), ``train`` /
``trainer_main`` (LoRA training with TRL + PEFT in a child process),
``adapters`` (versioned adapter folders and their manifests), ``placeholder``
(adapters that learn nothing, for the mock), ``loop`` (the online loop),
``experiment`` (the correction experiment's split, scores and plot).
"""
from socius.correct.adapters import AdapterError, latest_adapter, load_manifest
from socius.correct.datasets import build_training_set
from socius.correct.importing import import_labels, read_label_file
from socius.correct.judges import JudgeResult, LLMJudge, RuleJudge, judge_policy
from socius.correct.labels import LABEL_SCHEMA, REPLY_COLUMNS, LabelError, LabelStore, make_labels
from socius.correct.responses import load_replies, response_files
from socius.correct.sampling import parse_spec, run_world, sample
from socius.correct.switch import AdapterSchedule, AdapterSwitch, install_switch, schedule_switch, schedule_switches
from socius.correct.train import TrainError, start_training, train_adapter

__all__ = ["LABEL_SCHEMA", "REPLY_COLUMNS", "AdapterError", "TrainError", "build_training_set", "latest_adapter",
           "load_manifest", "start_training", "train_adapter", "AdapterSchedule", "AdapterSwitch", "install_switch", "schedule_switch",
           "schedule_switches", "JudgeResult", "LLMJudge", "LabelError", "LabelStore", "RuleJudge",
           "import_labels", "judge_policy", "load_replies", "make_labels", "parse_spec", "read_label_file",
           "response_files", "run_world", "sample"]
