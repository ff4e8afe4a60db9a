"""The embedded store's memory is bounded: chDB starts with netra's cache sizes and memory limit
(ClickHouse's defaults are 5 GiB caches and 90% of RAM), and ``--store-memory-mb`` sets the limit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = """
import json, sys
from netra_server.store import open_store
limit = None if sys.argv[2] == "default" else int(sys.argv[2])
st = open_store("chdb://" + sys.argv[1], memory_limit_bytes=limit)
rows = st.query("SELECT name, value FROM system.server_settings WHERE name IN ('max_server_memory_usage', "
                "'mark_cache_size', 'primary_index_cache_size', 'index_mark_cache_size')")
print(json.dumps({r["name"]: int(r["value"]) for r in rows}))
st.close()
"""


@pytest.mark.parametrize(("limit", "expected"), [("default", 1024**3), (str(300 * 1024**2), 300 * 1024**2)])
def test_chdb_starts_with_bounded_caches_and_memory(tmp_path: Path, limit: str, expected: int) -> None:
    out = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "store"), limit], capture_output=True,
                         text=True, timeout=120, check=True).stdout
    got = json.loads(out.strip().splitlines()[-1])
    assert got["max_server_memory_usage"] == expected
    assert got["mark_cache_size"] == 128 * 1024**2  # ClickHouse's default: 5 GiB
    assert got["primary_index_cache_size"] == 64 * 1024**2
    assert got["index_mark_cache_size"] == 32 * 1024**2
