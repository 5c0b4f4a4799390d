"""Population generation: distributions are right, draws follow the agent, bad specs say where.

Statistical checks use n = 100k and bounds of about 5 standard errors (or
KS / chi-square tests at p > 1e-4) on fixed seeds, so they neither flake nor
pass by luck.
"""
import json
import math
import string

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from scipy import stats
from scipy.special import ndtri as scipy_ndtri

from socius.ecs import STR, EntityRng
from socius.population import (BACKGROUND_META_PROMPT, Categorical, Conditional, Constant, Normal,
                                       PopulationSpecError, Uniform, attributes_json, background_prompts, ndtri,
                                       parse_population, parse_spec, render_template, resolve_order,
                                       sample_population)

N = 100_000
IDS = np.arange(N, dtype=np.int64) * 7919 + 12345  # sparse, non-contiguous entity IDs


def sample1(spec, ids=IDS, seed=1, name="x"):
    return sample_population({name: spec}, ids, seed)[name]


# ---------------------------------------------------------------------------------------------
# categorical

@settings(max_examples=20, deadline=None)
@given(st.lists(st.integers(0, 20), min_size=1, max_size=8).filter(lambda w: sum(w) > 0),
       st.integers(0, 2**31))
def test_categorical_proportions_match_weights(weights, seed):
    values = [f"v{i}" for i in range(len(weights))]
    col = sample1(Categorical(values, weights), seed=seed)
    assert col.dtype == STR
    p = np.asarray(weights, float) / sum(weights)
    counts = np.array([(col == v).sum() for v in values])
    assert counts.sum() == N
    se = np.sqrt(N * p * (1 - p))
    assert np.all(np.abs(counts - N * p) <= 5 * se + 1e-9), (counts, N * p)
    assert np.all(counts[p == 0] == 0)  # zero weight is never drawn


def test_categorical_defaults_to_equal_weights_and_numbers_keep_their_kind():
    c = Categorical(["a", "b", "c", "d"])
    assert c.weights == (0.25,) * 4
    assert sample1(Categorical([1, 2, 3])).dtype == np.int64
    assert sample1(Categorical([1, 2.5])).dtype == np.float64
    assert sample1(Categorical([True, False])).dtype == np.bool_
    assert Categorical(["a", "b"], [2, 6]).weights == (0.25, 0.75)


def test_categorical_is_the_kernel_draw():
    """Attribute draws come from EntityRng(seed, "population:<attr>", 0), keyed by entity ID."""
    u = EntityRng(5, "population:height", 0).random(IDS)
    col = sample_population({"height": Uniform(150.0, 200.0)}, IDS, 5)["height"]
    np.testing.assert_array_equal(col, 150.0 + u * 50.0)
    cat = sample_population({"height": Categorical(["lo", "hi"], [0.3, 0.7])}, IDS, 5)["height"]
    np.testing.assert_array_equal(cat == "hi", u >= 0.3)


# ---------------------------------------------------------------------------------------------
# normal, truncated normal, uniform, constant

def test_ndtri_matches_scipy_to_1e9_including_far_tails():
    p = np.concatenate([np.logspace(-300, -1, 3000), np.linspace(0.02, 0.98, 3000)])
    ref = scipy_ndtri(p)
    assert np.max(np.abs(ndtri(p) - ref) / np.maximum(1.0, np.abs(ref))) < 1.2e-9
    q = np.logspace(-300, -1, 3000)  # upper tail given by its complement
    assert np.max(np.abs(ndtri(1 - q, q) + scipy_ndtri(q)) / np.abs(scipy_ndtri(q))) < 1.2e-9
    assert ndtri(0.5) == pytest.approx(0.0, abs=1e-12)
    assert ndtri(0.0) == -np.inf and ndtri(1.0) == np.inf


def test_normal_unbounded_mean_and_std():
    x = sample1(Normal(40, 12))
    assert x.dtype == np.float64
    assert abs(x.mean() - 40) < 5 * 12 / math.sqrt(N)
    assert abs(x.std() - 12) < 5 * 12 / math.sqrt(2 * N)
    assert stats.kstest(x, stats.norm(40, 12).cdf).pvalue > 1e-4


