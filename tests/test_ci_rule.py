"""The suite's CI rule (tests/conftest.py): with CI set, a skipped test fails; without it, it skips.
Each case runs pytest in a child process, as CI and as a developer."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


def run_pytest(args: list[str], cwd: Path, ci: bool, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "CI"} | env
    if ci:
        environ["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs", *args],
        cwd=cwd, env=environ, capture_output=True, text=True, timeout=300,
    )


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    """A small suite under the real rule: a skip at run time, one at import, an xfail and a pass."""
    shutil.copy(TESTS / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_runtime.py").write_text(
        "import pytest\n\n"
        "def test_needs_a_tool():\n    pytest.skip('tool X is not installed: apt-get install x')\n\n"
        "@pytest.mark.xfail(reason='known bug')\ndef test_known_bug():\n    assert False\n\n"
        "def test_fine():\n    pass\n"
    )
    (tmp_path / "test_import.py").write_text(
        "import pytest\n\nmissing = pytest.importorskip('no_such_module_for_netra_tests')\n\n"
        "def test_uses_it():\n    pass\n"
    )
    return tmp_path


def test_a_skip_fails_in_ci(suite: Path) -> None:
    done = run_pytest(["-q", "test_runtime.py"], suite, ci=True)
    assert done.returncode == 1, done.stdout
    assert "skipped in CI: tool X is not installed: apt-get install x" in done.stdout
    assert "1 failed, 1 passed, 1 xfailed" in done.stdout
    done = run_pytest(["-q", "test_import.py"], suite, ci=True)  # a collection error stops the run
    assert done.returncode == 2, done.stdout
    assert "skipped in CI: could not import 'no_such_module_for_netra_tests'" in done.stdout


def test_a_skip_stays_a_skip_for_a_developer(suite: Path) -> None:
    done = run_pytest(["-q", "."], suite, ci=False)
    assert done.returncode == 0, done.stdout
    assert "1 passed, 2 skipped, 1 xfailed" in done.stdout


@pytest.mark.parametrize("ci", [True, False])
def test_browser_tests_without_chromium(ci: bool, tmp_path: Path) -> None:
    missing = tmp_path / "no-chromium-here"
    done = run_pytest(
        ["-q", "tests/dashboard", "-k", "waterfall_alert_rule"], ROOT, ci=ci, NETRA_TEST_CHROMIUM=str(missing)
    )
    assert f"Chromium at {missing}" in done.stdout and "apt-get install chromium" in done.stdout, done.stdout
    if ci:
        assert done.returncode == 1 and "1 error" in done.stdout, done.stdout
    else:
        assert done.returncode == 0 and "1 skipped" in done.stdout, done.stdout
