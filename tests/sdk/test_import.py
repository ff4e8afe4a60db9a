"""``import netra`` stays light: heavy and optional packages load on first use only."""

from __future__ import annotations

import json
import subprocess
import sys

LAZY = ["openai", "genai_prices", "httpx2", "httpx", "opentelemetry.sdk", "opentelemetry.exporter",
        "netra.usage", "netra.pricing", "netra_instrumentation_openai", "fastapi", "chdb", "pydantic"]


def test_import_netra_imports_no_heavy_modules() -> None:
    code = (
        "import sys, json, netra\n"
        "from netra import Netra, SpanType, UsageModel, workflow, task, agent, span\n"
        "from netra.instrumentation.instruments import InstrumentSet\n"
        f"print(json.dumps([m for m in {LAZY!r} if m in sys.modules or any(k.startswith(m + '.') for k in sys.modules)]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_public_names() -> None:
    import netra

    assert {"Netra", "SpanType", "UsageModel", "workflow", "task", "agent", "span"} <= set(netra.__all__)
