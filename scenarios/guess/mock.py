"""The mock engine's policy for the guess game: plausible dynamics without an LLM.

It reads the prompt as a model would (vectorised regex over the batch): in
round 1 players mix level-k reasoning (50 · p^k for k = 0..3, plus noise); from
round 2 they answer near ``p`` times the previous winning number, or a bit
below it, as the paper's agents did (§4.3, Fig. 11). A small share answers in
prose so the extraction path runs; the extraction call is answered by
reading the number out of the quoted reply. Every draw is keyed by
(seed, entity, tick). Background-writing prompts get a short invented persona.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from socius.ecs.rng import EntityRng
from socius.ecs import STR
from socius.llm import RequestBatch

PROSE_SHARE = 0.05


def _number_in(prompts: np.ndarray, pattern: str) -> np.ndarray:
    found = pc.extract_regex(pa.array(prompts, type=pa.large_string()), pattern=pattern)
    raw = pc.if_else(found.is_valid(), found.field("v"), "nan")
    return pc.cast(raw, pa.float64()).to_numpy(zero_copy_only=False)


def guess_policy(p: float, max_value: float = 100.0):
    def policy(batch: RequestBatch, seed: int) -> np.ndarray:
        rng = EntityRng(seed, "mock:guess", batch.tick)
        u = rng.random(batch.entities, 3)
        # read each distinct request once (the prompt is shared by its n completions), then repeat
        req = batch.prompts
        persona = np.repeat(np.strings.find(req, "[PERSONA BEGIN]") >= 0, batch.n)
        extract = np.repeat(np.strings.find(req, "<<<quote>>>") >= 0, batch.n)
        quoted = np.repeat(_number_in(req, r"<<<quote>>>\D*(?P<v>\d+(?:\.\d+)?)"), batch.n)
        # the prompt's own round line (the last "Round N." line; few-shot examples come before it)
        line = pc.extract_regex(pa.array(req, type=pa.large_string()), pattern=r"(?s).*\n(?P<v>Round \d+\.[^\n]*)")
        line = pc.if_else(line.is_valid(), line.field("v"), "").to_numpy(zero_copy_only=False).astype(STR)
        prev = np.repeat(_number_in(line, r"winning number (?:of the previous round )?was (?P<v>\d+(?:\.\d+)?)"),
                         batch.n)
        level = np.floor(u[:, 0] * 4)
        first = 50.0 * p ** level + (u[:, 1] - 0.5) * 10.0
        later = prev * np.where(u[:, 0] < 0.5, p, 0.9) + (u[:, 1] - 0.5) * 4.0
        x = np.clip(np.where(np.isnan(prev), first * max_value / 100.0, later), 0, max_value)
        x = np.where(extract & ~np.isnan(quoted), quoted, x)
        nums = np.round(x).astype(np.int64).astype(STR)
        json_reply = np.strings.add(np.strings.add(' {"number": ', nums), "}")
        prose = np.strings.add("I would go with ", nums)
        reply = np.where(~extract & (u[:, 2] < PROSE_SHARE), prose, json_reply)
        return np.where(persona, _backgrounds(u), reply).astype(STR)

    return policy


def _backgrounds(u: np.ndarray) -> np.ndarray:
    traits = np.array(["careful and analytical", "curious and sociable", "impatient but clever",
                       "calm and methodical", "competitive and bold"], dtype=STR)
    t = traits[(u[:, 0] * traits.shape[0]).astype(np.int64)]
    return np.strings.add(np.strings.add("Grew up in a small town; ", t), ", enjoys puzzles.")
