"""The quickstart's Python snippets, run as written against a real server and the local endpoint.

``docs/quickstart.md`` says its snippets run; this is where. They run in a child process (a fresh
interpreter, as a user would), configured only through the environment variables the page names:
``NETRA_OTLP_ENDPOINT``, ``NETRA_API_KEY``, ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from netra_server.demo.fake_openai import FakeOpenAIConfig, FakeOpenAIServer
from netra_server.testing import RunningServer, run_server

from netra.pricing import price_tokens

QUICKSTART = Path(__file__).resolve().parents[2] / "docs" / "quickstart.md"


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", markdown, re.MULTILINE | re.DOTALL)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with run_server(tmp_path_factory.mktemp("quickstart"), subprocess=True) as srv:
        yield srv


def _user_env(server: RunningServer, fake: FakeOpenAIServer) -> dict[str, str]:
    """This environment without Netra/OpenAI/OpenTelemetry settings, plus only what the docs tell a user
    to set: the server's endpoint and key, and an OpenAI key and base URL (the local endpoint)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NETRA_", "OPENAI_", "OTEL_"))}
    env.update(NETRA_OTLP_ENDPOINT=server.base_url, NETRA_API_KEY=server.api_key,
               OPENAI_API_KEY="sk-local-docs", OPENAI_BASE_URL=fake.base_url)
    return env


def _run(code: str, env: dict[str, str]) -> str:
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.mark.slow
def test_quickstart_snippets_run_and_bill_the_tenant(server: RunningServer) -> None:
    blocks = python_blocks(QUICKSTART.read_text())
    assert len(blocks) == 2, "the quickstart has an instrumenting snippet and a reading snippet"
    with FakeOpenAIServer(config=FakeOpenAIConfig(latency_scale=0)) as fake:
        env = _user_env(server, fake)
        first = _run(blocks[0], env)
        assert "Action items" in first
        served = fake.stats()["models"]["gpt-4o-mini-2024-07-18"]
        assert served["requests"] == 1
        second = _run(blocks[1], env)

    figures = re.search(r"(\d+) requests, (\d+) sessions, (\d+) tokens, \$([\d.]+)", second)
    assert figures, second
    requests, sessions, tokens, cost = figures.groups()
    chat_cost = price_tokens("gpt-4o-mini-2024-07-18", provider="openai", input_tokens=served["prompt_tokens"],
                             output_tokens=served["completion_tokens"]).cost
    assert chat_cost is not None
    assert (int(requests), int(sessions)) == (2, 1)  # the transcription and the chat call; one session
    assert int(tokens) == served["prompt_tokens"] + served["completion_tokens"]
    assert Decimal(cost) == (Decimal("0.075") + chat_cost).quantize(Decimal("0.000001"))
    trace_lines = [line for line in second.splitlines() if "meeting-summarization" in line]
    assert len(trace_lines) == 1


README = QUICKSTART.parents[1] / "README.md"


@pytest.mark.slow
def test_readme_snippet_runs_and_reads_the_usage_back(server: RunningServer) -> None:
    blocks = python_blocks(README.read_text())
    assert len(blocks) == 1, "the README has one Python snippet"
    with FakeOpenAIServer(config=FakeOpenAIConfig(latency_scale=0)) as fake:
        env = _user_env(server, fake)
        probe = ("from datetime import UTC, datetime, timedelta\nfrom netra import Netra\nNetra.init(app_name='x')\n"
                 "end = datetime.now(UTC)\n"
                 "usage = Netra.usage.get_tenant_usage('apex-legal', end - timedelta(hours=24), end)\n"
                 "print(f'apex-legal: {usage.request_count} requests, {usage.token_count} tokens, "
                 "${usage.total_cost:.6f}')\nNetra.shutdown()\n")
        before = _figures(_run(probe, env))
        after = _figures(_run(blocks[0], env))
        served = fake.stats()["models"]["gpt-4o-mini-2024-07-18"]
    assert served["requests"] == 1
    chat_cost = price_tokens("gpt-4o-mini-2024-07-18", provider="openai", input_tokens=served["prompt_tokens"],
                             output_tokens=served["completion_tokens"]).cost
    assert chat_cost is not None
    # the server is shared with the quickstart test: compare with what was there before the snippet ran
    assert after[0] - before[0] == 2  # the transcription and the chat call
    assert after[1] - before[1] == served["prompt_tokens"] + served["completion_tokens"]
    assert after[2] - before[2] == (Decimal("0.075") + chat_cost).quantize(Decimal("0.000001"))


def _figures(output: str) -> tuple[int, int, Decimal]:
    found = re.search(r"apex-legal: (\d+) requests, (\d+) tokens, \$([\d.]+)", output)
    assert found, output
    return int(found.group(1)), int(found.group(2)), Decimal(found.group(3))
