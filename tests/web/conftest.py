"""Shared fixtures of the dashboard tests: one small mock run of ``social`` and an authorised client."""
from __future__ import annotations

import shutil

import pytest

pytest.importorskip("fastapi", reason="the dashboard needs the `ui` extra (fastapi, uvicorn)")

TOKEN = "test-token-0123456789abcdef"


@pytest.fixture(scope="session")
def mock_run(tmp_path_factory):
    """A finished ``social`` run: 300 agents, 3 steps, the mock engine (read-only: copy it to write)."""
    from socius.app.cli import main

    out = tmp_path_factory.mktemp("runs") / "social"
    assert main(["run", "social", "--agents", "300", "--steps", "3", "--engine", "mock", "--seed", "1",
                 "--out", str(out), "--quiet"]) == 0
    return out


@pytest.fixture
def run_dir(mock_run, tmp_path):
    """A private copy of the mock run (tests that write labels use it)."""
    dst = tmp_path / "social"
    shutil.copytree(mock_run, dst)
    return dst


def make_client(run_dir, token=TOKEN, auth=True):
    from fastapi.testclient import TestClient

    from socius.web.api import create_app
    from socius.web.runs import discover_runs

    client = TestClient(create_app(discover_runs([run_dir]), token))
    if auth:
        client.cookies.set("socius_token", token)
    return client


@pytest.fixture
def client(run_dir):
    return make_client(run_dir)
