"""numpy strings to Arrow: the conversions every stage of the decision pipeline makes."""
from __future__ import annotations

import numpy as np
import pyarrow as pa

STR = np.dtypes.StringDType()


def arrow_strings(texts) -> pa.Array:
    """``[n]`` Arrow ``large_string`` from numpy strings (or anything numpy turns into strings), or an
    Arrow string array as ``large_string``."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    if isinstance(texts, pa.Array):
        return texts if texts.type == pa.large_string() else texts.cast(pa.large_string())
    return pa.array(np.asarray(texts, dtype=STR).reshape(-1), type=pa.large_string())


def repeat_string(value: str, n: int, type=pa.large_string()) -> pa.Array:
    """``[n]`` Arrow strings, all ``value`` (built in C++, not from ``n`` Python objects)."""
    return pa.array([value], type=type).take(pa.array(np.zeros(n, np.int32)))
