"""Prompts of the group discussion: first-person turns, third-person scripts, stance polls.

Every text is a :class:`~socius.llm.templates.Template` (``{field}``
slots, literal braces doubled). Text written by agents (a room's transcript,
a mention) is an *untrusted* field: it is quoted and defused so it cannot
pose as instructions. Each prompt ends with a cue the model continues, so
base models (the embedded Gemma 3 270M) and instruction-tuned ones both work;
constrained decoding enforces the JSON replies where the engine supports it.

Fields
------
Per room: ``{statement}`` (the topic as a statement to agree or disagree
with), ``{members}`` (the participants' names), ``{transcript}`` (this round
so far), ``{participants}`` (script mode: one line per participant with age,
occupation and view), ``{turns}`` (script mode: lines to write), ``{opener}``
(script mode: who speaks first; the prompt ends with ``Name:`` so that a
base model continues the first message in the line format).
Per agent: ``{name}``, ``{age}``, ``{occupation}``, ``{leaning}``,
``{view}`` (``4 of 5 (agree)``), ``{previous}`` (the last polled stance,
1..5), ``{note}`` (who addressed the agent, or empty).
"""
from __future__ import annotations

import numpy as np

from socius.ecs import STR

#: Stance levels 1..5 and how a level reads in a prompt.
LEVELS = ("strongly disagree", "disagree", "undecided", "agree", "strongly agree")

SPEAK = (
    "# Group discussion\n"
    'Statement under discussion: "{statement}"\n'
    "Participants: {members}\n\n"
    "You are {name}, {age}, {occupation}. Your view on the statement: {view}.{note}\n"
    "The discussion so far:\n{transcript}\n\n"
    "Write your next message in the discussion, in the first person, in one or two sentences that fit "
    'your view. You may address another participant as @Name. Reply as {{"message": "..."}}.\n'
    "Reply:"
)

#: Within a round: the previous speaker addressed this agent; across rounds: someone did last round.
NOTE_MENTION = " {who} addressed you: {said}"

SCRIPT = (
    "# Group discussion script\n"
    'Write the discussion of a group about the statement: "{statement}"\n'
    "Participants (name, age, occupation, view from 1 = strongly disagree to 5 = strongly agree):\n"
    "{participants}\n\n"
    'Write exactly {turns} lines, one message per line, each as "Name: message". Every participant '
    "speaks in character and in line with their view; they may address each other as @Name.\n"
    "Discussion:\n"
    "{opener}:"
)

POLL_FIRST = (
    "# Opinion poll\n"
    'Statement: "{statement}"\n'
    "You are {name}, {age}, {occupation}; on this topic you are {leaning}.\n"
    "How much do you agree with the statement, from 1 (strongly disagree) to 5 (strongly agree)? "
    'Reply as {{"stance": N}}.\n'
    "Answer:"
)

POLL_AFTER = (
    "# Opinion poll\n"
    'Statement: "{statement}"\n'
    "You are {name}, {age}, {occupation}; on this topic you are {leaning}.\n"
    "Your view before the discussion: {previous} of 5.\n"
    "The discussion in your group:\n{transcript}\n\n"
    "After this discussion, how much do you agree with the statement, from 1 (strongly disagree) to "
    '5 (strongly agree)? Reply as {{"stance": N}}.\n'
    "Answer:"
)

NOBODY_YET = "(nobody has spoken yet)"


def view_text(stance: np.ndarray) -> np.ndarray:
    """``[n]`` ``"4 of 5 (agree)"`` for stances 1..5."""
    s = np.clip(np.asarray(stance, dtype=np.int64), 1, 5)
    words = np.array(LEVELS, dtype=STR)[s - 1]
    return np.strings.add(np.strings.add(np.strings.add(s.astype(STR), " of 5 ("), words), ")")
