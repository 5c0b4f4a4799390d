"""Planning requests: which agents share a prompt and a request, in what order, with what seed.

:class:`Prompts` renders a decision's prompts on demand, once per distinct combination of template
field values (agents whose fields are equal have equal prompts: 10⁶ agents of a few hundred profiles
render a few hundred prompts), or for some agents' rows (a chunk of a stream).

Agents share a request when their prompts and LoRA adapters are equal — greedy requests get one
completion fanned out to every agent that asked, sampled ones one completion per agent (agents in
ID order). Prompts are grouped by their 64-bit XXH64 hash, texts compared where a hash is shared
(a true collision, never seen in practice, falls back to exact comparison). Requests go in the
order of their first (lowest-ID) agent, and each request's seed is drawn from (seed, decision,
kind, tick, first agent's ID), so nothing depends on the order of storage or on batch size.

:meth:`Asks.whole` plans a whole batch at once; :meth:`Asks.chunk` plans it chunk by chunk, agents
in ID order, for requests with one completion each (greedy, or ``dedup=False``), with a
:class:`RequestIndex` of the requests so far — the same requests, in the same order
(:mod:`.stream` sends each chunk's as soon as it is planned). Hashes come from the caller.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from socius.ecs.rng import EntityRng
from socius.text.hashing import strings_equal
from socius.text.strings import arrow_strings

from .engines.base import RequestBatch, Sampling

_MIX = np.uint64(0x9E3779B97F4A7C15)   # spreads adapter codes over the 64-bit key space


def groups(keys: pa.Array, hashes: np.ndarray) -> np.ndarray:
    """``[n]`` group code of each key: equal keys, equal codes. Keys are grouped by their 64-bit
    hash; the keys of a group with several members are compared with its first one, and on a true
    hash collision (never seen in practice) Arrow's exact dictionary encoding decides."""
    _, first, codes = np.unique(hashes, return_index=True, return_inverse=True)
    codes = codes.reshape(-1)
    if first.shape[0] < codes.shape[0]:
        shared = np.flatnonzero(np.bincount(codes)[codes] > 1)
        if not strings_equal(keys, shared, first[codes[shared]]).all():
            codes = pc.dictionary_encode(keys).indices.to_numpy(zero_copy_only=False).astype(np.int64)
    return codes


def merge_adapters(codes: np.ndarray, adapters: np.ndarray | None) -> np.ndarray:
    """``[n]`` group codes of (prompt group, adapter) pairs: identical prompts on different LoRA adapters
    are different requests (``adapters``: ``[n]`` names, ``""`` the base model)."""
    if adapters is None or not (adapters != "").any():
        return codes
    _, a_codes = np.unique(adapters, return_inverse=True)
    a_codes = a_codes.reshape(-1).astype(np.int64)
    return np.unique(codes * (int(a_codes.max()) + 1) + a_codes, return_inverse=True)[1].reshape(-1)


