"""The server's subcommands of the ``netra`` CLI: ``serve`` and ``keys`` (and ``demo``, ``alerts``, ``credits``).

``netra/cli.py`` (the console script) calls :func:`add_commands` with its argparse sub-parsers. Each
subcommand is registered by a function ``add_command(subparsers) -> None`` that adds a parser and sets
``func=<callable(args) -> int>`` on it. To add one (e.g. ``demo``, ``alerts``), write a module with
``add_command`` and list it in :data:`COMMAND_MODULES`.
Keep imports inside the command functions: ``netra --help`` must stay fast.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

__all__ = ["COMMAND_MODULES", "add_commands", "main"]

#: Modules with an ``add_command(subparsers)`` function, registered in this order.
COMMAND_MODULES = ("netra_server.demo.cli", "netra_server.alerts.cli", "netra_server.credits.cli")

_STATE_FILE = "server.json"


def add_commands(sub: Any) -> None:
    """Register ``serve``, ``keys`` and the commands of :data:`COMMAND_MODULES` on ``sub``."""
    _add_serve(sub)
    _add_keys(sub)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_command(sub)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", type=Path, default=None,
                   help="data folder (default: $NETRA_DATA_DIR or ~/.netra/data)")
    p.add_argument("--store", dest="store_url", default=os.environ.get("NETRA_STORE_URL"),
                   help="store URL: clickhouse://user:pass@host:8123/db (default: embedded chDB in the data folder)")


def _add_serve(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the server: OTLP receiver, usage API, dashboard (one port)",
                       description="Run the Netra server: OTLP/HTTP receiver, usage API and dashboard on one port.")
    _common(p)
    p.add_argument("--host", default=os.environ.get("NETRA_HOST", "127.0.0.1"),
                   help="interface to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    p.add_argument("--port", type=int, default=int(os.environ.get("NETRA_PORT", "4318")), help="port (default 4318)")
    p.add_argument("--retention-days", type=int, default=None,
                   help="delete spans older than this many days (default: keep)")
    p.add_argument("--api-key", default=os.environ.get("NETRA_API_KEY"),
                   help="admin key to create on first start instead of a random one (env NETRA_API_KEY)")
    p.add_argument("--project-name", default="default", help="name of the project created on first start")
    p.add_argument("--parse-workers", type=int, default=None,
                   help="processes decoding large OTLP requests (default: one per core, at most 4; 0: none)")
    p.add_argument("--log-level", default="warning", help="uvicorn log level (default warning)")
    p.add_argument("--no-alerts", action="store_true", help="do not evaluate alert rules here (one evaluator per store)")
    p.add_argument("--rollup-interval", type=float, default=float(os.environ.get("NETRA_ROLLUP_INTERVAL", "30")),
                   help="seconds between refreshes of the daily rollups (default 30; 0: none in this process)")
    p.add_argument("--no-journal", action="store_true",
                   help="embedded store: answer exports after their INSERT instead of after the ingest journal's write")
    p.add_argument("--journal-fsync", action="store_true",
                   help="fsync the ingest journal before answering (acknowledged spans survive a power loss)")
    p.add_argument("--ingest-nice", type=int, default=10, choices=range(20), metavar="0-19",
                   help="Linux nice value of the parse workers and chDB's merge threads, so reads get the CPU first "
                        "when ingest saturates it (default 10; 0: the same priority as reads)")
    p.add_argument("--no-live-usage", action="store_true",
                   help="embedded store: do not keep the live usage table; usage reads of the day being written "
                        "then aggregate its spans (slower as the day grows)")
    p.add_argument("--usage-cache-seconds", type=float, default=1.0, metavar="S",
                   help="embedded store: a usage read answers from the last answer to the same read while no span "
                        "was written since, for at most S seconds (default 1; 0: off)")
    p.add_argument("--journal-flush-seconds", type=float, default=1.0,
                   help="insert the ingest journal into the store once its oldest spans are this old, less the time "
                        "the last insert took (default 1)")
    p.add_argument("--read-consistency", choices=("bounded", "strong"), default="bounded",
                   help="embedded store: what a read that does not ask (consistency=, X-Netra-Consistency) sees: "
                        "'bounded' answers from what is inserted and states data_as_of (default); 'strong' waits "
                        "for every span acknowledged before it (read-your-writes)")
    p.add_argument("--max-read-staleness", type=float, default=5.0,
                   help="a bounded read whose data would be older than this many seconds waits as a strong one "
                        "does (default 5)")
    p.add_argument("--ingest-wait-seconds", type=float, default=2.0, metavar="S",
                   help="while the store is behind (see --max-read-staleness), hold a new export up to this long "
                        "for it to catch up before answering 429 (default 2; 0: answer 429 at once)")
    p.add_argument("--store-memory-mb", type=int, default=None,
                   help="embedded store: chDB's memory limit (caches, inserts, merges, queries; default 1024; "
                        "0: ClickHouse's default, 90%% of RAM)")
    p.add_argument("--min-free-disk-mb", type=float,
                   default=float(os.environ.get("NETRA_MIN_FREE_DISK_MB", "256")),
                   help="embedded store: refuse new spans (503 + Retry-After) while the data folder's disk has less "
                        "free space than this (default 256; env NETRA_MIN_FREE_DISK_MB; 0: no check)")
    p.add_argument("--max-id-bytes", type=int, default=256,
                   help="longest tenant/session/user id of a span, in UTF-8 bytes; a span with a longer one is "
                        "rejected alone (default 256)")
    p.set_defaults(func=serve)


def _settings(args: argparse.Namespace) -> Any:
    from netra_server.config import Limits, Settings, default_data_dir

    return Settings(
        data_dir=(args.data_dir or default_data_dir()).expanduser(),
        host=getattr(args, "host", "127.0.0.1"),
        port=getattr(args, "port", 4318),
        store_url=args.store_url,
        retention_days=getattr(args, "retention_days", None),
        api_key=getattr(args, "api_key", None),
        project_name=getattr(args, "project_name", "default"),
        parse_workers=getattr(args, "parse_workers", None),
        rollup_interval=getattr(args, "rollup_interval", 30.0),
        journal=not getattr(args, "no_journal", False),
        journal_fsync=getattr(args, "journal_fsync", False),
        journal_flush_seconds=getattr(args, "journal_flush_seconds", 1.0),
        ingest_nice=getattr(args, "ingest_nice", 10),
        live_usage=not getattr(args, "no_live_usage", False),
        usage_cache_seconds=getattr(args, "usage_cache_seconds", 1.0),
        read_consistency=getattr(args, "read_consistency", "bounded"),
        store_memory_bytes=(None if getattr(args, "store_memory_mb", None) is None
                            else int(args.store_memory_mb) * 1024 * 1024),
        max_read_staleness=getattr(args, "max_read_staleness", 5.0),
        ingest_wait_seconds=getattr(args, "ingest_wait_seconds", 2.0),
        min_free_disk_bytes=int(getattr(args, "min_free_disk_mb", 256) * 1024 * 1024),
        limits=Limits(max_id_bytes=getattr(args, "max_id_bytes", 256)),
    )


def _display(path: Path) -> str:
    try:
        return "~/" + str(path.resolve().relative_to(Path.home().resolve()))
    except ValueError:
        return str(path)


def _exit_after_graceful_stop(signum: int, frame: Any) -> None:
    raise SystemExit(0)


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from netra_server.app import create_app
    from netra_server.lifecycle import prepare_store
    from netra_server.store import StoreError

    try:
        settings = _settings(args)
    except ValueError as exc:  # a value the settings refuse (a negative number of seconds, ...)
        print(f"netra serve: {exc}", file=sys.stderr)
        return 2
    if args.no_alerts:  # read by netra_server.alerts when the app starts
        os.environ["NETRA_ALERTS"] = "off"
    if settings.retention_days is not None and settings.retention_days < 1:
        print("--retention-days must be at least 1", file=sys.stderr)
        return 2
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        store, project, key = prepare_store(settings)
    except StoreError as exc:
        print(f"netra serve: {exc}", file=sys.stderr)
        return 1
    url = f"http://{settings.host}:{settings.port}"
    where = f"store: {settings.store_url}" if settings.store_url else f"data: {_display(settings.data_dir)}"
    print(f"Netra server listening on {url} ({where})", flush=True)
    if key is not None:
        if settings.api_key:
            print(f"Created project {project.name!r} with the admin API key from --api-key/NETRA_API_KEY", flush=True)
        else:
            print(f"Created project {project.name!r} and admin API key: {key}  "
                  "(shown once; `netra keys create` makes more)", flush=True)
    else:
        print(f"Project {project.name!r} ({project.project_id}); API keys: `netra keys list`", flush=True)
    print(f"OTLP endpoint: {url}/v1/traces   API docs: {url}/docs", flush=True)
    from netra_server.otlp_read import COMPILED_READER

    if not COMPILED_READER:
        print("Note: the compiled OTLP reader is not built (no C compiler when Netra was installed), so protobuf "
              "bodies are read by the protobuf runtime: the same spans, at about twice the parse CPU per span. "
              "Reinstall with a C compiler to build it (docs/deployment.md, 'Ingest CPU').", flush=True)
    state_file = settings.data_dir / _STATE_FILE
    state_file.write_text(json.dumps({"pid": os.getpid(), "url": url}))
    # uvicorn stops gracefully on SIGTERM (the app's shutdown inserts the ingest journal), then raises the
    # signal again once it has restored the previous handler; without one, SIGTERM's default action would
    # end the process before the store is closed and the state file removed below.
    signal.signal(signal.SIGTERM, _exit_after_graceful_stop)
    try:
        app = create_app(settings, store=store)
        uvicorn.run(app, host=settings.host, port=settings.port, log_level=args.log_level, access_log=False,
                    timeout_graceful_shutdown=10)
    except SystemExit as exc:
        if exc.code != 0:
            raise
    finally:
        store.close()
        try:
            if json.loads(state_file.read_text()).get("pid") == os.getpid():
                state_file.unlink()
        except (OSError, ValueError):
            pass
    return 0


# -- keys -----------------------------------------------------------------------------------------------


def _add_keys(sub: Any) -> None:
    p = sub.add_parser("keys", help="create, list or revoke API keys",
                       description="Manage API keys. Works on the store directly when no server runs on it; "
                                   "when `netra serve` holds the data folder, goes through its API with an admin key "
                                   "(--api-key or NETRA_API_KEY).")
    ks = p.add_subparsers(dest="keys_command", required=True)
    c = ks.add_parser("create", help="create a key (printed once)")
    _common(c)
    c.add_argument("--role", choices=["admin", "ingest", "read"], default="read",
                   help="admin: everything; ingest: send spans; read: read only (default)")
    c.add_argument("--tenant", default=None,
                   help="read key: limited to this tenant; ingest key: bound to it (every span it sends is "
                        "stored as this tenant's, whatever tenant attribute the span carries)")
    c.add_argument("--name", default="", help="a label for the key")
    c.add_argument("--project", default=None, help="project id (default: the first project)")
    c.add_argument("--api-key", default=os.environ.get("NETRA_API_KEY"), help="admin key, when a server is running")
    c.set_defaults(func=keys_create)
    ls = ks.add_parser("list", help="list keys (ids, roles, tenants; never the keys)")
    _common(ls)
    ls.add_argument("--api-key", default=os.environ.get("NETRA_API_KEY"), help="admin key, when a server is running")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=keys_list)
    rv = ks.add_parser("revoke", help="revoke a key by id")
    _common(rv)
    rv.add_argument("key_id", help="the key id (`netra keys list`)")
    rv.add_argument("--api-key", default=os.environ.get("NETRA_API_KEY"), help="admin key, when a server is running")
    rv.set_defaults(func=keys_revoke)


class _Remote:
    def __init__(self, url: str, key: str) -> None:
        import httpx

        self.client = httpx.Client(base_url=url, headers={"x-api-key": key}, timeout=30)

    def call(self, method: str, path: str, **kw: Any) -> Any:
        r = self.client.request(method, path, **kw)
        if r.status_code >= 400:
            try:
                msg = r.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                msg = r.text
            raise SystemExit(f"netra keys: the server answered {r.status_code}: {msg}")
        return r.json()["data"]


def _open(args: argparse.Namespace) -> tuple[Any, Any]:
    """(store, None) when the store can be opened here, else (None, remote API client)."""
    from netra_server.lifecycle import prepare_store
    from netra_server.store import StoreError

    settings = _settings(args)
    if not settings.store_url:
        state_file = settings.data_dir / _STATE_FILE
        running = None
        if state_file.exists():
            try:
                info = json.loads(state_file.read_text())
                os.kill(int(info["pid"]), 0)
                running = str(info["url"])
            except (OSError, ValueError, KeyError):
                running = None
        if running is not None:
            if not args.api_key:
                raise SystemExit(
                    f"netra keys: a server ({running}) holds {settings.data_dir}; pass an admin key with "
                    "--api-key or NETRA_API_KEY to manage keys through it, or stop the server"
                )
            return None, _Remote(running.replace("0.0.0.0", "127.0.0.1"), args.api_key)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        store, _, _ = prepare_store(settings.__class__(**{**settings.__dict__, "api_key": None}))
    except StoreError as exc:
        raise SystemExit(f"netra keys: {exc}") from exc
    return store, None


def keys_create(args: argparse.Namespace) -> int:
    from netra_server.auth import KeyManager

    store, remote = _open(args)
    if remote is not None:
        data = remote.call("POST", "/api/keys", json={"role": args.role, "tenantId": args.tenant, "name": args.name})
        key, key_id = data["key"], data["key_id"]
    else:
        try:
            project_id = args.project or store.list_projects()[0].project_id
            key, rec = KeyManager(store).create_key(project_id, role=args.role, tenant_id=args.tenant, name=args.name)
        except ValueError as exc:
            raise SystemExit(f"netra keys create: {exc}") from exc
        finally:
            store.close()
        key_id = rec.key_id
    scope = ""
    if args.tenant:
        scope = f" bound to tenant {args.tenant!r}" if args.role == "ingest" else f" limited to tenant {args.tenant!r}"
    print(f"Created {args.role} key {key_id}{scope}:\n{key}\n(shown once; store it now)")
    return 0


def keys_list(args: argparse.Namespace) -> int:
    store, remote = _open(args)
    if remote is not None:
        rows = remote.call("GET", "/api/keys")
    else:
        try:
            rows = [
                {k: v for k, v in rec.__dict__.items() if k != "key_hash"} for rec in store.list_keys()
            ]
        finally:
            store.close()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'KEY ID':<14} {'PROJECT':<22} {'ROLE':<7} {'TENANT':<16} {'STATUS':<8} {'CREATED':<20} NAME")
    for r in rows:
        status = "revoked" if r["revoked"] else "active"
        print(f"{r['key_id']:<14} {r['project_id']:<22} {r['role']:<7} {r['tenant_id'] or '*':<16} {status:<8} "
              f"{r['created_at'][:19]:<20} {r['name']}")
    return 0


def keys_revoke(args: argparse.Namespace) -> int:
    from netra_server.auth import KeyManager

    store, remote = _open(args)
    if remote is not None:
        remote.call("DELETE", f"/api/keys/{args.key_id}")
    else:
        try:
            KeyManager(store).revoke(args.key_id)
        except KeyError as exc:
            raise SystemExit(f"netra keys revoke: no key {args.key_id!r} (see `netra keys list`)") from exc
        finally:
            store.close()
    print(f"Revoked key {args.key_id} (servers notice within their key cache time, 10 s by default)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m netra_server``: the same subcommands as ``netra``."""
    parser = argparse.ArgumentParser(prog="netra-server")
    sub = parser.add_subparsers(dest="command", required=True)
    add_commands(sub)
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)
