"""Rules of the whole test suite.

In CI (the ``CI`` environment variable set, as ``.ci/run`` runs with ``CI=true``) a skipped test is a
failure: there a skip would hide a missing piece (the browser, a fixture folder, a package) and a green
run would test less than it says. Without ``CI`` a test may skip when a tool is missing, with a message
that says how to install it. Expected failures (``xfail``) are not skips and keep their meaning.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest


def in_ci() -> bool:
    """Whether this run is CI's (``CI`` set to anything but empty, 0, false or no)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _skip_reason(report: Any) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _as_failure(report: Any) -> None:
    reason = _skip_reason(report)
    report.outcome = "failed"
    report.longrepr = (
        f"skipped in CI: {reason}\n"
        "In CI (CI is set) every test must run; a skip would hide a missing piece. Install what the test "
        "needs in scripts/test (or scripts/install), or unset CI to let it skip on a developer machine."
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail") and in_ci():
        _as_failure(report)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if report.skipped and in_ci():  # pytest.importorskip or a module-level skip
        _as_failure(report)
