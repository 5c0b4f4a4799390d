"""Prompts of the social-network scenario (S3): one decision per acting agent and tick.

The prompt is a few-shot completion prompt (it works with base models such
as the embedded Gemma 3 270M, and with instruction-tuned ones): the
platform and the event, the answer format, two worked cases in exactly the
agent's own layout, then the agent's case ending in ``Answer:``. Everything
before the agent's case is the same for every agent of a run, so all
prompts share one long prefix in the engine's prefix cache.

The agent's case, in order: its profile; the posts it read (one line each) (each one rendered
by :data:`POST_LINE`, whose ``text`` — written by another agent — is
untrusted: quoted and defused by :class:`~socius.llm.templates.Template`);
a summary line with the count, the average stance and the strongest mood of
those posts, and its own mood, stance and since when it knows of the event.
The summary line comes last so that a reader (and the mock policy) finds the
agent's own figures right before ``Answer:``.

Fields: ``{headline}`` (per run); ``{name}``, ``{age}``, ``{occupation}``,
``{trait}``, ``{posts}`` (already rendered lines), ``{n_posts}``,
``{avg_stance}`` (``%+.2f``), ``{peak}``, ``{mood}``, ``{stance}``
(``%+.2f``), ``{heard}`` (per agent).
"""
from __future__ import annotations

EMOTIONS = ("calm", "moderate", "intense")
ACTIONS = ("idle", "post", "forward")   # stored as 0, 1, 2

INTRO = (
    "Microblog users read the posts of those they follow. News: \"{headline}\"\n"
    "Each hour a user posts about it, forwards a post, or stays idle, and gives their mood (calm, "
    "moderate, intense) and stance (-1.00 against .. +1.00 in favour).\n"
    'Answer as JSON: {{"action": "post"|"forward"|"idle", "emotion": "calm"|"moderate"|"intense", '
    '"attitude": -1..1, "text": "post, at most 140 characters, or empty"}}\n\n'
)

EXAMPLES = (
    "Profile: Maria, 34, nurse; cautious.\n"
    "- news: <<<quote>>>the event as reported<<<end quote>>>\n"
    "Summary: 1 new posts, average stance +0.00, strongest mood moderate. Your mood: calm. "
    "Your stance: -0.20. You have just heard of it.\n"
    'Answer: {{"action": "post", "emotion": "moderate", "attitude": -0.25, "text": "Not sure this is good."}}\n\n'
    "Profile: Kwame, 51, engineer; outspoken.\n"
    "- @u812 posted: <<<quote>>>Outrageous, everyone should know!<<<end quote>>>\n"
    "Summary: 1 new posts, average stance +0.60, strongest mood intense. Your mood: moderate. "
    "Your stance: +0.40. You heard of it 2 hours ago.\n"
    'Answer: {{"action": "forward", "emotion": "intense", "attitude": 0.55, "text": ""}}\n\n'
)

CASE = (
    "Profile: {name}, {age}, {occupation}; {trait}.\n"
    "{posts}"
    "Summary: {n_posts} new posts, average stance {avg_stance}, strongest mood {peak}. Your mood: {mood}. "
    "Your stance: {stance}. {heard}\n"
    "Answer:"
)

#: One line per post shown in the prompt; ``text`` is another agent's text (untrusted).
POST_LINE = "- @u{sender} {verb}: {text}\n"
NEWS_LINE = "- news: {text}\n"
NO_POSTS = "- (no new posts)\n"

HEARD_NOW = "You have just heard of it."
HEARD_AGO = "You heard of it {hours} hours ago."

STOP = ("\n",)

#: The mock policy (and any reader) finds the agent's own figures here, right before the answer cue.
SUMMARY_REGEX = (r"Summary: (?P<n>\d+) new posts, average stance (?P<avg>[-+]?\d+\.\d+), strongest mood "
                 r"(?P<peak>\w+)\. Your mood: (?P<mood>\w+)\. Your stance: (?P<stance>[-+]?\d+\.\d+)\. "
                 r"You (?:have just heard of it|heard of it (?P<ago>\d+) hours ago)\.\nAnswer:$")


def decision_text(few_shot: bool = True) -> str:
    """The whole decision template (intro, answer format, optional examples, the agent's case)."""
    return INTRO + (EXAMPLES if few_shot else "") + CASE
