"""``netra`` (ours) and ``netra-sdk`` (the published SDK) both provide ``import netra``. With both in one
environment, ``netra doctor`` fails and ``Netra.init`` warns, naming the fix, instead of one silently
shadowing the other.

The environment with both: this interpreter (ours installed) with the published SDK's real
site-packages (its ``netra_sdk-1.2.2.dist-info``) appended to ``sys.path``, after ours: ``import netra``
still finds ours first, as it would with the two installed in one folder in that order.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_BOTH = """
import sys, warnings
sys.path.append({site!r})
{body}
"""


def _site_packages(python: Path) -> str:
    out = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         capture_output=True, text=True, check=True)
    site = out.stdout.strip()
    assert any(p.name.startswith("netra_sdk-1.2.2") for p in Path(site).iterdir())
    return site


def _run(body: str, site: str | None) -> subprocess.CompletedProcess[str]:
    code = _BOTH.format(site=site, body=body) if site else body
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd="/")


DOCTOR = "from netra.cli import main\nraise SystemExit(main(['doctor']))"
INIT = (
    "from netra import Netra\n"
    "with warnings.catch_warnings(record=True) as seen:\n"
    "    warnings.simplefilter('always')\n"
    "    Netra.init(app_name='x', endpoint='http://127.0.0.1:9', disable_batch=True)\n"
    "    Netra.shutdown()\n"
    "print([(w.category.__name__, str(w.message)) for w in seen if 'netra-sdk' in str(w.message)])\n"
)


def test_doctor_and_init_name_the_other_install(published_python: Path) -> None:
    site = _site_packages(published_python)
    doctor = _run(DOCTOR, site)
    assert doctor.returncode == 1, doctor.stdout + doctor.stderr
    assert "netra-sdk 1.2.2 is installed" in doctor.stderr and "pip uninstall -y netra-sdk netra" in doctor.stderr
    init = _run(INIT, site)
    assert init.returncode == 0, init.stderr
    assert "InstallConflictWarning" in init.stdout and "coming-from-netra-sdk" in init.stdout


def test_alone_there_is_nothing_to_say() -> None:
    doctor = _run(DOCTOR, None)
    assert doctor.returncode == 0 and "no other package provides" in doctor.stdout
    init = _run("import warnings\n" + INIT, None)
    assert init.returncode == 0 and init.stdout.strip() == "[]", init.stdout + init.stderr
