"""The LLM judge: a rubric prompt per decision, sent through the normal decision pipeline.

For each judged reply (``[m]`` rows of :func:`~socius.correct.load_replies`)
:class:`LLMJudge` renders one judge prompt — the end of the agent's prompt
(its last ``prompt_chars`` characters: the agent's own case comes last),
its reply and the decision's rubric — and asks for
``{"score": 1..5, "reason": "..."}`` (plus ``"revision"`` with
``revise=True``). All prompts of one agent decision go out as one
:func:`~socius.llm.decide` call of the decision ``judge:<decision>`` on a
small judge :class:`~socius.ecs.World` that holds the caller's
:class:`~socius.llm.LLM` resource, so:

* any engine works (mock, local, vllm, openai), with constrained JSON output
  where the engine supports it, identical prompts sent once;
* every judge call lands in that LLM's response log (the command line keeps
  it in ``RUN_DIR/judges/<name>/responses/``) and a
  :class:`~socius.llm.ReplayEngine` on that log gives the same labels again:
  the judge world's tick is the judging *round* and its seed the caller's,
  so a replayed round asks exactly the logged requests;
* a reply that does not parse gets the pipeline's extraction call, then the
  declared fallback — and a fallback (or an engine failure) gives **no
  label**: it is counted in :attr:`JudgeResult.counts`, never turned into a
  made-up score.

The prompt is a few-shot completion prompt ending where the JSON starts, so
a base model (the embedded Gemma 3 270M) continues with the judgement.
:func:`judge_policy` is the mock engine's stand-in judge for tests.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from socius.ecs import STR, World
from socius.ecs.rng import EntityRng
from socius.llm import LLM, Decision, JsonReply, Number, Outcome, RequestBatch, Sampling, Template, Text, decide

from .judge_base import JudgeResult, count_rows, extract, judgeable
from .labels import LABEL_SCHEMA, LabelError, make_labels

__all__ = ["LLMJudge", "DEFAULT_RUBRIC", "judge_policy", "judge_template"]

DEFAULT_RUBRIC = ("The reply answers what the prompt asks, in the asked format, and is a reasonable choice for this "
                  "person in this situation.")
EXTRACT_MARK = "Rewrite the answer below in exactly this format"  # the pipeline's extraction prompt (llm.decision)

_INTRO = (
    "# Reviewing the replies of simulated people\n"
    "Each case shows the end of what a simulated person was asked, the reply they gave, and a rubric. Score the "
    "reply by the rubric from 1 (wrong or unreasonable) to 5 (fully reasonable) and give the reason in one "
    "sentence.{revise_note}\n"
    "Reply as JSON: {format}\n\n")
_REVISE_NOTE = " Also write the reply the person should have given, in the same format as their reply."
_EXAMPLES = (
    ("The number must be between 0 and 100 and fit the rules of the game.",
     "Each player reports a real number between 0 and 100, inclusive.\nRound 1. This is the first round.\n"
     "Player: Maria Rossi, occupation: teacher\nAnswer:",
     ' {"number": 150}', 1, "150 is outside the range 0 to 100.", ' {"number": 33}'),
    ("The stance must fit the person's leaning.",
     "You are Tom, 45, farmer; on this topic you are sceptical.\nHow much do you agree with the statement, "
     'from 1 (strongly disagree) to 5 (strongly agree)? Reply as {"stance": N}.\nAnswer:',
     ' {"stance": 2}', 5, "A sceptical person disagreeing is consistent.", ' {"stance": 2}'),
)


def _json_str(texts: np.ndarray) -> np.ndarray:
    """``[m]`` texts as JSON string contents (backslashes, quotes and newlines escaped)."""
    t = np.asarray(texts, dtype=STR)
    for a, b in (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n")):
        t = np.strings.replace(t, a, b)
    return t


def judge_template(revise: bool) -> Template:
    """The judge prompt: intro, two worked cases, then ``{rubric}``, ``{prompt}``, ``{reply}`` and the cue."""
    fmt = '{"score": 1..5, "reason": "..."' + (', "revision": "..."}' if revise else "}")
    text = _INTRO.format(revise_note=_REVISE_NOTE if revise else "", format=fmt)
    q = lambda s: "<<<quote>>>" + s + "<<<end quote>>>"  # noqa: E731 - the examples quoted as the case is
    for rubric, prompt, reply, score, reason, revision in _EXAMPLES:
        rev = f', "revision": "{_json_str(np.array([revision]))[0]}"' if revise else ""
        text += (f"Rubric: {rubric}\nPrompt: {q(prompt)}\nReply: {q(reply)}\n"
                 f'Judgement: {{"score": {score}, "reason": "{reason}"{rev}}}\n\n')
    text = text.replace("{", "{{").replace("}", "}}")
    return Template(text + "Rubric: {rubric}\nPrompt: {prompt}\nReply: {reply}\nJudgement:",
                    untrusted=("prompt", "reply"))


@dataclass(frozen=True)
class LLMJudge:
    """Score (and with ``revise`` rewrite) replies by rubric through the decision pipeline.

    ``rubrics``: ``{decision name or glob: rubric text}`` — a reply is judged
    by the first key that matches its decision (exact names before globs);
    decisions no key matches are not judged. ``name`` names the judge (its
    log folder on the command line); ``prompt_chars``: how much of the end
    of the agent's prompt the judge sees; ``max_tokens``: of a judgement.
    """

    rubrics: Mapping[str, str] = field(default_factory=lambda: {"*": DEFAULT_RUBRIC})
    revise: bool = False
    name: str = "llm"
    prompt_chars: int = 1500
    max_tokens: int = 96

    def __post_init__(self):
        if not self.rubrics:
            raise LabelError("LLM judge: no rubrics")
        if self.prompt_chars < 1 or self.max_tokens < 1:
            raise LabelError("LLM judge: prompt_chars and max_tokens must be >= 1")

    def rubric(self, decision: str) -> str | None:
        """The rubric for ``decision`` (exact key first, then the first matching glob), None if none."""
        if decision in self.rubrics:
            return self.rubrics[decision]
        return next((r for k, r in self.rubrics.items() if fnmatch.fnmatchcase(decision, k)), None)

    def decision(self, decision: str) -> Decision:
        """The pipeline decision ``judge:<decision>``: greedy, one JSON line, no-label fallback."""
        fields = {"score": Number(1, 5, integer=True), "reason": Text(max_length=240)}
        fallback = {"score": 0, "reason": ""}
        if self.revise:
            fields["revision"] = Text()
            fallback["revision"] = ""
        tokens = self.max_tokens * (3 if self.revise else 1)
        return Decision(f"judge:{decision}", judge_template(self.revise), JsonReply(**fields), fallback=fallback,
                        sampling=Sampling(temperature=0.0, max_tokens=tokens, stop=("\n",)),
                        extract_sampling=Sampling(temperature=0.0, max_tokens=tokens, stop=("\n",)))

    def judge(self, replies: pa.Table, llm: LLM, *, model: str, seed: int = 0, round: int = 0) -> JudgeResult:
        """Labels from source ``judge:<model>`` for the judgeable rows of ``replies``.

        ``llm``: the engines and response log to use; ``seed`` and ``round``
        (the judge world's tick) make the requests, so the same replies,
        seed and round replay from the log.
        """
        source = f"judge:{model}"
        names = np.unique(replies.column("decision").to_numpy(zero_copy_only=False).astype(STR)) \
            if replies.num_rows else np.zeros(0, STR)
        judged = [str(d) for d in names if self.rubric(str(d)) is not None]
        rows = judgeable(replies, tuple(judged)) if judged else replies.slice(0, 0)
        m = rows.num_rows
        if m == 0:
            make_labels(rows, source)  # checks the source even when there is nothing to judge
            return JudgeResult(source, LABEL_SCHEMA.empty_table(), {})
        world = World(seed=int(seed))
        world.tick = int(round)
        world.insert_resource(llm)
        dec = rows.column("decision").to_numpy(zero_copy_only=False).astype(STR)
        prompt = rows.column("prompt").combine_chunks().cast(pa.large_string())
        cut = pc.greater(pc.utf8_length(prompt), self.prompt_chars)
        ls = lambda t: pa.scalar(t, pa.large_string())  # noqa: E731
        prompt = pc.if_else(cut, pc.binary_join_element_wise(
            ls("..."), pc.utf8_slice_codeunits(prompt, -self.prompt_chars), ls("")), prompt)
        reply = rows.column("completion").combine_chunks().cast(pa.large_string())
        ids = np.arange(m, dtype=np.int64)
        outcome = np.full(m, Outcome.FAILED, np.int8)
        score = np.zeros(m, np.int64)
        reason = np.full(m, "", STR)
        revision = np.full(m, "", STR)
        for d in judged:  # one pipeline call per agent decision (a handful), all its rows at once
            k = np.flatnonzero(dec == d)
            take = pa.array(k)
            res = decide(world, self.decision(d), ids[k], {"rubric": self.rubric(d), "prompt": prompt.take(take),
                                                           "reply": reply.take(take)})
            outcome[k] = res.outcome
            score[k] = np.nan_to_num(res.values["score"]).astype(np.int64)
            reason[k] = res.values["reason"]
            if self.revise:
                revision[k] = res.values["revision"]
        llm.flush()
        ok = outcome <= Outcome.EXTRACTED
        keep = pa.array(np.flatnonzero(ok))
        rev = None
        if self.revise:
            r = np.strings.strip(revision[ok])
            rev = pa.array(np.where(r != "", r, None).astype(object) if r.shape[0] else [], pa.large_string())
        labels = make_labels(rows.take(keep), source, score=score[ok].astype(np.int8),
                             rationale=pa.array(reason[ok].astype(object), pa.large_string()), revision=rev)
        counts = count_rows(dec, ok, extracted=outcome == Outcome.EXTRACTED, failed=outcome == Outcome.FAILED)
        return JudgeResult(source, labels, counts)


def judge_policy(garbage: float = 0.0, prose: float = 0.0, stream: str = "mock:judge"):
    """A mock-engine judge: deterministic judgements keyed by (seed, prompt, tick).

    It reads the agent's reply out of the judge prompt: a reply holding a JSON
    object scores 5, anything else 2; the revision is the reply's JSON object
    (or the reply). A share ``garbage`` of requests is answered with text no
    parser accepts (and so is their extraction call): those rows must end
    with no label. A share ``prose`` answers ``Score: N ...`` in prose, which
    the extraction call turns into JSON (the extraction path).
    """

    def policy(batch: RequestBatch, seed: int) -> np.ndarray:
        req = np.repeat(np.asarray(batch.prompts, dtype=STR), batch.n)
        u = EntityRng(seed, stream, batch.tick).random(batch.entities)
        is_extract = np.strings.find(req, EXTRACT_MARK) >= 0
        revise = np.strings.find(req, '"revision"') >= 0
        reply = extract(req, r"(?s).*\nReply: <<<quote>>>(?P<v>.*)<<<end quote>>>\nJudgement:$")
        quoted = extract(req, r"(?s)Answer: <<<quote>>>(?P<v>.*)<<<end quote>>>")
        has_json = np.strings.find(reply, "{") >= 0
        score = np.where(has_json, 5, 2)
        obj = extract(reply, r"(?P<v>\{[^\n]*\})")
        rev = _json_str(np.where(obj != "", obj, np.strings.strip(reply)))
        tail = np.where(revise, np.strings.add(np.strings.add(', "revision": "', rev), '"}'), "}")
        json_reply = np.strings.add(np.strings.add(np.strings.add(
            ' {"score": ', score.astype(STR)), ', "reason": "mock judgement"'), tail)
        prose_reply = np.strings.add(np.strings.add("Score: ", score.astype(STR)), " - looks right to me.")
        junk = "I cannot judge this."
        answer = np.where(u < garbage, junk, np.where(u < garbage + prose, prose_reply, json_reply))
        # the extraction call: read "Score: N" out of the quoted answer; junk stays junk
        ex_score = extract(quoted, r"Score: (?P<v>[1-5])")
        ex_tail = np.where(revise, ', "revision": ""}', "}")
        ex_reply = np.strings.add(np.strings.add(np.strings.add(' {"score": ', ex_score), ', "reason": "extracted"'),
                                  ex_tail)
        return np.where(is_extract, np.where(ex_score != "", ex_reply, junk), answer).astype(STR)

    return policy
