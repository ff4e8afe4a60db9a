"""Build hook: compiles ``server/netra_server/_otlp_wire.c``, the server's compiled reader of OTLP
protobuf bodies, into the wheel (and beside its source for an editable install).

It is optional. Without a C compiler (or with ``NETRA_NO_COMPILE=1``) the wheel stays pure Python and
the protobuf runtime reads every body: the same rows, at about twice the parse CPU per span
(``docs/deployment.md``, "Ingest CPU"). ``NETRA_REQUIRE_COMPILED=1`` turns a failed compile into a
failed build (CI sets it, so a broken reader cannot pass as "no compiler").
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCE = "server/netra_server/_otlp_wire.c"
MODULE = "netra_server._otlp_wire"


def compile_reader(root: Path, out_dir: Path) -> Path:
    """Build the extension with setuptools' ``build_ext`` (the platform's compiler and flags); the
    path of the built module."""
    from setuptools import Distribution, Extension
    from setuptools.command.build_ext import build_ext

    here = Path.cwd()
    os.chdir(root)  # setuptools wants the sources relative to the project
    try:
        dist = Distribution({"name": "netra-otlp-wire", "ext_modules": [Extension(MODULE, [SOURCE])]})
        cmd = build_ext(dist)
        cmd.build_lib = str(out_dir / "lib")
        cmd.build_temp = str(out_dir / "temp")
        cmd.ensure_finalized()
        cmd.run()
        return Path(cmd.get_ext_fullpath(MODULE)).resolve()
    finally:
        os.chdir(here)


class CustomBuildHook(BuildHookInterface):
    _out_dir: Path | None = None

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or os.environ.get("NETRA_NO_COMPILE") == "1":
            return
        out_dir = self._out_dir = Path(tempfile.mkdtemp(prefix="netra-build-"))
        try:
            built = compile_reader(Path(self.root), out_dir)
        except Exception as exc:  # no compiler, no headers: the pure-Python reader serves
            if os.environ.get("NETRA_REQUIRE_COMPILED") == "1":
                raise
            self.app.display_warning(
                f"netra: the compiled OTLP reader was not built ({type(exc).__name__}: {exc}); the server "
                "reads protobuf bodies with the protobuf runtime instead (same results, more CPU per span)"
            )
            return
        if version == "editable":  # the editable install puts server/ on sys.path: the module goes beside its source
            shutil.copy2(built, Path(self.root) / "server" / "netra_server" / built.name)
        else:
            build_data["force_include"][str(built)] = f"netra_server/{built.name}"
            build_data["pure_python"] = False
            build_data["infer_tag"] = True

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        """The build's temporary folder goes once the wheel holds (or the source tree has) the module."""
        if self._out_dir is not None:
            shutil.rmtree(self._out_dir, ignore_errors=True)
            self._out_dir = None