@dataclass(frozen=True)
class Asks:
    """What every request of one engine call shares: the run's seed, the decision and call kind,
    the tick, the model and the sampling."""

    seed: int
    decision: str
    kind: str
    tick: int
    model: str
    sampling: Sampling

    def seeds(self, first: np.ndarray) -> np.ndarray:
        """``[r] int64`` seed of each request, from its first agent's ID."""
        return (EntityRng(self.seed, f"llm:{self.decision}:{self.kind}", self.tick).bits(first)
                >> np.uint64(1)).astype(np.int64)

    def whole(self, ids: np.ndarray, prompts: pa.Array, hashes: np.ndarray, adapters: np.ndarray | None,
              dedup: bool, inverse: np.ndarray | None = None) -> tuple[RequestBatch, np.ndarray, np.ndarray]:
        """The batch for agents ``ids`` asking ``prompts`` (``hashes``: theirs; ``adapters``: ``[n]`` or
        None) — or, with ``inverse`` (``[n]``), asking ``prompts[inverse]`` — and each agent's request
        and completion index. When every request is distinct and ``ids`` ascend, the rendered
        prompts are the batch as they are (no copy)."""
        n = ids.shape[0]
        if dedup:
            codes = groups(prompts, hashes)
            codes = merge_adapters(codes if inverse is None else codes[inverse], adapters)
        else:
            codes = np.arange(n)
        g = int(codes.max()) + 1 if n else 0
        if g == n and (n < 2 or (np.diff(ids) > 0).all()):  # distinct prompts, IDs in order: as rendered
            req_of = agent_order = np.arange(n)
        else:
            by_group = np.lexsort((ids, codes))               # agents by group, ID order inside
            counts_g = np.bincount(codes, minlength=g)
            starts_g = np.zeros(g + 1, np.int64)
            np.cumsum(counts_g, out=starts_g[1:])
            rank = np.empty(g, np.int64)
            rank[np.argsort(ids[by_group[starts_g[:-1]]], kind="stable")] = np.arange(g)
            req_of = rank[codes]                              # [n] request of each agent
            agent_order = np.lexsort((ids, req_of))           # agents grouped by request, ID order inside
        counts = np.bincount(req_of, minlength=g)
        starts = np.zeros(counts.shape[0] + 1, np.int64)
        np.cumsum(counts, out=starts[1:])
        firsts_pos = agent_order[starts[:-1]]
        first = ids[firsts_pos]
        at = firsts_pos if inverse is None else inverse[firsts_pos]   # each request's prompt
        as_rendered = g == len(prompts) and bool((at == np.arange(g)).all())
        req_prompts = prompts if as_rendered else prompts.take(pa.array(at))
        if self.sampling.greedy:
            n_req, entities, comp_of = np.ones(counts.shape[0], np.int32), first, req_of
        else:
            n_req = counts.astype(np.int32)
            entities = ids[agent_order]
            comp_of = np.empty(n, np.int64)
            comp_of[agent_order] = np.arange(n)
        req_adapters = adapters[firsts_pos] if adapters is not None else None
        batch = RequestBatch(prompts=req_prompts, sampling=self.sampling, model=self.model, n=n_req,
                             seeds=self.seeds(first), entities=entities, adapters=req_adapters, tick=self.tick,
                             prompt_hash=hashes[at])
        return batch, req_of, comp_of

    def chunk(self, index: "RequestIndex", ids: np.ndarray, prompts: pa.Array, hashes: np.ndarray,
              acodes: np.ndarray, adapters: np.ndarray | None, dedup: bool) -> tuple[RequestBatch, np.ndarray]:
        """One chunk of agents ``ids`` (ascending, after every agent of the earlier chunks) on requests
        with one completion each: the chunk's new requests (numbered from ``index.count`` on, now in
        ``index``) and the request of each agent. ``acodes``: ``[k]`` adapter codes (equal names, equal codes)."""
        k = ids.shape[0]
        if dedup:
            req = index.lookup(prompts, hashes, acodes)
            new = np.flatnonzero(req < 0)
            sub = prompts if new.shape[0] == k else prompts.take(pa.array(new))
            codes = merge_adapters(groups(sub, hashes[new]), None if adapters is None else adapters[new])
            _, first = np.unique(codes, return_index=True)
            by_first = np.argsort(first, kind="stable")   # new requests in the order of their first agent
            rank = np.empty(by_first.shape[0], np.int64)
            rank[by_first] = np.arange(by_first.shape[0])
            req[new] = index.count + rank[codes]
            firsts = new[first[by_first]]
        else:
            req, firsts = index.count + np.arange(k), np.arange(k)
        req_prompts = prompts if firsts.shape[0] == k else prompts.take(pa.array(firsts))
        index.add(req_prompts, hashes[firsts], acodes[firsts], keep=dedup)
        first_ids = ids[firsts]
        batch = RequestBatch(req_prompts, self.sampling, self.model, np.ones(firsts.shape[0], np.int32),
                             self.seeds(first_ids), first_ids, None if adapters is None else adapters[firsts],
                             self.tick, hashes[firsts])
        return batch, req


