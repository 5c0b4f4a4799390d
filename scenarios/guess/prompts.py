"""Prompt templates of the guess-p-of-the-average game (AgentScope large-scale paper, §3.4 and §4).

Every text here is a ``str.format`` template: named fields in ``{field}`` form,
literal braces doubled (``{{"number": 42}}`` renders as ``{"number": 42}``).
Render one prompt per agent with a vectorised renderer
(``socius.population.render_template``) or, for one prompt, ``str.format``.

Fields
------
Per run (one value for everybody):
  ``{max_value}``   upper end of the range, 100 in the paper
  ``{p_text}``      the ratio as players read it: ``2/3``, ``1/2``, ``1/3``
  ``{offset}``      the constant of the ``nash10`` game (5; with ``p = 1/2`` the equilibrium is 10)
  ``{n_groups}``    number of groups in the ``group`` game (3 in the paper)
  ``{n_players}``, ``{population_mix}``  the optional population note (§4.5)
Per round (one value per round, or per group and round):
  ``{round}``            1-based round number
  ``{previous_winner}``  winning number of the previous round, written ``%.2f``
  ``{winner_history}``   all earlier winning numbers, e.g. ``33.10, 24.80``
  ``{group_numbers}``    every group's number last round, e.g. ``A: 41.20, B: 35.75, C: 30.10``
  ``{group}``            the agent's group name
Per agent:
  ``{name}``, ``{education}``, ``{occupation}``, ``{background}`` (profile columns),
  ``{own_numbers}`` (the agent's earlier numbers), ``{reply}`` (extraction prompt only)

Layout and prefix caching
-------------------------
A decision prompt is, in order: intro, rules, notes, answer format, few-shot
examples, round line, group line, player profile, answer cue. Everything up to the
round line is the same for every agent of a run, the round line for every agent
of a round, the group line for every agent of a group; the per-agent profile comes
last, just before the cue, so that the prompts of a whole population share one long
prefix in the engine's prefix cache. With the ``anonymous`` profile all prompts of a
round are identical: one request with ``n`` = number of agents serves them all.

Base models
-----------
The embedded model is the *base* Gemma 3 270M (no chat template, no instruction
tuning), so every decision prompt is also a few-shot completion prompt: two or
three worked examples of other players in exactly the reply format (:mod:`.few_shot`),
then the agent's own case ending in ``Answer:`` (direct style) or ``Reasoning:`` (reasoned
style), so the continuation is the answer. Constrained decoding
(:data:`REPLY_REGEX` / :data:`NUMBER_SCHEMA`) enforces the format. Few-shot numbers
anchor small models; pass ``few_shot=False`` to :func:`decision_template` for
instruction-tuned engines that do not need them.

AgentScope makes a second call per agent to extract the number from the free
reply; :data:`EXTRACT_PROMPT` is that call (few-shot too, reply ``{"number": N}``
or ``{"number": null}``).
"""
from __future__ import annotations

from types import MappingProxyType

from .few_shot import EXAMPLES_HEADER, FEW_SHOT

# ---------------------------------------------------------------------------------------------
# system / background prefix

#: Intro of the plain game (Prompts 3.4 and 4.3).
SYSTEM_PREFIX = "You are playing a multiplayer game.\n\n"

#: Intro when agents carry a generated character background (Prompt 4.5); the
#: background itself comes last, in the player profile.
ROLE_PREFIX = ("You are playing a role in a multiplayer game. Make sure your behaviour fits your character "
               "background, which is given with your name below.\n\n")

# ---------------------------------------------------------------------------------------------
# rules

#: The note added in §4.7 (prior knowledge) so that p = 1/2 or 1/3 is read as the classic game.
FAMOUS_GAME_NOTE = 'This game is a variation of the famous "guess 2/3 of the average" game.\n'

RULES = MappingProxyType({
    # §4.1: the classic game; p configurable (2/3, 1/2, 1/3). Nash equilibrium: 0.
    "classic": (
        "# Game rules\n"
        "1. Each player reports a real number between 0 and {max_value}, inclusive.\n"
        "2. The winner is the player whose number is closest to {p_text} of the average of all reported "
        "numbers.\n"
    ),
    # §4.7: the target is offset + p * average, so the Nash equilibrium is offset / (1 - p) (10 for 5 and 1/2).
    "nash10": (
        "# Game rules\n"
        "1. Each player reports a real number between 0 and {max_value}, inclusive.\n"
        "2. The winner is the player whose number is closest to {offset} plus {p_text} of the average of "
        "all reported numbers.\n"
    ),
    # §4.6: a group's number is the mean of its players' numbers; the group closest to p times the
    # mean of the group numbers wins.
    "group": (
        "# Game rules\n"
        "1. The players are divided into {n_groups} groups.\n"
        "2. Each player reports a real number between 0 and {max_value}, inclusive.\n"
        "3. The average of the numbers reported by the players of a group is that group's number.\n"
        "4. The winning group is the group whose number is closest to {p_text} of the average of all "
        "groups' numbers.\n"
    ),
})

