"""Reply parsing (``llm/replies.py``) against ``json.loads``: numbers, escapes, unicode, nesting, whitespace.

The oracle is Python's JSON decoder. For a reply that is one JSON object the
parser must give what ``json.loads`` gives (completeness); for any reply at
all, a field the parser accepts must hold the value ``json.loads`` reads at
the object's top level (soundness: never a silently wrong value — an
ambiguous reply does not parse and goes to the extraction call instead).
"""
import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from socius.ecs import STR
from socius.llm import Choice, JsonReply, Number, Text

OPTIONS = ("post", "idle", "é", 'say "hi"', "back\\slash", "😀")
SCHEMA = JsonReply(number=Number(), why=Text(), pick=Choice(*OPTIONS))
FIELDS = tuple(SCHEMA.fields)
PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def oracle(schema: JsonReply, text: str) -> dict | None:
    """The reply's field values as ``json.loads`` reads them, or None when the reply must not parse."""
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(obj, dict):
        return None
    out = {}
    for name, kind in schema.fields.items():
        if name not in obj:
            return None
        v = obj[name]
        if isinstance(kind, Number):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                return None
            try:
                x = float(v)
            except OverflowError:
                return None
            if not math.isfinite(x) or (kind.low is not None and x < kind.low) or \
                    (kind.high is not None and x > kind.high) or (kind.integer and x != round(x)):
                return None
            out[name] = x
        else:
            if not isinstance(v, str) or (isinstance(kind, Choice) and v not in kind.options):
                return None
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:  # a lone surrogate escape: no text to give
                return None
            out[name] = v
    return out


def parse_one(schema: JsonReply, text: str) -> dict | None:
    ok, cols = schema.parse(np.array([text], dtype=STR))
    return {k: (float(v[0]) if v.dtype.kind == "f" else str(v[0])) for k, v in cols.items()} if ok[0] else None


