"""Fixed-width UTF-8 text slots: encode with truncation on a character boundary, gather by (row, slot)."""
import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from socius.text.strings import arrow_strings, encode_fixed, gather_fixed


def cut(text: str, width: int) -> str:
    """Reference: the longest prefix of whole characters whose UTF-8 fits in ``width`` bytes."""
    out = ""
    for ch in text:
        if len((out + ch).encode()) > width:
            break
        out += ch
    return out


@settings(max_examples=80, deadline=None)
@given(st.lists(st.text(max_size=40), min_size=1, max_size=12), st.integers(1, 24), st.randoms(use_true_random=False))
def test_encode_then_gather_gives_whole_characters_up_to_the_width(texts, width, rnd):
    k = len(texts)
    enc, lens = encode_fixed(texts, width)
    assert enc.shape == (k, width) and (lens <= width).all()
    block = enc.reshape(1, k * width)            # one row holding every text in its own slot
    slots = np.array([[rnd.randrange(-1, k) for _ in range(5)]])
    got = gather_fixed(block, lens.reshape(1, k), np.array([0]), slots, width).to_pylist()
    assert got == [cut(texts[s], width) if s >= 0 else "" for s in slots[0]]


def test_gather_by_rows_and_the_empty_cases():
    enc, lens = encode_fixed(["ab", "héllo", "", "xyz"], 6)
    block, lens = enc.reshape(2, 12), lens.reshape(2, 2)
    got = gather_fixed(block, lens, np.array([1, 0, 1]), np.array([[0, 1], [1, -1], [1, 1]]), 6)
    assert got.to_pylist() == ["", "xyz", "héllo", "", "xyz", "xyz"]
    assert len(gather_fixed(block, lens, np.zeros(0, np.int64), np.zeros((0, 3), np.int64), 6)) == 0
    assert arrow_strings(np.array(["a", "b"], dtype=np.dtypes.StringDType())).type == pa.large_string()
