"""The scenarios' rule judges on hand-made replies with known right and wrong answers.

Prompts are rendered from each scenario's own templates, so a judge that
stops reading them (a changed template) fails here.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from socius.app.registry import get_scenario
from socius.ecs import World
from socius.llm import Template


def rows(decision: str, prompts: list[str], completions: list[str], entities=None) -> pa.Table:
    """A replies table (the columns of socius.correct.load_replies) for hand-made cases."""
    m = len(completions)
    prompts = prompts if len(prompts) == m else prompts * m
    return pa.table({"run": ["t"] * m, "tick": [1] * m, "decision": [decision] * m, "kind": ["answer"] * m,
                     "entity": list(entities if entities is not None else range(m)), "prompt_hash": list(range(m)),
                     "prompt": pa.array(prompts, pa.large_string()), "completion": pa.array(completions, pa.large_string()),
                     "model": [""] * m, "adapter": [""] * m, "seed": [0] * m, "completion_index": [0] * m,
                     "error": [""] * m})


def scores(judge, table, world=None) -> list[int]:
    labels = judge.judge(table, world).labels
    assert labels.num_rows == table.num_rows and labels.column("rationale").null_count == 0
    return labels.column("score").to_pylist()


@pytest.mark.parametrize("name", ["guess", "social", "recommender", "discussion", "jobs"])
def test_every_llm_scenario_declares_a_rule_judge(name):
    sc = get_scenario(name)
    assert sc.judges and all(j.source.startswith("rule:") for j in sc.judges)


# ---------------------------------------------------------------- guess

def _guess_prompt(game="classic", style=""):
    from socius.scenarios.guess.config import GuessConfig
    from socius.scenarios.guess.scenario import make_decision
    cfg = GuessConfig(game=game, reply_style=style)
    d = make_decision(cfg, first_round=False)
    fields = {"p_text": "1/2" if game == "nash10" else "2/3", "round": 3, "max_value": 100, "offset": "5",
              "n_groups": 0, "previous_winner": "30.00", "group_numbers": "", "name": "Ann",
              "education": "PhD", "occupation": "nurse", "background": "", "group": 0}
    return d.template.render({k: fields[k] for k in d.template.fields}, 1)[0]


def test_guess_judge():
    from socius.scenarios.guess.judges import JUDGES
    judge = next(j for j in JUDGES if j.name == "guess_number")   # guess_outcome is tested in tests/correct
    direct = str(_guess_prompt())
    got = scores(judge, rows("guess", [direct], [' {"number": 20}', ' {"number": 150}', ' {"number": 80}',
                                                 "I would go with 20", ' {"number": 40}', "no idea"]))
    assert got == [5, 1, 2, 3, 4, 1]
    reasoned = str(_guess_prompt(style="reasoned"))
    got = scores(judge, rows("guess", [reasoned], [
        ' I go below the last winning number.\nAnswer: {"number": 35}',     # says below, answers above
        ' I go below the last winning number.\nAnswer: {"number": 25}',
        ' Two thirds of 30 is 20, so I pick 20.\nAnswer: {"number": 27}',   # names another number
    ]))
    assert got == [2, 5, 2]
    nash = str(_guess_prompt(game="nash10"))   # target <= 5 + 1/2 * 100 = 55
    assert scores(judge, rows("guess", [nash], [' {"number": 60}', ' {"number": 20}'])) == [2, 5]


# ---------------------------------------------------------------- jobs

def _apply_prompt():
    from socius.scenarios.jobs import prompts as P
    cv = P.CV.format(experience=3, field="software", skills="python, sql, cloud", location="Berlin",
                     education="Bachelor")
    ads = [("Software Developer", "Berlin", "python, sql, cloud", 2, 55, 70),      # fits
           ("Software Developer", "Munich", "python, sql, cloud", 2, 55, 70),      # another city
           ("Registered Nurse", "Berlin", "patient care, medication, triage", 0, 55, 70),  # no shared skill
           ("Data Engineer", "Berlin", "python, machine learning, sql", 8, 60, 80),  # too senior
           ("Web Developer", "Berlin", "javascript, react, css, sql", 1, 30, 38)]  # pays too little
    lines = "\n".join(f"{i + 1}. " + P.AD.format(title=t, employer="Northwind Software", location=c, requirements=r,
                                                  min_experience=e, low=lo, high=hi) + " (match 0.50)"
                      for i, (t, c, r, e, lo, hi) in enumerate(ads))
    return Template(P.APPLY).render({"name": "Ann Lee", "cv": cv, "weeks": 2, "expected": "60", "ads": lines}, 1)[0]


def test_jobs_judge():
    from socius.scenarios.jobs.judges import JUDGES
    (judge,) = JUDGES
    p = str(_apply_prompt())
    got = scores(judge, rows("apply", [p], [' {"apply": "1"}', ' {"apply": ""}', ' {"apply": "1, 2"}',
                                            ' {"apply": "2, 3, 4"}', ' {"apply": "9"}', "apply to all",
                                            ' {"apply": "1, 2, 3"}']))
    assert got == [5, 3, 2, 1, 1, 1, 2]     # one fit in three: 1 + floor(3 / 3)


def test_jobs_judge_reads_the_seeker_from_the_world():
    from socius.scenarios.jobs.components import Search, Seeker
    from socius.scenarios.jobs.judges import JUDGES
    (judge,) = JUDGES
    assert judge.world
    world = World(seed=0)
    world.spawn(2, {Seeker: {"skills": np.array(["python, sql, cloud", "python, sql, cloud"], dtype=object),
                             "experience": np.array([3, 3], np.int32), "expected": np.array([60.0, 60.0]),
                             "location": np.array(["Berlin", "Munich"], dtype=object)}, Search: {}}, ids=np.array([5, 6]))
    table = rows("apply", [str(_apply_prompt())], [' {"apply": "1"}', ' {"apply": "1"}', ' {"apply": "1"}'],
                 entities=[5, 6, 99])     # 6 lives in Munich (ad 1 is in Berlin); 99 is not in the world: the CV
    assert scores(judge, table, world) == [5, 1, 5]


# ---------------------------------------------------------------- social

def _social_prompt(n_posts: int, stance: float):
    from socius.scenarios.social import prompts as P
    posts = P.NO_POSTS if n_posts == 0 else "- @u3 posted: <<<quote>>>Big news<<<end quote>>>\n"
    return Template(P.decision_text()).render({
        "headline": "Something happened", "name": "Ann", "age": 30, "occupation": "nurse", "trait": "calm",
        "posts": posts, "n_posts": n_posts, "avg_stance": "+0.00", "peak": "calm", "mood": "calm",
        "stance": f"{stance:+.2f}", "heard": P.HEARD_NOW}, 1)[0]


def test_social_judge():
    from socius.scenarios.social.judges import JUDGES
    (judge,) = JUDGES
    read, none = str(_social_prompt(1, 0.5)), str(_social_prompt(0, -0.8))
    r = lambda a, e, t, x: f'{{"action": "{a}", "emotion": "{e}", "attitude": {t}, "text": "{x}"}}'  # noqa: E731
    table = rows("social", [read, none, read, read, read, none, read], [
        r("post", "moderate", 0.6, "Good news, I support this."),
        r("forward", "calm", -0.8, ""),                      # nothing read to forward
        r("post", "calm", 0.5, ""),                          # an empty post
        r("post", "intense", 0.8, "This is wrong and must stop!"),  # tone against the stance
        "I feel fine",                                       # not the asked form
        r("idle", "calm", 0.9, ""),                          # -0.8 to 0.9 with nothing read
        r("forward", "moderate", 0.5, ""),
    ])
    assert scores(judge, table) == [5, 2, 2, 2, 1, 3, 5]


# ---------------------------------------------------------------- recommender

def _browse_prompt(conformity: float):
    from socius.scenarios.recommender import prompts as P
    from socius.scenarios.recommender.users import conformity_phrase
    page = ("1. [id 1] The Fast Road (2001) - Action|Crime - others rate it 3.0 (10 ratings)\n"
            "2. [id 2] The Kiss (1999) - Romance - others rate it 3.9 (20 ratings)\n"
            "3. [id 3] The Quiet Garden (2015) - Romance|Thriller - no ratings yet")
    return P.browse_decision().template.render({
        "name": "Sam", "age": 40, "gender": "male", "occupation": "driver", "likes": "Action, Thriller and Crime",
        "dislikes": "Romance", "conformity": conformity_phrase(np.array([conformity]))[0], "memories": "",
        "page": page}, 1)[0]


def test_recommender_judge():
    from socius.scenarios.recommender.judges import JUDGES
    (judge,) = JUDGES
    swayed, ignores = str(_browse_prompt(0.5)), str(_browse_prompt(0.1))
    b = lambda w, o, r, s="none": f'{{"watch": {w}, "own": {o}, "rating": {r}, "share": "{s}"}}'  # noqa: E731
    table = rows("browse", [swayed] * 8 + [ignores, ignores], [
        b(1, 4.5, 4.0), b(2, 4.5, 4.5), b(2, 2.0, 2.0), b(1, 1.5, 1.5), b(7, 3, 3), b(0, 0, 0), b(0, 3, 3),
        "I liked it", b(1, 4.5, 3.0), b(3, 3.5, 3.5)])
    assert scores(judge, table) == [5, 2, 3, 2, 1, 5, 2, 1, 3, 5]


def test_recommender_judge_rate():
    from socius.scenarios.recommender import prompts as P
    from socius.scenarios.recommender.judges import JUDGES
    p = Template(P.RATE).render({"name": "Sam", "age": 40, "gender": "male", "occupation": "driver",
                                 "likes": "Action, Thriller and Crime", "dislikes": "Romance",
                                 "movie": "[id 2] The Kiss (1999) - Romance"}, 1)[0]
    assert scores(JUDGES[0], rows("rate", [str(p)], ['{"rating": 4.5}', '{"rating": 1.5}'])) == [2, 5]


# ---------------------------------------------------------------- discussion

def test_discussion_stance_judge():
    from socius.scenarios.discussion import prompts as P
    from socius.scenarios.discussion.judges import JUDGES
    stance = JUDGES[0]
    first = Template(P.POLL_FIRST).render({"statement": "S", "name": "Ann", "age": 30, "occupation": "nurse",
                                           "leaning": "sceptical"}, 1)[0]
    got = scores(stance, rows("poll_first", [str(first)], [' {"stance": 2}', ' {"stance": 3}', ' {"stance": 4}',
                                                           ' {"stance": 5}', "no", ' {"stance": 9}']))
    assert got == [5, 4, 2, 1, 1, 1]
    after = Template(P.POLL_AFTER, untrusted=("transcript",)).render({
        "statement": "S", "name": "Ann", "age": 30, "occupation": "nurse", "leaning": "sceptical", "previous": 1,
        "transcript": "Tom: I agree."}, 1)[0]
    assert scores(stance, rows("poll_after", [str(after)], [' {"stance": 5}', ' {"stance": 2}'])) == [2, 5]


def test_discussion_message_judge():
    from socius.scenarios.discussion import prompts as P
    from socius.scenarios.discussion.judges import JUDGES
    message = JUDGES[1]
    p = Template(P.SPEAK, untrusted=("transcript",)).render({
        "statement": "S", "members": "Maria, Wei, Tom", "name": "Wei", "age": 50, "occupation": "artist",
        "view": str(P.view_text(np.array([5]))[0]), "note": "", "transcript": P.NOBODY_YET}, 1)[0]
    m = lambda t: f' {{"message": "{t}"}}'  # noqa: E731
    got = scores(message, rows("speak03", [str(p)], [
        m("I agree, the benefits are clear. What do you think, @Maria?"), m("I agree. @Bob, your view?"),
        m("I agree with myself, @Wei."), m("I disagree, the costs are too high."), "just prose",
        m("I strongly agree, it is long overdue.")]))
    assert got == [5, 2, 2, 2, 1, 5]
