"""Two distributions provide ``import netra``: ours (``pip install netra``) and the published Netra SDK
(``pip install netra-sdk``). Installed side by side, the one installed last overwrites the other's
files in the same ``netra/`` folder: a mix of both that neither was tested as. :func:`install_conflicts`
finds the other one; ``Netra.init`` warns about it and ``netra doctor`` fails on it, with the fix.
"""

from __future__ import annotations

import warnings

__all__ = ["InstallConflictWarning", "conflict_message", "install_conflicts", "warn_on_conflict"]

#: Distributions other than ours that install a top-level ``netra`` package.
OTHER_DISTRIBUTIONS = ("netra-sdk",)

_warned = False


class InstallConflictWarning(UserWarning):
    """Another distribution that provides ``import netra`` is installed in this environment."""


def install_conflicts() -> list[tuple[str, str]]:
    """``(name, version)`` of each other distribution providing ``import netra`` that is installed."""
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name in OTHER_DISTRIBUTIONS:
        try:
            found.append((name, version(name)))
        except PackageNotFoundError:
            continue
    return found


def conflict_message(conflicts: list[tuple[str, str]]) -> str:
    names = ", ".join(f"{n} {v}" for n, v in conflicts)
    return (
        f"{names} is installed in this environment beside netra: both install the `netra` package into the "
        f"same folder, so `import netra` gets a mix of the two. Keep one: "
        f"`pip uninstall -y {' '.join(n for n, _ in conflicts)} netra && pip install netra` (this project's SDK; "
        f"code written for netra-sdk runs unchanged, see docs/coming-from-netra-sdk.md), or uninstall netra "
        f"to keep netra-sdk."
    )


def warn_on_conflict() -> None:
    """Warn once per process (``InstallConflictWarning``) when another ``netra`` distribution is installed."""
    global _warned
    if _warned:
        return
    _warned = True
    try:
        conflicts = install_conflicts()
    except Exception:  # never let an install check break init
        return
    if conflicts:
        warnings.warn(conflict_message(conflicts), InstallConflictWarning, stacklevel=3)
