"""LLM-written backgrounds: one meta prompt per agent from its sampled attributes.

:func:`background_prompts` renders one meta prompt per agent (AgentScope
§3.3, App. B: sampled attributes as JSON filled into a meta prompt) with numpy
string operations; identical attribute rows give identical prompts, so a
decision pipeline can send each distinct prompt once with ``n`` = its count.
"""
from __future__ import annotations

import string
from typing import Any, Mapping

import numpy as np

from .templates import attributes_json, common_length, render_template

#: Stop string of a background reply (the meta prompt ends inside an open persona block).
BACKGROUND_STOP = "[PERSONA END]"

#: Meta prompt for LLM-written backgrounds (AgentScope §3.3 and App. B): the sampled
#: attributes go in as JSON, a detailed character comes out. It is a few-shot
#: completion prompt — it also works for base models — whose only per-agent part,
#: ``{attributes}``, comes last so that every agent's prompt shares the long prefix.
#: Use diverse sampling (temperature ~1, per-request seeds) for varied backgrounds.
BACKGROUND_META_PROMPT = (
    "You write character backgrounds for the people of a social simulation. Each person is given as a "
    "JSON object of attributes (such as age, gender, education and occupation). Expand it into a short, "
    "concrete and believable character: keep every given attribute exactly as given, invent a fitting name "
    "if none is given, and add personality, habits, life experience and how this person usually makes "
    "decisions. Write in the third person, at most 80 words, in the format below, and end with "
    "[PERSONA END].\n"
    "\n"
    'Attributes: {{"gender": "Female", "age": 46, "education": "Master\'s Degree", "occupation": "Pharmacist"}}\n'
    "[PERSONA BEGIN]\n"
    "- Name: Helen Okafor\n"
    "- Gender: Female\n"
    "- Age: 46 years old\n"
    "- Personality: Careful and methodical, Helen double-checks everything, from prescriptions to her "
    "family's budget. She earned her master's degree while working night shifts and trusts numbers more "
    "than rumours. She is patient with people but dislikes taking risks, and prefers to think a problem "
    "through before she answers.\n"
    "[PERSONA END]\n"
    "\n"
    'Attributes: {{"gender": "Male", "age": 23, "education": "High School", "occupation": "Athlete"}}\n'
    "[PERSONA BEGIN]\n"
    "- Name: Diego Santos\n"
    "- Gender: Male\n"
    "- Age: 23 years old\n"
    "- Personality: A competitive semi-professional footballer who trusts his instincts. Diego left school "
    "to train full time, loves quick decisions and friendly rivalry, and would rather act fast than "
    "overthink. Outgoing and optimistic, he learns best by trying things out.\n"
    "[PERSONA END]\n"
    "\n"
    "Attributes: {attributes}\n"
    "[PERSONA BEGIN]\n"
)


def background_prompts(columns: Mapping[str, np.ndarray], meta_template: str = BACKGROUND_META_PROMPT,
                       attributes: list[str] | None = None) -> np.ndarray:
    """``[n] StringDType``: one background-generation prompt per agent.

    ``meta_template`` uses ``{column}`` fields (``str.format`` syntax) filled from
    ``columns``; the field ``{attributes}`` (when no column has that name) is the
    row's attributes as JSON (:func:`attributes_json` over ``attributes``,
    default: every column). Rendering is vectorised and a pure function of the
    row's values, so identical attribute combinations give identical prompts:
    ``np.unique(prompts, return_inverse=True)`` gives one request per distinct
    combination (ask for ``n`` = its count completions to vary them).
    """
    if not columns:
        raise ValueError("background_prompts: no columns")
    fields: dict[str, Any] = dict(columns)
    names = {nm for _, nm, _, _ in string.Formatter().parse(meta_template) if nm}
    if "attributes" in names and "attributes" not in columns:
        fields["attributes"] = attributes_json(columns, attributes)
    return render_template(meta_template, fields, n=common_length(columns))


__all__ = ["BACKGROUND_META_PROMPT", "BACKGROUND_STOP", "background_prompts"]
