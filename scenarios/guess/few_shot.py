"""Few-shot examples of the guess game's decision prompt: (game, reply style) -> worked cases.

The embedded model is a base model, so every decision prompt shows two or
three other players answering in exactly the layout of the agent's own case
(round line, group line, profile, then the answer) before that case; see
:mod:`.prompts` for where they go. Like every text of :mod:`.prompts`, they are
``str.format`` templates (``{p_text}``, ``{offset}``; literal braces doubled).
"""
from __future__ import annotations

from types import MappingProxyType

EXAMPLES_HEADER = "# Answers of other players\n\n"

_DIRECT = {
    "classic": (
        "Round 1. This is the first round.\n"
        "Player: Maria Rossi, occupation: teacher\n"
        'Answer: {{"number": 35}}\n\n'
        "Round 3. The winning number of the previous round was 21.40.\n"
        "Player: Tom Becker, education: Bachelor's Degree\n"
        'Answer: {{"number": 17}}\n\n'
        "Round 1. This is the first round.\n"
        "Player: Aiko Tanaka, occupation: nurse\n"
        'Answer: {{"number": 48}}\n\n'
    ),
    "nash10": (
        "Round 1. This is the first round.\n"
        "Player: Maria Rossi, occupation: teacher\n"
        'Answer: {{"number": 38}}\n\n'
        "Round 3. The winning number of the previous round was 19.60.\n"
        "Player: Tom Becker, education: Bachelor's Degree\n"
        'Answer: {{"number": 17}}\n\n'
        "Round 1. This is the first round.\n"
        "Player: Aiko Tanaka, occupation: nurse\n"
        'Answer: {{"number": 27}}\n\n'
    ),
    "group": (
        "Round 1. This is the first round.\n"
        "Group: A\n"
        "Player: Maria Rossi, occupation: teacher\n"
        'Answer: {{"number": 33}}\n\n'
        "Round 2. In the previous round the groups reported A: 41.20, B: 35.75, C: 30.10; "
        "the winning number was 23.84.\n"
        "Group: C\n"
        "Player: Tom Becker, education: Bachelor's Degree\n"
        'Answer: {{"number": 22}}\n\n'
    ),
}

_REASONED = {
    "classic": (
        "Round 1. This is the first round.\n"
        "Player: Maria Rossi, occupation: teacher\n"
        "Reasoning: If everyone picked at random, the average would be about 50 and the target {p_text} of "
        "that. Many players will think of this and pick lower, so I go one step further down.\n"
        'Answer: {{"number": 24}}\n\n'
        "Round 3. The winning number of the previous round was 21.40.\n"
        "Player: Tom Becker, education: Bachelor's Degree\n"
        "Reasoning: The winning numbers keep falling because everyone moves below the last target. I expect "
        "the others to go a little below 21.40, so I pick a number slightly lower than that.\n"
        'Answer: {{"number": 15}}\n\n'
    ),
    "nash10": (
        "Round 1. This is the first round.\n"
        "Player: Maria Rossi, occupation: teacher\n"
        "Reasoning: With random numbers the average would be about 50, so the target would be {offset} plus "
        "{p_text} of 50. Others will also lower their numbers, but the target can never fall below {offset}, "
        "so I aim between the two.\n"
        'Answer: {{"number": 26}}\n\n'
        "Round 3. The winning number of the previous round was 19.60.\n"
        "Player: Tom Becker, education: Bachelor's Degree\n"
        "Reasoning: The winning number is falling each round, but it stops where a number equals {offset} "
        "plus {p_text} of itself. I move a bit below the last winning number, towards that point.\n"
        'Answer: {{"number": 16}}\n\n'
    ),
    "group": (
        "Round 1. This is the first round.\n"
        "Group: A\n"
        "Player: Maria Rossi, occupation: teacher\n"
        "Reasoning: My group's number is the average of our numbers. If the groups average about 50, the "
        "target is {p_text} of that, and the other groups will aim lower too, so I pick a low number to pull "
        "my group down.\n"
        'Answer: {{"number": 25}}\n\n'
        "Round 2. In the previous round the groups reported A: 41.20, B: 35.75, C: 30.10; "
        "the winning number was 23.84.\n"
        "Group: C\n"
        "Player: Tom Becker, education: Bachelor's Degree\n"
        "Reasoning: Every group's number was above the winning number, and the others will go lower this "
        "round. My group must stay the lowest, so I pick a number below the last winning number.\n"
        'Answer: {{"number": 18}}\n\n'
    ),
}

FEW_SHOT = MappingProxyType({(g, "direct"): t for g, t in _DIRECT.items()}
                            | {(g, "reasoned"): t for g, t in _REASONED.items()})
