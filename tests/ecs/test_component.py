"""Component schemas and column kinds: declaration, coercion, and bad input.

Every wrong value must raise the specific error class from ``socius.ecs.errors``
and name ``Component.column`` in its message.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from socius.ecs import (ColumnShapeError, ColumnTypeError, Component, Ragged, RaggedArray, Scalar,
                        SchemaError, String, UnknownComponentError, Vector, World)
from socius.ecs.component import is_component
from socius.ecs.message import Message


class Wealth(Component):
    value = Scalar(np.int64, default=7)
    rate = Scalar(np.float32)
    alive = Scalar(np.bool_)


class Embedding(Component):
    vec = Vector(np.float32, 3)


class Profile(Component):
    name = String(default="anon")


class Follows(Component):
    ids = Ragged(np.int64)


class Named(Component):
    __component_name__ = "custom.Named"
    x = Scalar(np.int8)


# ------------------------------------------------------------------ declaration
def test_columns_are_collected_in_declaration_order_with_owner_and_name():
    cols = Wealth.columns()
    assert list(cols) == ["value", "rate", "alive"]
    assert cols["rate"].where == "Wealth.rate"
    assert Wealth.column("value").dtype == np.int64


def test_component_name_defaults_to_module_and_qualname_and_can_be_overridden():
    assert Wealth.__component_name__ == f"{__name__}.Wealth"
    assert Named.__component_name__ == "custom.Named"


def test_subclass_inherits_and_extends_columns():
    class Rich(Wealth):
        yacht = Scalar(np.int16)

    assert list(Rich.columns()) == ["value", "rate", "alive", "yacht"]
    assert Rich.column("yacht").where.endswith("Rich.yacht")
    assert "yacht" not in Wealth.columns()


def test_components_are_schemas_not_per_agent_objects():
    with pytest.raises(TypeError, match="schema"):
        Wealth()
    assert is_component(Wealth) and not is_component(Component) and not is_component(int)


def test_describe_changes_with_the_schema():
    class A(Component):
        x = Scalar(np.int64)

    class B(Component):
        x = Scalar(np.int32)

    class C(Component):
        x = Vector(np.int64, 2)

    assert len({A.describe(), B.describe(), C.describe()}) == 3
    assert Follows.describe() == "ids=ragged:<i8"


@pytest.mark.parametrize("make, needle", [
    (lambda: Scalar(np.dtypes.StringDType()), "String"),
    (lambda: Scalar("U8"), "numeric"),
    (lambda: Vector(np.float32, 0), "dim"),
    (lambda: Vector(object, 2), "numeric"),
    (lambda: Ragged("U3"), "numeric"),
])
def test_bad_column_declarations_raise_schema_error(make, needle):
    with pytest.raises(SchemaError, match=needle):
        make()


def test_private_column_names_are_refused():
    with pytest.raises(SchemaError, match="_hidden"):
        class Bad(Component):
            _hidden = Scalar(np.int64)


def test_message_header_names_are_reserved():
    with pytest.raises(SchemaError, match="sender"):
        class Bad(Message):
            sender = Scalar(np.int64)


def test_unknown_column_names_the_component_and_lists_columns():
    with pytest.raises(UnknownComponentError) as e:
        Wealth.column("money")
    assert "Wealth" in str(e.value) and "'money'" in str(e.value) and "value, rate, alive" in str(e.value)
    with pytest.raises(UnknownComponentError, match="'money'"):
        Wealth.coerce_values({"money": 1}, 2)


# ------------------------------------------------------------------ coercion: good values
def test_missing_columns_get_defaults():
    out = Wealth.coerce_values({"rate": 0.5}, 3)
    assert out["value"].tolist() == [7, 7, 7]
    assert out["rate"].dtype == np.float32 and out["rate"].tolist() == [0.5] * 3
    assert out["alive"].dtype == np.bool_ and not out["alive"].any()
    assert Profile.coerce_values({}, 2)["name"].tolist() == ["anon", "anon"]
    r = Follows.coerce_values({}, 4)["ids"]
    assert isinstance(r, RaggedArray) and len(r) == 4 and r.values.shape == (0,)


def test_scalar_broadcast_and_same_kind_narrowing():
    c = Wealth.column("value")
    assert c.coerce(3, 4).tolist() == [3, 3, 3, 3]
    assert c.coerce(np.array([1, 2], dtype=np.int8), 2).dtype == np.int64
    assert c.coerce(np.array([True, False]), 2).tolist() == [1, 0]
    r = Wealth.column("rate").coerce(np.array([1.5, 2.5]), 2)  # float64 -> float32 within the kind
    assert r.dtype == np.float32 and r.tolist() == [1.5, 2.5]
    assert Wealth.column("rate").coerce([1, 2], 2).tolist() == [1.0, 2.0]  # int -> float is safe


def test_vector_accepts_matrix_one_vector_or_one_number():
    c = Embedding.column("vec")
    m = c.coerce(np.arange(6, dtype=np.float64).reshape(2, 3), 2)
    assert m.dtype == np.float32 and m.shape == (2, 3) and m[1].tolist() == [3, 4, 5]
    b = c.coerce([1, 2, 3], 4)
    assert b.shape == (4, 3) and (b == [1, 2, 3]).all()
    b[0, 0] = 99  # broadcast result is a real array, not a view of one row
    assert b[1, 0] == 1
    assert (c.coerce(0.25, 2) == 0.25).all()


def test_string_accepts_str_lists_arrays_and_one_str():
    c = Profile.column("name")
    assert c.coerce("x", 3).tolist() == ["x", "x", "x"]
    assert c.coerce(["a", "ü", ""], 3).tolist() == ["a", "ü", ""]
    assert c.coerce(np.array(["p", "q"]), 2).dtype == np.dtypes.StringDType()


def test_ragged_accepts_lists_and_ragged_arrays():
    c = Follows.column("ids")
    r = c.coerce([[1, 2], [], [3]], 3)
    assert r.to_lists() == [[1, 2], [], [3]] and r.dtype == np.int64
    r2 = c.coerce(RaggedArray.from_lists([[5], [6, 7]], np.int32), 2)
    assert r2.dtype == np.int64 and r2.to_lists() == [[5], [6, 7]]


# ------------------------------------------------------------------ coercion: bad values
@pytest.mark.parametrize("comp, col, value, n", [
    (Wealth, "value", 1.5, 3),                                     # float into an int column
    (Wealth, "value", np.array([1.0, 2.0]), 2),
    (Wealth, "value", ["1", "2"], 2),                              # strings into a scalar
    (Wealth, "rate", "fast", 2),
    (Wealth, "alive", np.array([0, 1]), 2),                       # int into bool
    (Wealth, "value", np.array([1 + 2j, 3j]), 2),                 # complex into int
    (Wealth, "value", None, 2),
    (Embedding, "vec", np.ones((2, 3), dtype=np.complex64), 2),
    (Embedding, "vec", [["a", "b", "c"]] * 2, 2),
    (Profile, "name", 5, 2),                                       # numbers into a String column
    (Profile, "name", np.array([1, 2]), 2),
    (Profile, "name", [1.5, 2.5], 2),
    (Profile, "name", ["alice", 3], 2),                            # a number hidden among strings
    (Profile, "name", np.array(["a", None], dtype=object), 2),
    (Follows, "ids", [[1.5], [2]], 2),                             # float lists into an int ragged
    (Follows, "ids", [["a"], [2]], 2),
    (Follows, "ids", RaggedArray.from_lists([[0.5]], np.float64), 1),
    (Follows, "ids", np.array([1, 2]), 2),                         # not lists at all
    (Follows, "ids", [[1, [2, 3]], [4]], 2),                       # nested junk
])
def test_wrong_kind_raises_column_type_error_naming_the_column(comp, col, value, n):
    with pytest.raises(ColumnTypeError) as e:
        comp.coerce_values({col: value}, n)
    assert f"{comp.__qualname__}.{col}" in str(e.value)


@pytest.mark.parametrize("comp, col, value, n", [
    (Wealth, "value", [1, 2], 3),                                  # row count
    (Wealth, "value", np.zeros((3, 1), dtype=np.int64), 3),        # 2-D into a scalar
    (Embedding, "vec", np.zeros((2, 4)), 2),                       # vector dim
    (Embedding, "vec", np.zeros((3, 3)), 2),                       # row count
    (Embedding, "vec", [1.0, 2.0], 5),
    (Profile, "name", ["a", "b"], 3),
    (Follows, "ids", [[1], [2]], 3),
    (Follows, "ids", RaggedArray.from_lists([[1]], np.int64), 2),
])
def test_wrong_shape_raises_column_shape_error_naming_the_column(comp, col, value, n):
    with pytest.raises(ColumnShapeError) as e:
        comp.coerce_values({col: value}, n)
    msg = str(e.value)
    assert f"{comp.__qualname__}.{col}" in msg and str(n) in msg


def test_errors_are_socius_errors_and_builtin_kinds():
    with pytest.raises(TypeError):
        Wealth.coerce_values({"value": 1.5}, 1)
    with pytest.raises(ValueError):
        Wealth.coerce_values({"value": [1, 2]}, 1)
    with pytest.raises(LookupError):
        Wealth.column("nope")


_NUMERIC = [np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint32, np.float16, np.float32, np.float64]


@settings(max_examples=60, deadline=None)
@given(src=st.sampled_from(_NUMERIC), dst=st.sampled_from(_NUMERIC), n=st.integers(0, 5))
def test_scalar_coerce_accepts_exactly_the_same_kind_casts(src, dst, n):
    class C(Component):
        x = Scalar(dst)

    value = np.ones(n, dtype=src)
    if np.can_cast(src, dst, casting="same_kind"):
        out = C.coerce_values({"x": value}, n)["x"]
        assert out.dtype == np.dtype(dst) and out.shape == (n,) and (out == 1).all()
    else:
        with pytest.raises(ColumnTypeError, match="C.x"):
            C.coerce_values({"x": value}, n)


def test_world_rejects_bad_values_before_changing_anything():
    w = World()
    w.spawn(2, {Wealth: {"value": [1, 2]}})
    before = w.state_hash()
    with pytest.raises(ColumnTypeError, match="Profile.name"):
        w.spawn(2, {Wealth: {"value": 1}, Profile: {"name": [1, 2]}})
    with pytest.raises(ColumnShapeError, match="Embedding.vec"):
        w.add_component(w.entities, Embedding, vec=np.zeros((2, 2)))
    assert w.state_hash() == before and len(w) == 2 and w.next_id == 2


def test_an_untyped_empty_list_fits_zero_rows_but_a_typed_wrong_array_does_not():
    w = World()
    w.spawn(2, {Wealth: {"value": 1}})
    ids = w.spawn(0, {Wealth: {"value": [], "rate": ()}, Profile: {"name": []}, Follows: {"ids": []}})
    assert ids.shape == (0,) and len(w) == 2
    w.set(Wealth, [], value=[])
    with pytest.raises(ColumnTypeError, match="Wealth.value"):
        w.set(Wealth, np.zeros(0, dtype=np.int64), value=np.zeros(0, dtype=np.float64))


def test_strings_keep_every_character_including_trailing_nuls():
    odd = ["a\x00", "\x00", "", "naïve ✓", "tab\there\n", "\x00\x00x\x00"]
    c = Profile.column("name")
    for form in (odd, tuple(odd), np.array(odd, dtype=np.dtypes.StringDType())):
        assert c.coerce(form, len(odd)).tolist() == odd
    assert c.coerce("x\x00", 2).tolist() == ["x\x00", "x\x00"]

    class P(Component):
        s = String(default="d\x00")

    assert P.coerce_values({}, 1)["s"].tolist() == ["d\x00"]


def test_a_subclass_does_not_rename_its_bases_columns():
    class Base(Component):
        x = Scalar(np.int64)

    class Child(Base):
        y = Scalar(np.int64)

    for comp in (Base, Child):
        with pytest.raises(ColumnTypeError) as e:
            comp.coerce_values({"x": 0.5}, 1)
        assert f"{comp.__qualname__}.x" in str(e.value)


def test_columns_may_be_named_like_the_api_parameters():
    class Edge(Component):
        ids = Ragged(np.int64)
        component = Scalar(np.int64)

    w = World()
    e = w.spawn(2)
    w.add_component(e, Edge, ids=[[1], [2, 3]], component=[4, 5])
    w.set(Edge, e[:1], ids=[[9]], component=7)
    w.query(Edge).set(Edge, component=[8, 8])
    assert w.get(Edge, "ids").to_lists() == [[9], [2, 3]] and w.get(Edge, "component").tolist() == [8, 8]