@pytest.mark.parametrize("mean,std,low,high", [
    (40, 12, 18, 90),        # usual age-like bounds
    (0, 1, None, -1.5),      # one-sided, lower tail
    (0, 1, 2.5, None),       # one-sided, upper tail
    (0, 1, 6.0, 7.0),        # far out on the upper side: 1 - Phi loses nothing
    (0, 1, -9.0, -8.0),      # far out on the lower side
    (100, 5, 99, 101),       # narrow, around the mean
])
def test_truncated_normal_follows_the_truncated_distribution(mean, std, low, high):
    x = sample1(Normal(mean, std, low, high))
    lo = -np.inf if low is None else low
    hi = np.inf if high is None else high
    assert x.min() >= lo and x.max() <= hi
    ref = stats.truncnorm((lo - mean) / std, (hi - mean) / std, loc=mean, scale=std)
    assert stats.kstest(x, ref.cdf).pvalue > 1e-4
    assert abs(x.mean() - ref.mean()) < 5 * ref.std() / math.sqrt(N)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.floats(-1e3, 1e3), st.floats(1e-2, 1e3), st.floats(-5, 5), st.floats(0.05, 10),
       st.booleans(), st.booleans(), st.integers(0, 2**31))
def test_normal_bounds_always_respected(mean, std, a, width, has_low, has_high, seed):
    low = mean + a * std if has_low else None
    high = (mean + (a + width) * std) if has_high else None
    x = sample1(Normal(mean, std, low, high), ids=IDS[:2000], seed=seed)
    assert np.isfinite(x).all()
    if low is not None:
        assert x.min() >= low
    if high is not None:
        assert x.max() <= high


def test_integer_normal_is_the_discretised_truncated_normal():
    spec = Normal(40, 12, low=18, high=90, dtype="int")
    x = sample1(spec)
    assert x.dtype == np.int64 and x.min() >= 18 and x.max() <= 90
    k = np.arange(18, 91)
    p = stats.norm.cdf(k + 0.5, 40, 12) - stats.norm.cdf(k - 0.5, 40, 12)
    p /= p.sum()
    observed = np.bincount(x - 18, minlength=k.size)
    keep = p * N >= 5
    expected = N * p[keep]
    observed_keep = observed[keep]
    expected *= observed_keep.sum() / expected.sum()
    assert stats.chisquare(observed_keep, expected).pvalue > 1e-4


def test_integer_normal_with_fractional_bounds_uses_the_integers_inside():
    x = sample1(Normal(0, 3, low=-1.5, high=2.2, dtype="int"), ids=IDS[:20_000])
    assert set(np.unique(x).tolist()) == {-1, 0, 1, 2}


def test_uniform_int_is_inclusive_and_even():
    x = sample1(Uniform(1, 6, dtype="int"))
    assert x.dtype == np.int64
    counts = np.bincount(x, minlength=7)[1:]
    assert counts.sum() == N and counts.min() > 0
    assert stats.chisquare(counts).pvalue > 1e-4


def test_uniform_float_range():
    x = sample1(Uniform(-2.0, 3.0))
    assert x.min() >= -2.0 and x.max() < 3.0
    assert stats.kstest(x, stats.uniform(-2, 5).cdf).pvalue > 1e-4


def test_constant_kinds():
    cols = sample_population({"c": Constant("UK"), "i": Constant(3), "f": Constant(2.5), "b": Constant(True)},
                             IDS[:10], 0)
    assert cols["c"].dtype == STR and (cols["c"] == "UK").all()
    assert cols["i"].dtype == np.int64 and (cols["i"] == 3).all()
    assert cols["f"].dtype == np.float64 and cols["b"].dtype == np.bool_


# ---------------------------------------------------------------------------------------------
# conditional

def _edu_income():
    return {
        "education": Categorical(["school", "bachelor", "phd"], [0.5, 0.3, 0.2]),
        "income": Conditional(on="education", cases={
            "school": Normal(30_000, 5_000, low=0),
            "bachelor": Normal(50_000, 8_000, low=0),
            "phd": Normal(70_000, 10_000, low=0),
        }),
        "occupation": Conditional(on="education", cases={
            "phd": Categorical(["professor", "economist"], [0.25, 0.75]),
        }, default=Categorical(["artist", "writer"])),
    }


def test_conditional_distribution_per_case_is_as_declared():
    cols = sample_population(_edu_income(), IDS, 3)
    edu, inc, occ = cols["education"], cols["income"], cols["occupation"]
    assert inc.dtype == np.float64 and occ.dtype == STR
    for case, (m, s) in {"school": (30_000, 5_000), "bachelor": (50_000, 8_000), "phd": (70_000, 10_000)}.items():
        x = inc[edu == case]
        assert abs(x.mean() - m) < 5 * s / math.sqrt(x.size)
        assert abs(x.std() - s) < 0.05 * s
    phd = occ[edu == "phd"]
    assert set(np.unique(phd).tolist()) == {"professor", "economist"}
    share = (phd == "economist").mean()
    assert abs(share - 0.75) < 5 * math.sqrt(0.75 * 0.25 / phd.size)
    assert set(np.unique(occ[edu != "phd"]).tolist()) == {"artist", "writer"}