# ---------------------------------------------------------------------------------------------
# the four prompt variants (§3.4, §4.4): notes and the default reply style

NOTE_RATIONAL = "1. All players are rational.\n"
NOTE_STRATEGIES = "2. All players will try to guess the others' strategies to adjust their own strategies.\n"
#: §4.5: added when agents carry a background.
NOTE_BACKGROUND = "Please strictly follow your character background in the game.\n"
#: §4.5: optional, e.g. n_players = 1000, population_mix = "200 at each education level: Elementary
#: School, High School, Bachelor's Degree, Master's Degree and Ph.D."
POPULATION_NOTE = "There are {n_players} players in total, {population_mix}.\n"

#: variant -> (notes, default reply style). ``basic`` is Prompt 3.4 (report directly),
#: ``cot`` Prompt 3.4 with "think step by step", ``rational`` and ``strategic`` the two
#: detailed-instruction prompts of §4.4 (Prompt 4.3: all players are rational; and
#: additionally: all players guess the others' strategies).
VARIANTS = MappingProxyType({
    "basic": ("", "direct"),
    "cot": ("", "reasoned"),
    "rational": (NOTE_RATIONAL, "reasoned"),
    "strategic": (NOTE_RATIONAL + NOTE_STRATEGIES, "reasoned"),
})

#: How to answer, per reply style (the paper's two user prompts, with our reply format).
ANSWER_FORMAT = MappingProxyType({
    "direct": ("# Answer format\n"
               'Directly report your number without additional information, as {{"number": N}}.\n'),
    "reasoned": ("# Answer format\n"
                 "Think step by step and then report your number: write your reasoning in one paragraph "
                 'after "Reasoning:", then your number after "Answer:" as {{"number": N}}.\n'),
})

#: The text that the model continues, per reply style.
ANSWER_CUE = MappingProxyType({"direct": "Answer:", "reasoned": "Reasoning:"})

# ---------------------------------------------------------------------------------------------
# round information (shared by every agent of a round) and the per-agent profile

ROUND_FIRST = "Round {round}. This is the first round.\n"
#: Round 2+: the previous winning number (AgentScope: "The winner number of this round is ...").
ROUND_NEXT = "Round {round}. The winning number of the previous round was {previous_winner}.\n"
#: Round 2+ of the group game: every group's number as well (§4.6).
ROUND_NEXT_GROUP = ("Round {round}. In the previous round the groups reported {group_numbers}; "
                    "the winning number was {previous_winner}.\n")
#: Optional, after the round line: the whole history of winning numbers.
WINNER_HISTORY = "Winning numbers of all earlier rounds: {winner_history}.\n"
#: The agent's own group (group game); shared by the agents of a group, so it precedes the profile.
GROUP_LINE = "Group: {group}\n"

#: The per-agent part. ``anonymous`` keeps every prompt of a round identical.
PROFILES = MappingProxyType({
    "anonymous": "Player: a participant\n",
    "name": "Player: {name}\n",
    "education": "Player: {name}, education: {education}\n",
    "occupation": "Player: {name}, occupation: {occupation}\n",
    "background": "Player: {name}\nCharacter background: {background}\n",
})
#: Optional, after the profile: the agent's own earlier numbers (AgentScope agents keep them in memory).
OWN_HISTORY = "Your numbers in earlier rounds: {own_numbers}\n"

# ---------------------------------------------------------------------------------------------
# the second call: extract the number from a free reply

EXTRACT_PROMPT = (
    "You need to extract the number that the speaker finally reports from the text. Reply with "
    '{{"number": N}}, or with {{"number": null}} if the text reports no number.\n\n'
    "Text: Most players will choose around 30, so I will go with 20.\n"
    'Number: {{"number": 20}}\n\n'
    "Text: The average could be 50 and two thirds of it is 33.3, but others will go lower. "
    "I report 22.5 as my final answer.\n"
    'Number: {{"number": 22.5}}\n\n'
    "Text: I am not sure what to do in this game.\n"
    'Number: {{"number": null}}\n\n'
    "Text: {reply}\n"
    "Number:"
)

