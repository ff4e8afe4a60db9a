"""``import netra`` does not load the credits client, and the credits client loads no HTTP or
OpenTelemetry SDK module until it is used."""

from __future__ import annotations

import json
import subprocess
import sys


def _loaded(code: str, modules: list[str]) -> list[str]:
    probe = (f"{code}\nimport sys, json\n"
             f"print(json.dumps([m for m in {modules!r} if any(k == m or k.startswith(m + '.') for k in sys.modules)]))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return list(json.loads(out.stdout))


def test_import_netra_does_not_load_credits() -> None:
    assert _loaded("import netra\nfrom netra import Netra", ["netra.credits"]) == []


def test_import_credits_loads_no_http_client_or_sdk() -> None:
    assert _loaded("from netra.credits import CreditsClient, InsufficientCredits, Usage\nCreditsClient('http://x:1', 'k')",
                   ["httpx", "opentelemetry.sdk", "netra.credits._scope"]) == []