def same(a: dict | None, b: dict | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.keys() == b.keys() and all(a[k] == b[k] for k in a)


# ------------------------------------------------------------------ the defects the audit found
@pytest.mark.parametrize("text, value", [
    ('{"number": 1e2}', 100.0), ('{"number": 2.5E-1}', 0.25), ('{"number": -3E+2}', -300.0),
    ('{"number": 0.5e1}', 5.0), ('{"number": -0}', 0.0), ('{"number":7}', 7.0),
])
def test_numbers_with_exponents_and_signs(text, value):
    assert parse_one(JsonReply(number=Number()), text) == {"number": value}


@pytest.mark.parametrize("text", ['{"number": 007}', '{"number": +5}', '{"number": .5}', '{"number": 5.}',
                                  '{"number": 1e}', '{"number": 0x10}', '{"number": 52', '{"number": NaN}',
                                  '{"number": 1e400}', '{"number": "5"}'])
def test_what_json_rejects_does_not_parse(text):
    assert parse_one(JsonReply(number=Number()), text) is None


@pytest.mark.parametrize("literal, value", [
    (r'"\u00e9"', "é"), (r'"\u00E9t\u00e9"', "été"), (r'"a\\nb"', "a\\nb"), (r'"a\nb"', "a\nb"),
    (r'"\\\""', '\\"'), (r'"\/\b\f\r\t"', "/\b\f\r\t"), (r'"\ud83d\ude00"', "😀"), (r'"\u0000"', "\x00"),
    (r'"\\u00e9"', "\\u00e9"), ('"日本"', "日本"),
])
def test_string_escapes_are_decoded_as_json_does(literal, value):
    assert json.loads(literal) == value
    assert parse_one(JsonReply(why=Text()), '{"why": ' + literal + "}") == {"why": value}


@pytest.mark.parametrize("literal", [r'"\ud800"', r'"\udc00x"', r'"\x41"', '"tab\there"', r'"\u12"'])
def test_invalid_strings_do_not_parse(literal):
    """Bad escapes and raw control characters fail JSON; a lone surrogate escape is no text."""
    assert parse_one(JsonReply(why=Text()), '{"why": ' + literal + "}") is None


def test_choice_compares_the_decoded_string():
    s = JsonReply(pick=Choice(*OPTIONS))
    assert parse_one(s, r'{"pick": "\u00e9"}') == {"pick": "é"}
    assert parse_one(s, r'{"pick": "say \"hi\""}') == {"pick": 'say "hi"'}
    assert parse_one(s, r'{"pick": "back\\slash"}') == {"pick": "back\\slash"}
    assert parse_one(s, '{"pick": "posts"}') is None


@pytest.mark.parametrize("text", [
    '{"inner": {"number": 3}}',                      # only nested: not a field of the reply
    '{"inner": {"number": 3}, "number": 7}',         # nested and top level: ambiguous
    '{"number": 3, "number": 7}',                    # duplicated (json.loads keeps the last)
    '{"inner": [{"number": 3}], "x": 1}',
    '{"\\"number": 3}',                              # a key that ends in number
    '{"s": "\\"number\\": 3"}',                      # inside a string
    'Example: {"number": 0}. Mine: {"number": 42}',  # two objects in prose
])
def test_ambiguous_or_nested_keys_never_give_a_wrong_value(text):
    s = JsonReply(number=Number())
    got = parse_one(s, text)
    assert got is None or same(got, oracle(s, text))
    assert got is None


# ------------------------------------------------------------------ property tests against json.loads
HEX = "0123456789abcdefABCDEF"
_simple_escape = st.sampled_from([r"\"", r"\\", r"\/", r"\b", r"\f", r"\n", r"\r", r"\t"])
_bmp = st.integers(0, 0xFFFF).filter(lambda c: not 0xD800 <= c <= 0xDFFF)


def _u_escape(cp: int, upper: bool) -> str:
    h = f"{cp:04x}"
    return "\\u" + (h.upper() if upper else h)


_unicode_escape = st.builds(_u_escape, _bmp, st.booleans())
_pair_escape = st.builds(  # an astral code point as its UTF-16 surrogate pair
    lambda cp, up: _u_escape(0xD800 + ((cp - 0x10000) >> 10), up) + _u_escape(0xDC00 + ((cp - 0x10000) & 0x3FF), up),
    st.integers(0x10000, 0x10FFFF), st.booleans())
_raw_char = st.characters(blacklist_categories=("Cs",), blacklist_characters='"\\').filter(lambda c: ord(c) >= 0x20)
string_literal = st.lists(st.one_of(_raw_char, _simple_escape, _unicode_escape, _pair_escape), max_size=12).map(
    lambda parts: '"' + "".join(parts) + '"')


@st.composite
def number_literal(draw):
    """Any JSON number: sign, integer part without leading zeros, fraction, exponent of either case and sign."""
    sign = draw(st.sampled_from(["", "-"]))
    whole = draw(st.one_of(st.just("0"), st.from_regex(r"[1-9][0-9]{0,18}", fullmatch=True)))
    frac = draw(st.one_of(st.just(""), st.from_regex(r"\.[0-9]{1,17}", fullmatch=True)))
    exp = draw(st.one_of(st.just(""), st.from_regex(r"[eE][+-]?[0-9]{1,3}", fullmatch=True)))
    return sign + whole + frac + exp


ws = st.text(alphabet=" \t\n\r", max_size=3)


@PROPS
@given(num=number_literal(), lit=string_literal, pick=st.sampled_from(OPTIONS), w=st.lists(ws, min_size=8, max_size=8),
       order=st.permutations(range(3)), pick_escaped=st.booleans())
@example(num="1e2", lit=r'"\u00e9"', pick="é", w=[""] * 8, order=[0, 1, 2], pick_escaped=True)
@example(num="2.5E-1", lit=r'"a\\nb"', pick="post", w=[" "] * 8, order=[2, 1, 0], pick_escaped=False)
def test_flat_objects_parse_as_json_loads_reads_them(num, lit, pick, w, order, pick_escaped):
    members = [f'"number"{w[0]}:{w[1]}{num}', f'"why"{w[2]}:{w[3]}{lit}',
               f'"pick"{w[4]}:{w[5]}{json.dumps(pick, ensure_ascii=pick_escaped)}']
    text = "{" + w[6] + ("," + w[7]).join(members[i] for i in order) + w[7] + "}"
    expected = oracle(SCHEMA, text)
    assert same(parse_one(SCHEMA, text), expected)
    assert expected is not None or not math.isfinite(float(num))  # json accepts every generated member


json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20),
                      st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8))
key = st.one_of(st.sampled_from(FIELDS), st.text(max_size=6))
other_key = st.text(max_size=6).filter(lambda k: k not in FIELDS)


def json_values(keys):
    return st.recursive(json_leaf, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                           st.dictionaries(keys, inner, max_size=3)), max_leaves=8)


json_value = json_values(key)  # nested objects may use the reply's key names


@PROPS
@given(number=st.one_of(st.integers(-10**15, 10**15), st.floats(allow_nan=False, allow_infinity=False)),
       why=st.text(), pick=st.sampled_from(OPTIONS), extra=st.dictionaries(other_key, json_values(other_key), max_size=3),
       ascii_only=st.booleans(), indent=st.sampled_from([None, 0, 2, "\t"]), sort=st.booleans())