class RequestIndex:
    """The requests planned so far, keyed exactly by (prompt text, adapter code), for prompts that
    arrive chunk by chunk.

    Keys are looked up by 64-bit hash (mixed with the adapter code) in a sorted array and confirmed
    by comparing texts; prompts whose key another text holds (a true hash collision) are kept in a
    small side table by text.
    """

    def __init__(self):
        self._keys = np.zeros(0, np.uint64)      # sorted keys of the requests that own a key
        self._reqs = np.zeros(0, np.int64)
        self._prompts: list[pa.Array] = []       # every request's prompt, chunk by chunk
        self._hash = np.zeros(0, np.uint64)      # [count] prompt hash of every request
        self._acode = np.zeros(0, np.int64)      # [count] adapter code of every request
        self._side: dict[tuple[str, int], int] = {}
        self.count = 0

    @staticmethod
    def keys(hashes: np.ndarray, acodes: np.ndarray) -> np.ndarray:
        return hashes ^ (acodes.astype(np.uint64) * _MIX)

    def lookup(self, prompts: pa.Array, hashes: np.ndarray, acodes: np.ndarray) -> np.ndarray:
        """``[m] int64``: the request each prompt joins, ``-1`` where it opens a new one."""
        m = len(prompts)
        out = np.full(m, -1, np.int64)
        if not self._keys.shape[0] or not m:
            return out
        keys = self.keys(hashes, acodes)
        pos = np.minimum(np.searchsorted(self._keys, keys), self._keys.shape[0] - 1)
        rows = np.flatnonzero(self._keys[pos] == keys)
        if not rows.shape[0]:
            return out
        cand = self._reqs[pos[rows]]
        same = (self._hash[cand] == hashes[rows]) & (self._acode[cand] == acodes[rows])
        u, inv = np.unique(cand, return_inverse=True)
        texts = pa.concat_arrays([prompts, pa.chunked_array(self._prompts).take(pa.array(u)).combine_chunks()])
        same &= strings_equal(texts, rows, m + inv.reshape(-1))
        out[rows[same]] = cand[same]
        if not same.all() and self._side:       # a key another text holds: look the text up
            for i in rows[~same].tolist():
                out[i] = self._side.get((prompts[i].as_py(), int(acodes[i])), -1)
        return out

    def add(self, prompts: pa.Array, hashes: np.ndarray, acodes: np.ndarray, keep: bool = True) -> None:
        """Plan ``len(prompts)`` new requests (numbered from :attr:`count` on, in this order);
        ``keep=False`` only counts them (requests no later prompt can join)."""
        k = len(prompts)
        if not k or not keep:
            self.count += k
            return
        reqs = self.count + np.arange(k, dtype=np.int64)
        keys = self.keys(hashes, acodes)
        _, first = np.unique(keys, return_index=True)
        owner = np.zeros(k, bool)
        owner[first] = True
        if self._keys.shape[0]:
            pos = np.minimum(np.searchsorted(self._keys, keys), self._keys.shape[0] - 1)
            owner &= self._keys[pos] != keys
        for i in np.flatnonzero(~owner).tolist():   # collisions only
            self._side[(prompts[i].as_py(), int(acodes[i]))] = int(reqs[i])
        new = np.argsort(keys[owner], kind="stable")
        new_keys, new_reqs = keys[owner][new], reqs[owner][new]
        at = np.searchsorted(self._keys, new_keys)
        self._keys, self._reqs = np.insert(self._keys, at, new_keys), np.insert(self._reqs, at, new_reqs)
        self._prompts.append(prompts)
        self._hash = np.concatenate([self._hash, np.asarray(hashes, np.uint64)])
        self._acode = np.concatenate([self._acode, np.asarray(acodes, np.int64)])
        self.count += k


