"""The mock engine's policy for the social-network scenario: S3-like dynamics without an LLM.

It reads each prompt as a model would — one vectorised regex over the last
part of every prompt (the summary line before ``Answer:``) — and answers:

* **action**: share (post or forward) with probability
  ``share · novelty · (1.5 if the strongest mood read was intense)``, where
  ``novelty = exp(-hours since the agent heard of the event / novelty)``;
  agents who read posts forward with probability ``forward``, the others post.
  Interest fades, so posting dies down and the number of aware agents
  follows an S-curve.
* **emotion**: ``0.5 · own level + (0.9 · strongest level read + 0.5 · min(posts
  read, 3) / 3) · novelty`` plus a little noise, rounded to calm / moderate / intense: it rises as intense
  posts arrive and decays as the news gets old.
* **attitude**: ``converge`` moves the stance a share ``influence`` towards
  the average stance read (opinions converge); ``polarise`` moves it towards
  the end of the scale on its own side, faster when the posts read agree
  (echo chambers polarise).

Every draw is keyed by (seed, entity, tick).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from socius.ecs.rng import EntityRng
from socius.ecs import STR
from socius.llm import RequestBatch

from .prompts import EMOTIONS, SUMMARY_REGEX

TAIL = 200  # characters of each prompt the policy reads (the summary line sits right before the end)

_ATT = np.array(["%.2f" % (i / 100) for i in range(-100, 101)], dtype=STR)  # JSON numbers -1.00 .. 1.00
_OPENERS = np.array(["Reading about this.", "Hmm, this matters.", "I can't believe this!"], dtype=STR)
_STANCES = np.array([" It is wrong and must stop.", " Not sure what to think yet.", " Good news, honestly."],
                    dtype=STR)


def social_policy(share: float = 0.6, forward: float = 0.6, novelty: float = 3.0, dynamics: str = "converge",
                  influence: float = 0.3):
    emotions = np.array(EMOTIONS, dtype=STR)

    def policy(batch: RequestBatch, seed: int) -> np.ndarray:
        prompts = batch.prompts_arrow.cast(pa.large_binary())
        tail = pc.binary_slice(prompts, start=-TAIL)  # bytes: no scan for code points
        m = pc.extract_regex(tail, pattern=SUMMARY_REGEX)
        ok = m.is_valid().to_numpy(zero_copy_only=False)

        def num(name: str, default: str) -> np.ndarray:
            col = m.field(name).cast(pa.large_string())
            col = pc.if_else(pc.or_(pc.is_null(col), pc.equal(col, "")), default, col)
            return np.repeat(pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False), batch.n)

        def level(name: str) -> np.ndarray:
            col = m.field(name).cast(pa.large_string())
            col = pc.if_else(pc.is_null(col), "calm", col)
            return np.repeat(pc.index_in(col, value_set=pa.array(list(EMOTIONS))).fill_null(0).to_numpy(), batch.n)

        n_posts, avg, stance, ago = num("n", "0"), num("avg", "0"), num("stance", "0"), num("ago", "0")
        peak, mood = level("peak"), level("mood")
        u = EntityRng(seed, "mock:social", batch.tick).random(batch.entities, 4)
        fresh = np.exp(-ago / max(novelty, 1e-9))
        p_share = np.minimum(share * fresh * np.where(peak == 2, 1.5, 1.0), 1.0)
        shares = u[:, 0] < p_share
        fwd = shares & (n_posts > 0) & (u[:, 1] < forward)
        action = np.where(shares, np.where(fwd, "forward", "post"), "idle").astype(STR)
        arousal = 0.5 * mood + (0.9 * peak + 0.5 * np.minimum(n_posts, 3) / 3) * fresh
        new_level = np.clip(np.round(arousal + (u[:, 2] - 0.5) * 0.6), 0, 2).astype(np.int64)
        pull = np.where(n_posts > 0, avg - stance, 0.0)
        if dynamics == "polarise":
            side = np.where(stance >= 0, 1.0, -1.0)
            agree = np.where(n_posts > 0, np.clip(avg * side, 0.0, 1.0), 0.0)
            new_stance = stance + influence * (0.3 + agree) * (side - stance)
        else:
            new_stance = stance + influence * pull
        new_stance = np.clip(new_stance + (u[:, 3] - 0.5) * 0.04, -1.0, 1.0)
        att = _ATT[np.round(new_stance * 100).astype(np.int64) + 100]
        text = np.where(action == "post",
                        np.strings.add(_OPENERS[new_level], _STANCES[np.digitize(new_stance, [-0.2, 0.2])]), "")
        ls = lambda x: pa.array(x, type=pa.large_string()) if isinstance(x, np.ndarray) else \
            pa.scalar(x, pa.large_string())  # noqa: E731
        reply = pc.binary_join_element_wise(*map(ls, (
            '{"action": "', action, '", "emotion": "', emotions[new_level], '", "attitude": ', att,
            ', "text": "', text, '"}', ""))).to_numpy(zero_copy_only=False).astype(STR)
        # a prompt the policy does not recognise gets an idle reply (e.g. an extraction call)
        ok_c = np.repeat(ok, batch.n)
        return np.where(ok_c, reply, '{"action": "idle", "emotion": "calm", "attitude": 0, "text": ""}').astype(STR)

    return policy
