"""The wheel, as `pip install netra[server]` would build it from source: with a C compiler it carries
the server's compiled OTLP reader (a platform wheel); with none (``NETRA_NO_COMPILE=1`` stands in
for a machine without one) it is pure Python, and the server reads the same spans from a body."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UV = Path(sys.executable).parent / "uv"


def _build(out: Path, **env: str) -> Path:
    if not UV.exists():
        pytest.skip("uv is not in the virtualenv (scripts/install puts it there)")
    subprocess.run([str(UV), "build", "--wheel", "-o", str(out), str(ROOT)], check=True, capture_output=True,
                   timeout=300, env={**os.environ, **env})
    (wheel,) = out.glob("*.whl")
    return wheel


_PARSE = """
import sys, netra_server.otlp as otlp, netra_server.otlp_read as otlp_read
from netra_server.config import Limits
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
req = ExportTraceServiceRequest()
sp = req.resource_spans.add().scope_spans.add().spans.add(
    trace_id=bytes(range(1, 17)), span_id=bytes(range(1, 9)), name="chat", start_time_unix_nano=1767225600 * 10**9)
sp.attributes.add(key="netra.tenant_id").value.string_value = "acme"
sp.attributes.add(key="gen_ai.usage.input_tokens").value.int_value = 7
batch = otlp.parse_export(req.SerializeToString(), "application/x-protobuf", "", Limits(), "p", 1767225600000)
print(otlp_read.COMPILED_READER, otlp.__file__)
sys.stdout.buffer.write(batch.data)
"""


def _parse_with(wheel: Path, tmp: Path) -> tuple[str, bytes]:
    site = tmp / wheel.stem
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    out = subprocess.run([sys.executable, "-c", _PARSE], capture_output=True, check=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(site)}).stdout
    head, _, rows = out.partition(b"\n")
    assert str(site) in head.decode(), head  # the wheel's netra_server, not the checkout's
    return head.decode().split()[0], rows


def test_the_wheel_carries_the_compiled_reader_or_reads_without_it(tmp_path: Path) -> None:
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler on this machine (scripts/test installs gcc as root)")
    compiled = _build(tmp_path / "compiled")
    pure = _build(tmp_path / "pure", NETRA_NO_COMPILE="1")

    assert "linux" in compiled.name and "cp3" in compiled.name, compiled.name  # a platform wheel
    assert pure.name.endswith("-py3-none-any.whl"), pure.name
    with zipfile.ZipFile(compiled) as zf:
        assert [n for n in zf.namelist() if n.startswith("netra_server/_otlp_wire.") and n.endswith(".so")]
    with zipfile.ZipFile(pure) as zf:
        assert not [n for n in zf.namelist() if n.endswith(".so")]

    fast = _parse_with(compiled, tmp_path)
    slow = _parse_with(pure, tmp_path)
    assert (fast[0], slow[0]) == ("True", "False")
    assert fast[1] == slow[1] and b'"acme"' in fast[1]