class Prompts:
    """A decision's ``[n]`` prompts (``template`` over ``fields``), rendered when asked for.

    :meth:`distinct` renders one prompt per distinct combination of the agents' template field
    values (exact: strings by Arrow's dictionary encoding, numbers by value, floats by bit
    pattern) — unless most combinations are distinct, when every prompt is rendered as it is;
    :meth:`rows` renders some agents' prompts (a chunk). ``render_s``: seconds spent rendering.
    """

    def __init__(self, template, fields: Mapping[str, Any], n: int):
        self.template, self.fields, self.n = template, fields, n
        self._all: pa.Array | None = None
        self._codes: np.ndarray | bool | None = None     # [n] field-combination code; False: none
        self.render_s = 0.0

    def _columns(self) -> dict[str, Any]:
        """The template's array fields (each checked to hold ``n`` values)."""
        out = {}
        for name in self.template.fields:
            v = self.fields.get(name)
            if isinstance(v, (pa.Array, pa.ChunkedArray)) or not (v is None or isinstance(v, str) or np.ndim(v) == 0):
                if len(v) != self.n or (not isinstance(v, (pa.Array, pa.ChunkedArray)) and np.ndim(v) != 1):
                    self.template.render_arrow(self.fields, self.n)   # raises the template's error
                out[name] = v
        return out

    def render(self, rows: np.ndarray) -> pa.Array:
        """The prompts of agents ``rows`` (positions in ``fields``)."""
        t0 = time.perf_counter()
        if rows.shape[0] == self.n and (np.diff(rows) > 0).all():
            if self._all is None:
                self._all = self.template.render_arrow(self.fields, self.n)
            out = self._all
        elif self._all is not None:
            out = self._all.take(pa.array(rows))
        else:
            cols, take = self._columns(), pa.array(rows)
            sub = {k: v for k, v in self.fields.items() if k not in cols}
            sub.update({k: v.take(take) if isinstance(v, (pa.Array, pa.ChunkedArray)) else np.asarray(v)[rows]
                        for k, v in cols.items()})
            out = self.template.render_arrow(sub, rows.shape[0])
        self.render_s += time.perf_counter() - t0
        return out

    def distinct(self, rows: np.ndarray) -> tuple[pa.Array, np.ndarray | None]:
        """``(prompts, inverse)``: the distinct prompts of agents ``rows`` (one per field combination,
        in order of first appearance) and each agent's index into them — or every agent's prompt
        and ``None`` when most combinations are distinct."""
        t0 = time.perf_counter()
        if self._codes is None:
            self._codes = _combination_codes(self._columns(), self.n)
        if self._codes is False or self._all is not None:
            return self.render(rows), None
        _, first, inv = np.unique(self._codes[rows], return_index=True, return_inverse=True)
        self.render_s += time.perf_counter() - t0
        if 2 * first.shape[0] > rows.shape[0]:
            return self.render(rows), None
        order = np.argsort(first)
        rank = np.empty(order.shape[0], np.int64)
        rank[order] = np.arange(order.shape[0])
        return self.render(rows[first[order]]), rank[inv.reshape(-1)]


def _combination_codes(columns: Mapping[str, Any], n: int) -> np.ndarray | bool:
    """``[n] int64``: equal codes for agents whose every column holds equal values; False when a
    column is of a kind this does not read exactly (objects)."""
    code, card = np.zeros(n, np.int64), 1
    for v in columns.values():
        if isinstance(v, pa.ChunkedArray):
            v = v.combine_chunks()
        if not isinstance(v, pa.Array):
            a = np.asarray(v)
            if a.dtype.kind in "TUS":
                v = arrow_strings(a)
            elif a.dtype.kind == "f":                # by bit pattern: -0.0 and 0.0 render apart
                v = a.view(np.dtype(f"i{a.dtype.itemsize}"))
            elif a.dtype.kind not in "iub":
                return False
            else:
                v = a
        if isinstance(v, pa.Array):
            c = pc.dictionary_encode(v, null_encoding="encode").indices.to_numpy(zero_copy_only=False)
        elif v.dtype.kind in "iu" and n and int(v.max()) - int(v.min()) < 4 * n:
            c = v.astype(np.int64) - int(v.min())
        else:
            c = np.unique(v, return_inverse=True)[1].reshape(-1)
        c = c.astype(np.int64)
        k = int(c.max()) + 1 if n else 1
        if card * k >= 1 << 62:                      # keep the mixed-radix code within int64
            code = np.unique(code, return_inverse=True)[1].reshape(-1).astype(np.int64)
            card = int(code.max()) + 1
        code, card = code * k + c, card * k
    return code
