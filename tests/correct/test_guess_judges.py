"""The guess game's two rule judges as the correction experiment uses them: ``guess_number``'s rewrites
(SFT/DPO targets without an LLM) and ``guess_outcome``, which scores by the round's real target."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st

from socius.correct import LabelError
from socius.correct.judges import RuleJudge
from socius.ecs import World
from socius.scenarios.guess.components import GuessGame
from socius.scenarios.guess.config import GuessConfig
from socius.scenarios.guess.judges import JUDGES
from socius.scenarios.guess.scenario import make_decision

NUMBER, OUTCOME = JUDGES


def _prompt(game="classic", style="", last="30.00", first=False):
    d = make_decision(GuessConfig(game=game, reply_style=style), first_round=first)
    fields = {"p_text": "1/2" if game == "nash10" else "2/3", "round": 3, "max_value": 100, "offset": "5",
              "n_groups": 0, "previous_winner": last, "group_numbers": "", "name": "Ann", "education": "PhD",
              "occupation": "nurse", "background": "", "group": 0}
    return str(d.template.render({k: fields[k] for k in d.template.fields}, 1)[0])


def _rows(prompts, completions, ticks=None):
    m = len(completions)
    prompts = prompts if len(prompts) == m else prompts * m
    return pa.table({"run": ["t"] * m, "tick": ticks or [1] * m, "decision": ["guess"] * m, "kind": ["answer"] * m,
                     "entity": list(range(m)), "prompt_hash": list(range(m)),
                     "prompt": pa.array(prompts, pa.large_string()),
                     "completion": pa.array(completions, pa.large_string()),
                     "model": [""] * m, "adapter": [""] * m, "seed": [0] * m, "completion_index": [0] * m,
                     "error": [""] * m})


def _number(text: str) -> float:
    return float(text.split('"number": ')[1].split("}")[0])


def test_rewrites_go_one_step_below_what_was_wrong():
    replies = [' {"number": 20}', ' {"number": 45}', ' {"number": 90}', "I would go with 20", "no idea"]
    labels = NUMBER.judge(_rows([_prompt()], replies)).labels
    assert labels.column("score").to_pylist() == [5, 4, 2, 3, 1]
    rev = labels.column("revision").to_pylist()
    assert rev[0] is None                                  # nothing to fix: no revision
    assert rev[1] == ' {"number": 20}'                     # above last winner 30: 2/3 of 30
    assert rev[2] == ' {"number": 20}'                     # dominated: 2/3 of min(90, 66.7, 30)
    assert rev[3] == ' {"number": 20}'                     # prose: the asked format, number kept
    assert rev[4] == ' {"number": 20}'                     # no number: the range's top stands in
    first = NUMBER.judge(_rows([_prompt(first=True)], [' {"number": 90}'])).labels
    assert first.column("revision").to_pylist() == [' {"number": 44}']   # round 1: 2/3 of the bound 66.7


def test_a_revision_scores_five_and_keeps_the_reasoning():
    reasoned = _prompt(style="reasoned")
    replies = [' Most players will pick low numbers.\nAnswer: {"number": 35}',   # above last: rewritten
               ' Two thirds of 30 is 20, so I pick 20.\nAnswer: {"number": 27}']  # contradicts: not rewritten
    labels = NUMBER.judge(_rows([reasoned], replies)).labels
    rev = labels.column("revision").to_pylist()
    assert rev[0] == ' Most players will pick low numbers.\nAnswer: {"number": 20}' and rev[1] is None
    again = NUMBER.judge(_rows([reasoned], [rev[0]])).labels
    assert again.column("score").to_pylist() == [5]


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 100), st.sampled_from(["classic", "nash10"]), st.floats(1, 99).map(lambda v: round(v, 2)))
def test_every_revision_is_judged_five(x, game, last):
    prompt = _prompt(game=game, last=f"{last:.2f}")
    labels = NUMBER.judge(_rows([prompt], [f' {{"number": {x}}}'])).labels
    rev = labels.column("revision")[0].as_py()
    assert (rev is None) == (labels.column("score")[0].as_py() == 5)
    if rev is not None:
        assert NUMBER.judge(_rows([prompt], [rev])).labels.column("score").to_pylist() == [5]
        assert _number(rev) <= x


def _world(targets):
    w = World(seed=0)
    w.insert_resource(GuessGame(history=[{"round": i + 1, "target": t} for i, t in enumerate(targets)]))
    return w


def test_outcome_scores_by_the_rounds_real_target():
    world = _world([30.0, 12.0])
    replies = [' {"number": 31}', ' {"number": 38}', ' {"number": 45}', ' {"number": 65}', ' {"number": 90}',
               ' {"number": 12}', "no number", ' {"number": 30}']
    ticks = [0, 0, 0, 0, 0, 1, 1, 1]
    labels = OUTCOME.judge(_rows([_prompt()], replies, ticks), world).labels
    assert labels.column("score").to_pylist() == [5, 4, 3, 2, 1, 5, 1, 3]
    assert OUTCOME.world and OUTCOME.source == "rule:guess_outcome"


def test_outcome_needs_the_rounds():
    with pytest.raises(LabelError, match="GuessGame"):
        OUTCOME.judge(_rows([_prompt()], [' {"number": 3}']), World(seed=0))
    with pytest.raises(LabelError, match="tick 4"):
        OUTCOME.judge(_rows([_prompt()], [' {"number": 3}'], [4]), _world([30.0]))


def test_a_rule_may_return_revisions():
    fn = lambda r, w: (np.array([2, 5]), np.array(["bad", "ok"]), np.array(["better", ""]))  # noqa: E731
    labels = RuleJudge("fix", ("guess",), fn).judge(_rows(["p"], ["a", "b"])).labels
    assert labels.column("revision").to_pylist() == ["better", None]
    short = RuleJudge("short", ("guess",), lambda r, w: (np.array([2, 5]), np.array(["", ""]), np.array(["x"])))
    with pytest.raises(LabelError, match="short"):
        short.judge(_rows(["p"], ["a", "b"]))
