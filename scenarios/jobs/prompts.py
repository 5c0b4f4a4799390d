"""Prompts of the job market: apply, screen + interview question, answer, offer, respond.

Every text is a :class:`~socius.llm.templates.Template`. Text one side
wrote for the other (a CV line in a shortlist, an interview question, an
answer) is an *untrusted* field: quoted and defused, so it cannot pose as
instructions. Lists (job ads, applicants, candidates, offers) are numbered
from 1; a reply names numbers, ``0`` or ``""`` meaning none. Each prompt ends
with a cue, so base and instruction-tuned models both continue with the
JSON reply (enforced by constrained decoding where the engine supports it).
"""
from __future__ import annotations

APPLY = (
    "# Job search\n"
    "You are {name}, looking for work. Your CV: {cv}\n"
    "You have been looking for {weeks} weeks. You hope for about {expected}k a year.\n\n"
    "Job ads found for you (match = how well the ad fits your CV, 0..1):\n{ads}\n\n"
    "Which of these jobs do you apply to? Apply only where the job, place and pay suit you. Reply with the "
    'numbers of the ads, e.g. {{"apply": "2, 3"}}, or {{"apply": ""}} for none.\n'
    "Answer:"
)

SCREEN = (
    "# Screening applications\n"
    "You hire for: {ad}\n\n"
    "Applicants (best match first):\n{applicants}\n\n"
    "Whom do you invite to an interview (at most {max_invites})? Write one interview question for them. "
    'Reply with the applicants\' numbers, e.g. {{"invite": "1, 4", "question": "What ...?"}}, or '
    '{{"invite": "", "question": ""}} to invite nobody.\n'
    "Answer:"
)

ANSWER = (
    "# Job interview\n"
    "You are {name}. Your CV: {cv}\n"
    "You interview for: {job}\n"
    "The interviewer asks: {question}\n\n"
    'Answer the question in two or three sentences, in the first person. Reply as {{"answer": "..."}}.\n'
    "Answer:"
)

OFFER = (
    "# Hiring decision\n"
    "You hire for: {ad}\n"
    "Salary band: {low}k to {high}k a year.\n\n"
    "Candidates you interviewed, with their answers:\n{candidates}\n\n"
    "Do you make an offer, and to whom? Give the candidate number (0 = nobody) and the yearly salary in "
    'thousands. Reply as {{"offer": N, "salary": S}}.\n'
    "Answer:"
)

RESPOND = (
    "# Job offers\n"
    "You are {name}. Your CV: {cv}\n"
    "You have been looking for {weeks} weeks and hoped for about {expected}k a year.\n\n"
    "Offers:\n{offers}\n\n"
    'Which offer do you accept (0 = decline them all)? Reply as {{"accept": N}}.\n'
    "Answer:"
)

#: The CV and the job ad are built from profile columns; these are their layouts (all fields are columns).
CV = ("{experience} years of experience in {field}. Skills: {skills}. Based in {location}. "
      "Education: {education}.")
AD = ("{title} at {employer} ({location}). Requirements: {requirements}; at least {min_experience} years of "
      "experience. Salary {low}k to {high}k a year.")

#: Constrained decoding of the list replies (after the ``Answer:`` cue; the leading space is optional).
#: No bounded repeats: xgrammar compiles ``{0,240}`` slowly; ``max_tokens`` bounds the length.
NUMBERS = r'"([0-9]+(, ?[0-9]+)*)?"'
APPLY_REGEX = r' ?\{"apply": ?' + NUMBERS + r'\}'
SCREEN_REGEX = r' ?\{"invite": ?' + NUMBERS + r', ?"question": ?"[^"\\\n]*"\}'  # unbounded: compiles fast
