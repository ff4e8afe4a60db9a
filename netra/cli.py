"""The ``netra`` console script: a thin dispatcher.

Server commands (``serve``, ``keys``, and ``demo``/``alerts`` once they exist) live in
``netra_server.cli``; they are registered lazily through :func:`netra_server.cli.add_commands`, so an
SDK-only install (no ``netra[server]``) still answers ``netra --help`` and says what to install.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="netra", description="Netra: observability and per-tenant cost tracking for AI products."
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    doctor = sub.add_parser("doctor", help="check this installation (another package providing `import netra`)")
    doctor.set_defaults(func=_doctor)
    try:
        from netra_server.cli import add_commands
    except ImportError as exc:  # SDK-only install
        missing = str(exc)

        def need_server(args: argparse.Namespace) -> int:
            print(f"`netra {args.command}` needs the server: pip install 'netra[server]' ({missing})", file=sys.stderr)
            return 2

        for name in ("serve", "keys", "demo", "alerts", "credits"):
            p = sub.add_parser(name, help=f"{name} (needs netra[server])")
            p.add_argument("rest", nargs=argparse.REMAINDER)
            p.set_defaults(func=need_server)
    else:
        add_commands(sub)
    return parser


def _doctor(args: argparse.Namespace) -> int:
    """Exit 1 when another distribution that provides ``import netra`` (netra-sdk) is installed here."""
    from importlib.metadata import version

    from netra._install import conflict_message, install_conflicts

    conflicts = install_conflicts()
    if conflicts:
        print(f"netra doctor: {conflict_message(conflicts)}", file=sys.stderr)
        return 1
    print(f"netra doctor: netra {version('netra')}, no other package provides `import netra` here")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.version:
        from importlib.metadata import version

        print(f"netra {version('netra')}")
        from netra._install import conflict_message, install_conflicts

        conflicts = install_conflicts()
        if conflicts:
            print(f"warning: {conflict_message(conflicts)}", file=sys.stderr)
        return 0
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
