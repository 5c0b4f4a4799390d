"""``bench/dummy_latency.py`` at a small size: one JSON line per round with the figures the docs quote,
for the shared and the unique prompt case, streamed or not, then a summary line per case."""
from __future__ import annotations

import json

import pytest

from socius.bench import dummy_latency


def lines(capsys, *args):
    dummy_latency.main(["--size", "small", "--agents", "300", *args])
    return [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]


@pytest.mark.parametrize("stream", ["on", "off"])
def test_unique_prompts_are_one_request_per_agent(capsys, stream):
    rounds = lines(capsys, "--profiles", "unique", "--stream", stream, "--rounds", "2", "--policy", "dummy")
    *per_round, summary = rounds
    assert [r["round"] for r in per_round] == [1, 2] and summary["summary"] and summary["rounds"] == 1
    for r in per_round:
        assert r["requests"] == r["ok"] == 300 and r["profile"] == "unique" and r["stream"] == stream
        assert r["wall_s"] >= 1.0                                       # the 1-s latency model
        assert {"peak_rss_mb", "load_avg_1m", "cpu_us_per_prompt", "sys_s", "overlap_s"} <= set(r)
        assert (r["stream_calls"] > 0) == (stream == "on")


def test_shared_prompts_are_deduplicated(capsys):
    (r, _) = lines(capsys, "--profiles", "occupation")
    assert r["requests"] < r["ok"] + r["extracted"] and r["ok"] + r["extracted"] + r["failed"] == 300
    assert r["stream_calls"] == 0                                       # the default: no streaming


def test_bad_case_names_exit_with_a_message(capsys):
    with pytest.raises(SystemExit) as e:
        dummy_latency.main(["--profiles", "nope"])
    assert e.value.code == 2 and "nope" in capsys.readouterr().err