def test_conditional_order_does_not_matter_and_nests():
    specs = {
        "job": Conditional(on="sector", cases={"public": Conditional(on="senior", cases={
            "true": Constant("director")}, default=Constant("clerk"))}, default=Constant("trader")),
        "senior": Categorical([True, False]),
        "sector": Categorical(["public", "private"]),
    }
    assert resolve_order(specs) == ["senior", "sector", "job"]
    cols = sample_population(specs, IDS[:5000], 9)
    assert list(cols) == ["job", "senior", "sector"]  # declared order
    job, senior, sector = cols["job"], cols["senior"], cols["sector"]
    assert (job[(sector == "public") & senior] == "director").all()
    assert (job[(sector == "public") & ~senior] == "clerk").all()
    assert (job[sector == "private"] == "trader").all()


def test_conditional_on_a_given_column_with_toml_string_keys():
    group = (IDS[:3000] % 3).astype(np.int64)
    # "group" is not an attribute, so parse_population (which checks references) needs it given:
    specs = {"risk": parse_spec({"dist": "conditional", "on": "group", "cases": {
        "0": {"dist": "constant", "value": 0.1}, "1": {"dist": "constant", "value": 0.5}},
        "default": {"dist": "uniform", "low": 0.8, "high": 0.9}}, "population.risk")}
    cols = sample_population(specs, IDS[:3000], 2, given={"group": group})
    assert list(cols) == ["risk"]  # given columns are not returned
    risk = cols["risk"]
    assert (risk[group == 0] == 0.1).all() and (risk[group == 1] == 0.5).all()
    assert ((risk[group == 2] >= 0.8) & (risk[group == 2] < 0.9)).all()


def test_conditional_branches_share_the_agents_draw():
    """Common random numbers: the same quantile whichever case an agent falls in."""
    ids = IDS[:1000]
    flag = np.zeros(1000, dtype=bool)
    spec = {"v": Conditional(on="f", cases={True: Normal(10, 1), False: Normal(20, 2)})}
    a = sample_population(spec, ids, 4, given={"f": flag})["v"]
    b = sample_population(spec, ids, 4, given={"f": ~flag})["v"]
    np.testing.assert_allclose((a - 20) / 2, (b - 10) / 1, rtol=1e-9, atol=1e-9)


# ---------------------------------------------------------------------------------------------
# identity: an agent's attributes follow its entity ID

@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 2**62), min_size=1, max_size=200, unique=True), st.randoms(use_true_random=False),
       st.integers(0, 2**63 - 1))