def test_any_json_dumps_of_a_reply_parses_exactly(number, why, pick, extra, ascii_only, indent, sort):
    """Objects as ``json.dumps`` writes them, in any layout, with extra members holding nested values:
    the parse is what ``json.loads`` reads."""
    obj = {**extra, "number": number, "why": why, "pick": pick}
    text = json.dumps(obj, ensure_ascii=ascii_only, indent=indent, sort_keys=sort)
    assert same(parse_one(SCHEMA, text), oracle(SCHEMA, text))


member = st.tuples(key, json_value)


@PROPS
@given(number=st.integers(-10**6, 10**6), why=st.text(max_size=8), pick=st.sampled_from(OPTIONS),
       others=st.lists(member, max_size=5), data=st.data(),
       prose=st.tuples(st.text(max_size=10), st.text(max_size=10)))
def test_whatever_the_reply_an_accepted_value_is_the_json_value(number, why, pick, others, data, prose):
    """The reply's members in any order among others that may repeat its keys (duplicated, or nested at
    any depth), prose with quotes and braces around it: the parser may refuse, but what it accepts is
    exactly what ``json.loads`` reads at the top level."""
    members = list(others)
    for m in [("number", number), ("why", why), ("pick", pick)]:
        members.insert(data.draw(st.integers(0, len(members))), m)
    body = "{" + ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in members) + "}"
    text = prose[0] + body + prose[1]
    got, want = parse_one(SCHEMA, text), oracle(SCHEMA, body)
    event("parsed" if got is not None else "refused")
    assert got is None or same(got, want)
    keys = [k for k, _ in members]
    nested = json.dumps([v for _, v in others])
    if all(keys.count(f) == 1 and json.dumps(f) not in nested for f in FIELDS) \
            and not set('{}[]"') & set(prose[0]):  # unambiguous: then it must parse
        assert same(got, want)


@PROPS
@given(number=st.integers(-1000, 1000), why=st.text(), pick=st.sampled_from(OPTIONS),
       before=st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters='{}[]"'), max_size=20),
       after=st.text(max_size=20))
def test_prose_around_the_object_is_tolerated(number, why, pick, before, after):
    body = json.dumps({"number": number, "why": why, "pick": pick})
    assert same(parse_one(SCHEMA, before + body + after), oracle(SCHEMA, body))


@PROPS
@given(number=st.integers(-10**6, 10**6), why=st.text(max_size=8), pick=st.sampled_from(OPTIONS),
       data=st.data())
def test_a_truncated_reply_never_gives_a_wrong_value(number, why, pick, data):
    """A reply cut off by ``max_tokens`` (``{"number": 52`` of ``521``) does not parse unless every field
    was complete before the cut."""
    text = json.dumps({"why": why, "pick": pick, "number": number})
    cut = data.draw(st.integers(0, len(text) - 1))
    got = parse_one(SCHEMA, text[:cut])
    assert got is None or same(got, oracle(SCHEMA, text))
    assert parse_one(JsonReply(number=Number()), text[:-1]) is None  # the number is the last member


def test_many_replies_at_once_match_row_by_row():
    """The vectorised parse of a mixed column equals parsing each reply alone: escapes in some rows,
    nested values, prose with quotes and keys only nested in others (the exact depth test on a subset)."""
    rng = np.random.default_rng(3)
    bodies = [json.dumps({"number": float(x), "why": w, "pick": p}, ensure_ascii=bool(a)) for x, w, p, a in zip(
        rng.normal(0, 1e3, 400), rng.choice(["plain", "é\n\"x\"", "tab\t", "😀 ok", ""], 400),
        rng.choice(OPTIONS, 400), rng.integers(0, 2, 400))]
    bodies += ["no json", '{"number": 1e2, "why": "\\u00e9", "pick": "idle"}', '{"number": 1}']
    texts = list(bodies)
    nested = [json.dumps({"meta": {"a": [1, {"b": "}"}]}, "number": i, "why": "n", "pick": "post"}) for i in range(30)]
    texts += nested
    bodies += nested
    quoted = [json.dumps({"number": i, "why": "q", "pick": "idle"}) for i in range(30)]
    texts += ['He said "hi" ' + b for b in quoted]
    bodies += quoted
    texts += [json.dumps({"meta": {"number": 5}, "why": "n", "pick": "post"})] * 10  # only nested: refused
    bodies += texts[-10:]
    order = rng.permutation(len(texts))
    texts, bodies = [texts[i] for i in order], [bodies[i] for i in order]
    ok, cols = SCHEMA.parse(np.array(texts, dtype=STR))
    for i, body in enumerate(bodies):
        want = oracle(SCHEMA, body)
        assert bool(ok[i]) == (want is not None)
        if want is not None:
            assert {k: (float(v[i]) if v.dtype.kind == "f" else str(v[i])) for k, v in cols.items()} == want
    assert ok.sum() == 401 + 60
