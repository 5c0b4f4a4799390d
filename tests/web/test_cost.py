"""Cost so far: tokens always, dollars where the run's engine config gives a price; and the API's JSON."""
from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings, strategies as st

from socius.web.cost import PRICE_KEYS, cost_so_far

from .conftest import make_client


def _tokens(run_dir) -> tuple[int, int]:
    t = pq.read_table(run_dir / "decisions.parquet")
    return sum(t.column("prompt_tokens").to_pylist()), sum(t.column("output_tokens").to_pylist())


def _price(run_dir, **prices) -> None:
    info = json.loads((run_dir / "run.json").read_text())
    info["engine"]["config"].update(prices)
    (run_dir / "run.json").write_text(json.dumps(info))


def test_tokens_without_a_price(client, run_dir):
    prompt, output = _tokens(run_dir)
    cost = client.get("/api/runs/social/cost").json()
    assert (cost["prompt_tokens"], cost["output_tokens"], cost["tokens"]) == (prompt, output, prompt + output)
    assert prompt > 0 and cost["usd"] is None and "price_prompt_per_mtok" in cost["note"]
    assert client.get("/api/runs/social/decisions").json()["cost"] == {k: v for k, v in cost.items() if k != "version"}


def test_dollars_from_the_recorded_engine_config(client, run_dir):
    prompt, output = _tokens(run_dir)
    _price(run_dir, price_prompt_per_mtok=0.15, price_output_per_mtok=0.6)
    cost = client.get("/api/runs/social/cost").json()
    assert cost["usd"] == pytest.approx((prompt * 0.15 + output * 0.6) / 1e6) and cost["note"] is None
    assert client.get("/api/runs/social/decisions").json()["cost"]["usd"] == pytest.approx(cost["usd"])


@pytest.mark.parametrize("bad", [-1, "cheap", True, float("inf")])
def test_a_bad_price_is_named_not_summed(run_dir, bad):
    _price(run_dir, price_output_per_mtok=bad)
    cost = make_client(run_dir).get("/api/runs/social/cost").json()
    assert cost["usd"] is None and "price_output_per_mtok must be a number >= 0" in cost["note"]


class _Source:
    def __init__(self, prompt, output, cfg):
        import pyarrow as pa
        self.table = pa.table({"tick": [0], "prompt_tokens": [prompt], "output_tokens": [output]})
        self.meta = {"engine": {"kind": "openai", "config": cfg}}

    def run_json(self):
        return None  # a live run before it writes run.json: the price comes from what it will record

    def decisions(self):
        return self.table


@settings(max_examples=50, deadline=None)
@given(prompt=st.integers(0, 10**12), output=st.integers(0, 10**12),
       pp=st.none() | st.floats(0, 1000), po=st.none() | st.floats(0, 1000))
def test_the_dollars_are_the_tokens_at_the_prices(prompt, output, pp, po):
    cfg = {k: v for k, v in zip(PRICE_KEYS, (pp, po)) if v is not None}
    cost = cost_so_far(_Source(prompt, output, cfg))
    assert cost["tokens"] == prompt + output
    if not cfg:
        assert cost["usd"] is None
    else:
        assert cost["usd"] == pytest.approx((prompt * (pp or 0) + output * (po or 0)) / 1e6)


def test_nan_in_run_json_answers_null_not_500(client, run_dir):
    info = json.loads((run_dir / "run.json").read_text())
    info["summary"]["odd"] = float("nan")
    (run_dir / "run.json").write_text(json.dumps(info))  # json writes NaN, as a run's summary may hold
    r = client.get("/api/runs/social")
    assert r.status_code == 200 and r.json()["run"]["summary"]["odd"] is None
    assert r.headers["x-content-type-options"] == "nosniff"
