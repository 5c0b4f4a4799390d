"""hash_strings is XXH64 (seed 0) of the UTF-8 bytes, on every path (one thread, many threads, slices)."""
import numpy as np
import pyarrow as pa
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from socius.text.hashing import hash_strings, strings_equal


def reference(texts):
    return np.array([xxhash.xxh64_intdigest(t.encode("utf-8")) for t in texts], dtype=np.uint64)


def test_published_vectors():
    h = hash_strings(["", "a", "abc"])
    assert h.tolist() == [0xEF46DB3751D8E999, 0xD24EC4F1A98C6E5B, 0x44BC2CF5AD770999]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=120), max_size=40))
def test_matches_xxhash_for_any_text(texts):
    assert hash_strings(texts).tolist() == reference(texts).tolist()
    assert hash_strings(pa.array(texts, type=pa.string())).tolist() == reference(texts).tolist()


def test_many_bytes_take_the_threaded_path_with_the_same_values():
    texts = [("prompt " * 40000) + str(i) for i in range(8)]  # > 1 MiB in all
    assert hash_strings(texts).tolist() == reference(texts).tolist()


def test_sliced_arrow_arrays_hash_their_own_rows():
    arr = pa.array([f"text {i} " * (i % 7) for i in range(50)], type=pa.large_string())
    part = arr.slice(13, 20)
    assert hash_strings(part).tolist() == reference(part.to_pylist()).tolist()
    assert hash_strings(arr.slice(5, 0)).shape == (0,)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(["", "a", "ab", "b", "héllo", "x" * 40, "x" * 39 + "y"]), min_size=1, max_size=30),
       st.randoms(use_true_random=False))
def test_strings_equal_compares_pairs_of_rows(texts, rnd):
    arr = pa.array(texts, type=pa.large_string()).slice(0)
    a = [rnd.randrange(len(texts)) for _ in range(20)]
    b = [rnd.randrange(len(texts)) for _ in range(20)]
    assert strings_equal(arr, a, b).tolist() == [texts[i] == texts[j] for i, j in zip(a, b)]
    if len(texts) > 2:
        part = arr.slice(1)
        assert strings_equal(part, [0], [len(texts) - 2]).tolist() == [texts[1] == texts[-1]]
