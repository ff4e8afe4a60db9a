"""Fixtures of the compatibility tests: the published ``netra-sdk`` in its own virtualenv, a real
``netra serve`` and the simulated OpenAI endpoint.

The virtualenv is built once per machine and reused (a marker file names what it holds): under
``NETRA_COMPAT_VENV_DIR`` if set, else ``~/.cache/netra-tests``. Building it needs the package index
(PyPI); ``uv`` is used when there is one (the repo's ``.venv`` has it), else ``venv`` + ``pip``. A file
lock makes concurrent test runs share one build.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from netra_server.demo.fake_openai import serve_fake_openai
from netra_server.testing import RunningServer, run_server

#: What the published SDK's environment holds: the release the compatibility promise is about, and an
#: ``openai`` its OpenAI instrumentation supports (ours runs on openai 3.x; 1.2.2 predates it).
PUBLISHED_REQUIREMENTS = ("netra-sdk==1.2.2", "openai>=1.60,<3")
SCRIPTS = Path(__file__).resolve().parent / "scripts"


def _cache_root() -> Path:
    env = os.environ.get("NETRA_COMPAT_VENV_DIR")
    return Path(env) if env else Path.home() / ".cache" / "netra-tests"


def _uv() -> str | None:
    here = Path(sys.executable).parent / "uv"
    return str(here) if here.exists() else shutil.which("uv")


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _build(venv: Path) -> None:
    if venv.exists():
        shutil.rmtree(venv)
    uv = _uv()
    reqs = list(PUBLISHED_REQUIREMENTS)
    if uv:
        subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
        cmd = [uv, "pip", "install", "--quiet", "--python", str(_venv_python(venv)), *reqs]
    else:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        cmd = [str(_venv_python(venv)), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *reqs]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(
            f"could not install {' '.join(reqs)} into {venv} (the package index must be reachable):\n"
            f"{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
        )


def published_sdk_python() -> Path:
    """The Python of a virtualenv with the published netra-sdk 1.2.2 (built once, then reused)."""
    key = hashlib.sha1(("\n".join(PUBLISHED_REQUIREMENTS) + sys.version).encode()).hexdigest()[:10]
    root = _cache_root()
    root.mkdir(parents=True, exist_ok=True)
    venv = root / f"netra-sdk-1.2.2-py{sys.version_info.major}{sys.version_info.minor}-{key}"
    marker = venv / ".netra-compat-ok"
    with open(root / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            ok = marker.exists() and subprocess.run(
                [str(_venv_python(venv)), "-c", "import netra.usage.models, openai"], capture_output=True
            ).returncode == 0
            if not ok:
                _build(venv)
                marker.write_text("\n".join(PUBLISHED_REQUIREMENTS) + "\n")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return _venv_python(venv)


@pytest.fixture(scope="session")
def published_python() -> Path:
    return published_sdk_python()


@dataclass
class Env:
    srv: RunningServer
    openai_url: str

    def environ(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("NETRA_", "OTEL_", "OPENAI_"))}
        env.pop("PYTHONPATH", None)
        env.update({
            "NETRA_OTLP_ENDPOINT": self.srv.base_url,
            "NETRA_API_KEY": self.srv.api_key,
            "OPENAI_BASE_URL": self.openai_url,
            "OPENAI_API_KEY": "sk-local",
            **extra,
        })
        return env


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with run_server(tmp_path_factory.mktemp("compat-server")) as srv, serve_fake_openai(latency_scale=0) as url:
        yield Env(srv, url)


def run_script(python: Path | str, script: str, env: dict[str, str], out: Path, cwd: Path) -> Any:
    """Run ``scripts/<script>`` with ``python`` (from ``cwd``, so the repo is not on its path) and
    return the JSON it wrote to ``out``."""
    done = subprocess.run(
        [str(python), str(SCRIPTS / script)], env={**env, "COMPAT_OUT": str(out)}, cwd=cwd,
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, f"{script} failed with {python}:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    return json.loads(out.read_text())


def window() -> tuple[str, str]:
    now = datetime.now(UTC)
    return ((now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"))
