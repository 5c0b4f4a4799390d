"""Resources: typed singletons; which of them are state (saved and hashed) and which are not."""
import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from socius.ecs import Resource, ResourceError, SnapshotError, World
from socius.ecs.resource import decode_state, encode_state, is_snapshot_resource, resource_name


class Params(Resource):
    p: float = 2 / 3
    name: str = "guess"
    weights: list = dataclasses.field(default_factory=lambda: [1, 2])


class Grid(Resource):
    cells: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((2, 3), dtype=np.int16))


class Engine:
    """A plain resource (an engine, a cache): never saved, never hashed."""

    def __init__(self):
        self.calls = 0


def test_insert_get_has_remove():
    w = World()
    w.insert_resource(Params(p=0.5))
    assert w.resource(Params).p == 0.5 and w.get_resource(Params).name == "guess"
    assert w.has_resource(Params) and not w.has_resource(Grid)
    assert w.get_resource(Grid) is None
    w.insert_resource(Params(p=0.25))  # replaces: one per type
    assert w.resource(Params).p == 0.25 and len(w.resources()) == 1
    assert w.remove_resource(Params).p == 0.25 and w.remove_resource(Params) is None
    assert w.resource_type_by_name(resource_name(Params)) is None


def test_missing_resource_names_the_type():
    with pytest.raises(ResourceError, match="no resource of type Grid"):
        World().resource(Grid)
    with pytest.raises(LookupError):
        World().resource(Grid)


def test_inserting_a_class_instead_of_an_instance_is_refused():
    with pytest.raises(TypeError, match="instance, not the class Params"):
        World().insert_resource(Params)


def test_resource_subclasses_are_dataclasses_with_stable_names():
    assert dataclasses.is_dataclass(Params) and Params().weights == [1, 2]
    assert resource_name(Params) == f"{__name__}.Params"
    assert is_snapshot_resource(Params()) and not is_snapshot_resource(Engine())

    class Named(Resource):
        __resource_name__ = "fixed.name"
        x: int = 0

    assert resource_name(Named) == "fixed.name"
    w = World()
    w.insert_resource(Named())
    assert w.resource_type_by_name("fixed.name") is Named


def test_only_snapshot_resources_count_in_the_hash():
    w = World()
    h0 = w.state_hash()
    w.insert_resource(Engine())
    assert w.state_hash() == h0
    w.resource(Engine).calls += 1
    assert w.state_hash() == h0
    w.insert_resource(Params())
    h1 = w.state_hash()
    assert h1 != h0
    w.resource(Params).p = 0.1
    assert w.state_hash() != h1
    w.resource(Params).p = 2 / 3
    assert w.state_hash() == h1
    w.resource(Params).weights.append(3)
    assert w.state_hash() != h1


def test_array_fields_count_in_the_hash_by_dtype_shape_and_bytes():
    def h(cells):
        w = World()
        w.insert_resource(Grid(cells=cells))
        return w.state_hash()

    base = np.zeros((2, 3), dtype=np.int16)
    assert h(base) == h(base.copy())
    assert h(base) != h(base.astype(np.int32))
    assert h(base) != h(base.reshape(3, 2))
    changed = base.copy()
    changed[1, 2] = 1
    assert h(base) != h(changed)


json_st = st.recursive(st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.floats(allow_nan=False)
                       | st.text(max_size=5),
                       lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                                     max_size=3), max_leaves=8)
array_st = st.sampled_from([np.int8, np.int64, np.uint16, np.float32, np.float64, np.bool_]).flatmap(
    lambda dt: st.lists(st.integers(0, 3), min_size=0, max_size=3).map(
        lambda shape: (np.arange(int(np.prod(shape)), dtype=np.int64) % 7).astype(dt).reshape(shape)))


@settings(max_examples=80, deadline=None)
@given(state=st.dictionaries(st.text(min_size=1, max_size=4), json_st | array_st, max_size=5))
def test_encode_decode_round_trips(state):
    back = decode_state(encode_state(state))
    assert set(back) == set(state)
    for k, v in state.items():
        if isinstance(v, np.ndarray):
            assert back[k].dtype == v.dtype and back[k].shape == v.shape and np.array_equal(back[k], v)
        else:
            assert back[k] == v
    assert encode_state(back) == encode_state(state)


def test_string_arrays_round_trip():
    s = np.array(["a", "ü", ""], dtype=np.dtypes.StringDType()).reshape(1, 3)
    back = decode_state(encode_state({"s": s}))["s"]
    assert back.shape == (1, 3) and back.tolist() == [["a", "ü", ""]]


def test_unsaveable_fields_name_the_field():
    with pytest.raises(SnapshotError, match="'engine'.*Engine"):
        encode_state({"engine": Engine()})

    class Holder(Resource):
        thing: object = None

    w = World()
    w.insert_resource(Holder(thing=object()))
    with pytest.raises(SnapshotError, match="'thing'"):
        w.state_hash()
