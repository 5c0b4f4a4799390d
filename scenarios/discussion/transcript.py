"""Transcript text over whole batches: joins per room, tails, cleaning, mentions, quoting, scripts.

Every function takes and returns ``[n]`` StringDType arrays and works
through Arrow compute kernels, never a Python loop over strings. Grouped
inputs (a room's lines) are consecutive rows with ``counts[g]`` rows in
group ``g``.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from socius.ecs import STR
from socius.llm import QUOTE_CLOSE, QUOTE_OPEN, defuse
from socius.text.strings import arrow_strings

#: ``Name: message`` — a line of a script (the name as in ``@Name``).
SCRIPT_LINE = r"^\s*(?P<name>[A-Z][A-Za-z'-]*)\s*:\s*(?P<msg>\S.*)$"
MENTION = r"@(?P<v>[A-Z][A-Za-z'-]*)"


def strings(a) -> np.ndarray:
    """``[n]`` StringDType from an Arrow string array without nulls."""
    return np.asarray(a.to_numpy(zero_copy_only=False)).astype(STR)


def join_groups(values: np.ndarray, counts: np.ndarray, sep: str) -> np.ndarray:
    """``[g]``: the ``values`` (grouped consecutively, ``counts[j]`` in group ``j``) joined with ``sep``."""
    offsets = np.zeros(counts.shape[0] + 1, np.int32)
    np.cumsum(counts, out=offsets[1:])
    lists = pa.ListArray.from_arrays(pa.array(offsets), arrow_strings(values))
    return strings(pc.binary_join(lists, pa.scalar(sep, pa.large_string())))


def tail(text: np.ndarray, chars: int) -> np.ndarray:
    """The last ``chars`` characters of each text (a cut transcript starts with "…")."""
    cut = np.strings.str_len(text) > chars
    end = strings(pc.utf8_slice_codeunits(arrow_strings(text), start=-chars))
    return np.where(cut, np.strings.add("…", end), text).astype(STR)


def clean(msg: np.ndarray, limit: int = 400) -> np.ndarray:
    """One line, stripped, at most ``limit`` characters."""
    one = np.strings.strip(np.strings.replace(np.strings.replace(msg, "\r", " "), "\n", " "))
    return np.strings.slice(one, 0, limit).astype(STR)


def first_mention(msg: np.ndarray) -> np.ndarray:
    """``[n]`` the name of each message's first ``@Name`` (``""`` if none)."""
    found = pc.extract_regex(arrow_strings(msg), pattern=MENTION)
    return strings(pc.if_else(found.is_valid(), found.field("v"), ""))


def quoted(text: np.ndarray) -> np.ndarray:
    """Untrusted text between the quote delimiters, defused."""
    return np.strings.add(np.strings.add(QUOTE_OPEN, strings(defuse(arrow_strings(text)))), QUOTE_CLOSE).astype(STR)


def mention_note(who: np.ndarray, said: np.ndarray) -> np.ndarray:
    """``" Maria addressed you: <quote>"`` where ``who`` is set, else ``""``."""
    note = np.strings.add(np.strings.add(np.strings.add(" ", who), " addressed you: "), quoted(said))
    return np.where(who != "", note, "").astype(STR)


def script_lines(text: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each script split into lines: ``(script [m] int64, ok [m] bool, name [m], message [m])``.

    ``ok`` marks lines in the ``Name: message`` format; the message is cleaned
    (:func:`clean`), name and message are ``""`` on other lines.
    """
    lists = pc.split_pattern(arrow_strings(text), pattern="\n")
    script = np.asarray(pc.list_parent_indices(lists).to_numpy(zero_copy_only=False), dtype=np.int64)
    found = pc.extract_regex(lists.flatten(), pattern=SCRIPT_LINE)
    ok = np.asarray(found.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    name = strings(pc.if_else(found.is_valid(), found.field("name"), ""))
    msg = clean(strings(pc.if_else(found.is_valid(), found.field("msg"), "")))
    return script, ok, name, msg