def test_same_agent_same_attributes_alone_shuffled_or_in_full(ids, rnd, seed):
    specs = {**_edu_income(),
             "age": Normal(40, 12, low=18, high=90, dtype="int"),
             "score": Uniform(0.0, 1.0), "dice": Uniform(1, 6, dtype="int")}
    full = np.asarray(ids, dtype=np.int64)
    ref = sample_population(specs, full, seed)
    sub = list(range(len(ids)))
    rnd.shuffle(sub)
    sub = np.asarray(sub[: max(1, len(sub) // 2)])
    part = sample_population(specs, full[sub], seed)
    alone = sample_population(specs, full[sub[:1]], seed)
    for k in specs:
        np.testing.assert_array_equal(part[k], ref[k][sub])
        np.testing.assert_array_equal(alone[k], ref[k][sub[:1]])


def test_seed_and_attribute_name_change_the_draws():
    a = sample_population({"x": Uniform(0.0, 1.0), "y": Uniform(0.0, 1.0)}, IDS, 1)
    b = sample_population({"x": Uniform(0.0, 1.0)}, IDS, 2)
    assert not np.array_equal(a["x"], b["x"])
    assert abs(np.corrcoef(a["x"], a["y"])[0, 1]) < 5 / math.sqrt(N)  # independent streams


def test_empty_population():
    cols = sample_population(_edu_income(), np.empty(0, dtype=np.int64), 0)
    assert all(v.shape == (0,) for v in cols.values())


# ---------------------------------------------------------------------------------------------
# errors name attribute and field

@pytest.mark.parametrize("table,message", [
    ({"age": {"dist": "normal", "mean": 40, "std": 0}}, "population.age.std: must be > 0"),
    ({"age": {"dist": "normal", "mean": 40, "std": -3}}, "population.age.std: must be > 0"),
    ({"age": {"dist": "normal", "mean": "forty", "std": 3}}, "population.age.mean: must be a number"),
    ({"age": {"dist": "normal", "mean": 40, "std": True}}, "population.age.std: must be a number"),
    ({"age": {"dist": "normal", "mean": 40, "std": 3, "low": 50, "high": 20}}, "population.age.high: must be > low"),
    ({"age": {"dist": "normal", "mean": 40, "std": 3, "dtype": "double"}}, "population.age.dtype"),
    ({"age": {"dist": "normal", "mean": 0, "std": 1, "low": 60}}, "population.age.low: the bounds"),
    ({"age": {"dist": "normal", "std": 3}}, "population.age.mean: missing"),
    ({"age": {"dist": "normal", "mean": 1, "std": 3, "sd": 2}}, "population.age.sd: unknown field"),
    ({"age": {"mean": 1, "std": 3}}, "population.age.dist: missing"),
    ({"age": {"dist": "gaussian"}}, "population.age.dist: unknown distribution 'gaussian'"),
    ({"age": [1, 2]}, "population.age: must be a table"),
    ({"edu": {"dist": "categorical", "values": ["a", "b"], "weights": [1]}}, "population.edu.weights: has 1"),
    ({"edu": {"dist": "categorical", "values": ["a", "b"], "weights": [1, -1]}}, "population.edu.weights"),
    ({"edu": {"dist": "categorical", "values": ["a", "b"], "weights": [0, 0]}}, "population.edu.weights"),
    ({"edu": {"dist": "categorical", "values": []}}, "population.edu.values"),
    ({"edu": {"dist": "categorical", "values": ["a", "a"]}}, "population.edu.values: holds 'a' twice"),
    ({"edu": {"dist": "categorical", "values": ["a", 1]}}, "population.edu.values: mixes kinds"),
    ({"n": {"dist": "uniform", "low": 5, "high": 1}}, "population.n.high"),
    ({"n": {"dist": "uniform", "low": 0.5, "high": 3, "dtype": "int"}}, "population.n.low: must be an integer"),
    ({"n": {"dist": "constant", "value": [1]}}, "population.n.value"),
    ({"job": {"dist": "conditional", "on": "edu", "cases": {"a": {"dist": "constant", "value": 1}}}},
     "population.job.on: unknown attribute 'edu'"),
    ({"job": {"dist": "conditional", "on": "job", "cases": {"a": 1}}}, "population.job.on: an attribute cannot"),
    ({"job": {"dist": "conditional", "on": "x", "cases": {}}}, "population.job.cases"),
    ({"x": 1, "job": {"dist": "conditional", "on": "x", "cases": {"1": {"dist": "normal", "mean": 1, "std": -1}}}},
     "population.job.cases.1.std: must be > 0"),
    ({"x": 1, "job": {"dist": "conditional", "on": "x", "cases": {"1": "a"}, "default": 2}},
     "population.job.default: gives int values but cases.1 gives str"),
    ({"a": {"dist": "conditional", "on": "b", "cases": {"1": 1}},
      "b": {"dist": "conditional", "on": "c", "cases": {"1": 1}},
      "c": {"dist": "conditional", "on": "a", "cases": {"1": 1}}},
     "population: conditional attributes form a cycle: a -> b -> c -> a"),
    ({"bad name": 1}, "population.bad name: attribute names must be identifiers"),
])
def test_bad_specs_name_attribute_and_field(table, message):
    with pytest.raises(PopulationSpecError) as err:
        parse_population(table)
    assert message in str(err.value)
    assert isinstance(err.value, ValueError)


def test_sampling_errors_name_the_attribute():
    specs = {"edu": Categorical(["a", "b"]), "job": Conditional(on="edu", cases={"a": Constant("x")})}
    with pytest.raises(PopulationSpecError, match=r"population\.job\.default: missing: edu = 'b' matches no case"):
        sample_population(specs, IDS[:100], 0)
    specs = {"n": Categorical([1, 2]), "job": Conditional(on="n", cases={"one": Constant("x")}, default=Constant("y"))}
    with pytest.raises(PopulationSpecError, match=r"population\.job\.cases\.one: key 'one' cannot match"):
        sample_population(specs, IDS[:100], 0)
    with pytest.raises(PopulationSpecError, match="cycle: a -> a|cannot be conditional on itself"):
        sample_population({"a": Conditional(on="a", cases={"1": Constant(1)})}, IDS[:10], 0)


def test_dataclasses_are_frozen_hashable_and_parse_from_dicts():
    spec = parse_spec({"dist": "conditional", "on": "edu",
                       "cases": {"phd": {"dist": "normal", "mean": 1, "std": 2}}, "default": 3})
    assert spec == Conditional("edu", {"phd": Normal(1, 2)}, Constant(3))
    assert hash(spec) == hash(Conditional("edu", {"phd": Normal(1.0, 2.0)}, Constant(3)))
    assert spec.case_map["phd"].std == 2.0
    with pytest.raises(AttributeError):
        spec.on = "x"
    assert parse_spec("UK") == Constant("UK")
    assert parse_spec(Normal(0, 1)) == Normal(0, 1)


# ---------------------------------------------------------------------------------------------
# background prompts

def _profile_columns(n=2000):
    return sample_population({
        "gender": Categorical(["Male", "Female"]),
        "education": Categorical(["Elementary School", "High School", "Bachelor's Degree", "Master's Degree",
                                  "Ph.D."]),
        "age": Uniform(18, 22, dtype="int"),
    }, IDS[:n], 11)


def test_background_prompts_render_each_row_like_str_format():
    cols = _profile_columns(300)
    tpl = "A {age}-year-old {gender} with {education} ({{not a field}})."
    out = background_prompts(cols, tpl)
    assert out.dtype == STR and out.shape == (300,)
    for i in range(300):
        assert out[i] == tpl.format(**{k: v[i] for k, v in cols.items()})


def test_identical_attribute_rows_give_identical_prompts():
    cols = _profile_columns()
    prompts = background_prompts(cols)
    combos = {(g, e, a) for g, e, a in zip(cols["gender"].tolist(), cols["education"].tolist(),
                                             cols["age"].tolist())}
    uniq, inverse = np.unique(prompts, return_inverse=True)
    assert len(uniq) == len(combos) == 2 * 5 * 5
    key = np.strings.add(np.strings.add(cols["gender"], "|"), cols["education"])
    key = np.strings.add(np.strings.add(key, "|"), cols["age"].astype(STR))
    for u in range(len(uniq)):
        assert len(np.unique(key[inverse == u])) == 1


def test_default_meta_prompt_puts_the_attributes_json_last():
    cols = _profile_columns(50)
    prompts = background_prompts(cols)
    prefix = BACKGROUND_META_PROMPT.split("{attributes}")[0].replace("{{", "{").replace("}}", "}")
    for i, p in enumerate(prompts.tolist()):
        assert p.startswith(prefix) and p.endswith("}\n[PERSONA BEGIN]\n")
        line = p[len(prefix):].split("\n")[0]
        assert json.loads(line) == {k: v.tolist()[i] for k, v in cols.items()}


def test_attributes_json_escapes_and_types():
    cols = {"name": np.array(['Ann "Jo" \\ K', "B\nC"], dtype=STR), "age": np.array([3, 4]),
            "h": np.array([1.5, np.nan]), "ok": np.array([True, False])}
    rows = [json.loads(s) for s in attributes_json(cols).tolist()]
    assert rows[0] == {"name": 'Ann "Jo" \\ K', "age": 3, "h": 1.5, "ok": True}
    assert rows[1] == {"name": "B\nC", "age": 4, "h": None, "ok": False}


def test_render_template_refuses_what_it_cannot_vectorise():
    cols = {"x": np.array([1.25, 2.5])}
    with pytest.raises(ValueError, match="format specs"):
        render_template("{x:.1f}", cols)
    with pytest.raises(KeyError, match="no such column"):
        render_template("{y}", cols)
    with pytest.raises(ValueError, match="named fields"):
        render_template("{}", cols)
    with pytest.raises(ValueError, match="rows"):
        render_template("{x}{z}", {"x": np.arange(2), "z": np.arange(3)})
    np.testing.assert_array_equal(render_template("{x}/{k}", {**cols, "k": "K"}),
                                  np.array(["1.25/K", "2.5/K"], dtype=STR))
    # every field a scalar: the row count must be given
    assert render_template("{k}", {"k": 1}, n=2).tolist() == ["1", "1"]


def test_meta_prompt_is_a_valid_format_template():
    fields = [f for _, f, _, _ in string.Formatter().parse(BACKGROUND_META_PROMPT) if f]
    assert fields == ["attributes"]