# ---------------------------------------------------------------------------------------------
# reply formats for constrained decoding (numbers 0..100 with at most two decimals;
# the parser still checks [0, max_value] when max_value is not 100)

NUMBER_REGEX = r"(100(\.0{1,2})?|[1-9]?[0-9](\.[0-9]{1,2})?)"

#: Regex per reply style of what the model writes after the cue (note the leading space).
REPLY_REGEX = MappingProxyType({
    "direct": r' \{"number": ' + NUMBER_REGEX + r"\}",
    "reasoned": r" [^\n{}]{1,600}\nAnswer: \{\"number\": " + NUMBER_REGEX + r"\}",
})
EXTRACT_REGEX = r' \{"number": (' + NUMBER_REGEX + r"|null)\}"

#: JSON schema of the reply object (direct style / extraction without null).
NUMBER_SCHEMA = MappingProxyType({
    "type": "object",
    "properties": {"number": {"type": "number", "minimum": 0, "maximum": 100}},
    "required": ["number"],
    "additionalProperties": False,
})

#: Stop strings per reply style (a base model would otherwise write the next example).
STOP = MappingProxyType({"direct": ("\n",), "reasoned": ("\n\n", "\nRound "), "extract": ("\n",)})


def decision_template(game: str = "classic", variant: str = "basic", *, profile: str = "name",
                      first_round: bool = True, style: str | None = None, famous_note: bool = False,
                      population_note: bool = False, few_shot: bool = True, winner_history: bool = False,
                      own_history: bool = False) -> str:
    """The full decision-prompt template for one configuration, still with its ``{fields}``.

    ``game``: ``classic`` | ``nash10`` | ``group``; ``variant``: ``basic`` | ``cot`` |
    ``rational`` | ``strategic``; ``profile``: a key of :data:`PROFILES` (``background``
    switches to :data:`ROLE_PREFIX` and adds :data:`NOTE_BACKGROUND`); ``style``
    overrides the variant's reply style (``direct`` | ``reasoned``). Pure string
    assembly, called once per configuration and round kind, never per agent.
    """
    if game not in RULES:
        raise ValueError(f"game: must be one of {', '.join(RULES)}, got {game!r}")
    if variant not in VARIANTS:
        raise ValueError(f"prompt variant: must be one of {', '.join(VARIANTS)}, got {variant!r}")
    if profile not in PROFILES:
        raise ValueError(f"profile: must be one of {', '.join(PROFILES)}, got {profile!r}")
    notes, default_style = VARIANTS[variant]
    style = style or default_style
    if style not in ANSWER_FORMAT:
        raise ValueError(f"reply style: must be one of {', '.join(ANSWER_FORMAT)}, got {style!r}")
    rules = RULES[game]
    if famous_note:
        rules = rules.replace("# Game rules\n", "# Game rules\n" + FAMOUS_GAME_NOTE, 1)
    extra = ([NOTE_BACKGROUND] if profile == "background" else []) + ([POPULATION_NOTE] if population_note else [])
    n_notes = notes.count("\n")
    notes += "".join(f"{n_notes + i + 1}. {line}" for i, line in enumerate(extra))
    parts = [ROLE_PREFIX if profile == "background" else SYSTEM_PREFIX, rules, "\n"]
    if notes:
        parts += ["# Note\n", notes, "\n"]
    parts += [ANSWER_FORMAT[style], "\n"]
    if few_shot:
        parts += [EXAMPLES_HEADER, FEW_SHOT[(game, style)]]
    if first_round:
        parts.append(ROUND_FIRST)
    else:
        parts.append(ROUND_NEXT_GROUP if game == "group" else ROUND_NEXT)
        if winner_history:
            parts.append(WINNER_HISTORY)
    if game == "group":
        parts.append(GROUP_LINE)
    parts.append(PROFILES[profile])
    if own_history and not first_round:
        parts.append(OWN_HISTORY)
    parts.append(ANSWER_CUE[style])
    return "".join(parts)


def p_text(p: float) -> str:
    """The ratio as players read it (``{p_text}``): ``2/3``, ``1/2``, … or ``%g``."""
    for num, den in ((2, 3), (1, 2), (1, 3), (3, 4), (1, 4)):
        if abs(p - num / den) < 1e-9:
            return f"{num}/{den}"
    return f"{p:g}"


def group_numbers_text(means: list) -> str:
    """``{group_numbers}`` from last round's ``[k]`` group means (empty groups, NaN, left out)."""
    return ", ".join(f"group {i + 1}: {m:.2f}" for i, m in enumerate(means) if m == m)
