"""Profile rendering: chosen attributes in order, empty ones skipped, bad names refused."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from socius.components.profile import (PRIVATE_ATTRIBUTES, PUBLIC_ATTRIBUTES, Profile, ProfileFields,
                                       describe_attributes, render_profile)
from socius.ecs import STR, World


def test_render_profile_selected_attributes():
    w = World(seed=0)
    ids = w.spawn(3, {Profile: {"name": ["Ana", "Bo", ""], "age": [34, 51, 20], "income": [52000.0, 1234.5, 0.0],
                                "occupation": ["nurse", "", "student"]}})
    fields = ProfileFields({"chat": PUBLIC_ATTRIBUTES, "interview": ("name", "income", "occupation")})
    out = render_profile(w, ids, fields["interview"])
    assert out.tolist() == ["name: Ana; income: 52000; occupation: nurse", "name: Bo; income: 1234.5",
                            "income: 0; occupation: student"]
    chat = render_profile(w, ids, fields["chat"])
    assert all("income" not in t for t in chat.tolist()) and chat[0].startswith("name: Ana; age: 34")
    assert np.array_equal(render_profile(w.query(Profile), None, fields["interview"]), out)


@given(st.lists(st.tuples(st.text(alphabet="ab ;", max_size=5), st.integers(0, 99)), min_size=1, max_size=20))
@settings(max_examples=50, deadline=None)
def test_describe_attributes_matches_python(rows):
    names = np.array([r[0] for r in rows], dtype=STR)
    ages = np.array([r[1] for r in rows], dtype=np.int32)
    got = describe_attributes({"name": names, "age": ages}, ("name", "age"))
    want = ["; ".join(p for p in ([f"name: {n}"] if n else []) + [f"age: {a}"]) for n, a in rows]
    assert got.tolist() == want


def test_profile_fields_refuse_unknown_attributes():
    with pytest.raises(ValueError, match="'chat'.*salary"):
        ProfileFields({"chat": ("name", "salary")})
    with pytest.raises(KeyError, match="no prompt"):
        ProfileFields({"chat": ("name",)})["interview"]
    assert set(PUBLIC_ATTRIBUTES + PRIVATE_ATTRIBUTES) <= set(Profile.columns())
