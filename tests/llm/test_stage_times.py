"""The stage times of a ``decide`` row partition its own work: an extraction's stages count once, in ``extract_s``."""
from __future__ import annotations

import tempfile
import time

import numpy as np
import pytest

from socius.ecs import STR, World
from socius.llm import LLM, Decision, DecisionStats, JsonReply, MockEngine, Number, Template, decide

STAGES = ("render_s", "dedup_s", "log_s", "parse_s", "extract_s")
PAUSE_S = 0.3


def policy(batch, seed):
    """Prose for the agents (nothing parses), a JSON number for the extraction prompts."""
    prompts = np.repeat(batch.prompts, batch.n)
    return np.where(np.strings.startswith(prompts, "Rewrite"), '{"number": 3}', "about three").astype(STR)


class SlowExtractLog:
    """The run's response log, pausing ``PAUSE_S`` in every write of an extraction call."""

    def __init__(self, inner):
        self.inner = inner

    def __getattr__(self, key):
        return getattr(self.inner, key)

    def write(self, tick, decision, kind, *rest):
        if kind == "extract":
            time.sleep(PAUSE_S)
        return self.inner.write(tick, decision, kind, *rest)


@pytest.mark.parametrize("stream", [False, True])
def test_extraction_stages_are_counted_once(stream):
    ids = np.arange(30, dtype=np.int64)
    with tempfile.TemporaryDirectory() as tmp:
        w = World(seed=1)
        w.spawn(30)
        llm = LLM({"": MockEngine(policy, seed=1)}, log_dir=tmp)
        llm.log = SlowExtractLog(llm.log)
        w.insert_resource(llm)
        d = Decision("g", Template("Agent {i}: a number?"), JsonReply(number=Number(0, 10)), {"number": -1.0})
        res = decide(w, d, ids, {"i": ids % 5}, stream=stream)
        llm.close()
    row = w.resource(DecisionStats).rows[-1]
    assert row["extracted"] == 30 and row["extract_s"] >= PAUSE_S
    # the stage columns partition the pipeline's own time: their sum never exceeds the decision's wall time
    # (before, the extraction's log and dedup times were in log_s/dedup_s and in extract_s)
    assert sum(row[k] for k in STAGES) <= row["wall_s"]
    assert (res.values["number"] == 3).all()
