"""Fixtures of the credit tests: a real server (thread mode, chDB + the SQLite ledger in a temporary
folder) per module, and a credits client on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from netra_server.testing import RunningServer, netra_server  # noqa: F401  (module-scoped fixture)

from netra.credits import CreditsClient


@pytest.fixture
def credits(netra_server: RunningServer) -> Iterator[CreditsClient]:  # noqa: F811
    with CreditsClient(netra_server.base_url, netra_server.api_key, max_retries=0) as c:
        yield c
