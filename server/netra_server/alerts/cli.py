"""``netra alerts create|list|get|update|delete|history|evaluate`` — over HTTP, like any client.

The server is ``--endpoint`` (or ``$NETRA_OTLP_ENDPOINT``; default ``http://localhost:4318``), the key
``--api-key`` (or ``$NETRA_API_KEY``). Examples::

    netra alerts create --name "apex-legal SLA" --scope trace --metric latency --aggregation p95 \\
        --filter "tenant_id = apex-legal" --condition "> 2000" --window 5m --every 60s \\
        --webhook http://hooks.local/netra --email oncall@example.com --smtp localhost:25
    netra alerts list
    netra alerts update RULE_ID --condition "> 2500" --disable
    netra alerts history --rule RULE_ID
    netra alerts create --json rule.json
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from .client import AlertsClient, AlertsError
from .model import AGGREGATIONS, METRICS, RuleError, format_value

__all__ = ["add_command", "main"]


def _duration(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+)\s*([smhd]?)\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"bad duration {text!r}: write e.g. 30s, 5m, 1h")
    return int(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def _condition(text: str) -> dict[str, Any]:
    m = re.fullmatch(r"\s*(>=|<=|>|<)\s*(-?[0-9.]+)\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"bad condition {text!r}: write e.g. '> 2000' or '< 5'")
    return {"op": m.group(1), "threshold": float(m.group(2))}


def add_command(subparsers: Any) -> None:
    """Add ``alerts`` to the ``netra`` CLI's subparsers (see ``netra_server.cli``)."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "alerts", help="create, list, change and delete alert rules", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _fill(p)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--endpoint", default=os.environ.get("NETRA_OTLP_ENDPOINT", "http://localhost:4318"),
                   help="the Netra server (env NETRA_OTLP_ENDPOINT)")
    p.add_argument("--api-key", default=os.environ.get("NETRA_API_KEY"), help="an API key (env NETRA_API_KEY)")
    p.add_argument("--json-output", action="store_true", help="print the server's JSON")


def _rule_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", dest="json_file", type=Path, help="the rule as a JSON file ('-' for stdin)")
    p.add_argument("--name")
    p.add_argument("--scope", choices=("trace", "span"))
    p.add_argument("--metric", choices=METRICS)
    p.add_argument("--aggregation", choices=AGGREGATIONS)
    p.add_argument("--filter", dest="filters", action="append", metavar="'FIELD = VALUE'",
                   help="repeatable, e.g. 'tenant_id = apex-legal', 'model != gpt-4o'")
    p.add_argument("--condition", type=_condition, metavar="'> 2000'")
    p.add_argument("--window", type=_duration, metavar="5m", help="time window (s, m, h, d)")
    p.add_argument("--every", type=_duration, metavar="60s", help="evaluation interval")
    p.add_argument("--webhook", action="append", metavar="URL", help="a generic JSON webhook (repeatable)")
    p.add_argument("--slack", action="append", metavar="URL", help="a Slack-compatible webhook (repeatable)")
    p.add_argument("--email", action="append", metavar="ADDRESS", help="email recipients (repeatable)")
    p.add_argument("--smtp", metavar="HOST:PORT", default="localhost:25", help="SMTP server for --email")
    p.add_argument("--from", dest="from_addr", default="netra@localhost", help="sender for --email")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--enable", dest="enabled", action="store_true", default=None)
    g.add_argument("--disable", dest="enabled", action="store_false")


def _fill(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="alerts_command", required=True)
    c = sub.add_parser("create", help="create a rule")
    _rule_flags(c)
    _common(c)
    ls = sub.add_parser("list", help="list the rules and their state")
    _common(ls)
    g = sub.add_parser("get", help="show one rule")
    g.add_argument("rule_id")
    _common(g)
    u = sub.add_parser("update", help="change some fields of a rule")
    u.add_argument("rule_id")
    _rule_flags(u)
    _common(u)
    d = sub.add_parser("delete", help="delete a rule (its history is kept)")
    d.add_argument("rule_id")
    _common(d)
    h = sub.add_parser("history", help="firing and resolved events, newest first")
    h.add_argument("--rule", dest="rule_id")
    h.add_argument("--limit", type=int, default=50)
    _common(h)
    e = sub.add_parser("evaluate", help="evaluate every rule now (admin)")
    _common(e)
    p.set_defaults(func=run)


def _body_from(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if args.json_file is not None:
        raw = sys.stdin.buffer.read() if str(args.json_file) == "-" else args.json_file.read_bytes()
        body.update(orjson.loads(raw))
    for key in ("name", "scope", "metric", "aggregation", "condition", "enabled"):
        if getattr(args, key) is not None:
            body[key] = getattr(args, key)
    if args.filters:
        body["filters"] = args.filters
    if args.window is not None:
        body["window_seconds"] = args.window
    if args.every is not None:
        body["interval_seconds"] = args.every
    contacts: list[dict[str, Any]] = []
    contacts += [{"type": "webhook", "url": u} for u in args.webhook or []]
    contacts += [{"type": "slack", "url": u} for u in args.slack or []]
    if args.email:
        host, _, port = args.smtp.rpartition(":") if ":" in args.smtp else (args.smtp, "", "25")
        contacts.append({"type": "email", "smtp_host": host, "smtp_port": int(port or 25),
                         "from_addr": args.from_addr, "to": args.email})
    if contacts:
        body["contact_points"] = contacts
    return body


def _when(ts: float | None) -> str:
    return "-" if not ts else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def run(args: argparse.Namespace) -> int:
    if not args.api_key:
        print("error: no API key: pass --api-key or set NETRA_API_KEY", file=sys.stderr)
        return 2
    cmd = args.alerts_command
    try:
        with AlertsClient(args.endpoint, args.api_key) as client:
            out: Any
            if cmd == "create":
                out = client.create_rule(_body_from(args))
            elif cmd == "update":
                out = client.update_rule(args.rule_id, _body_from(args))
            elif cmd == "get":
                out = client.get_rule(args.rule_id)
            elif cmd == "delete":
                client.delete_rule(args.rule_id)
                out = {"id": args.rule_id, "deleted": True}
            elif cmd == "list":
                out = client.list_rules()
            elif cmd == "history":
                out = client.history(args.rule_id, args.limit)
            else:
                out = client.evaluate()
    except (AlertsError, RuleError, OSError, orjson.JSONDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json_output:
        sys.stdout.write(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode() + "\n")
    elif cmd in ("create", "update", "get"):
        print(f"{out['id']}  {out['name']}: {out['description']}  [{out['state']['state']}]")
    elif cmd == "delete":
        print(f"deleted {out['id']}")
    elif cmd == "list":
        for r in out:
            st = r["state"]
            value = format_value(r["metric"], st["last_value"]) if st["last_evaluated"] else "not evaluated yet"
            flag = "" if r["enabled"] else " (disabled)"
            print(f"{r['id']}  {st['state']:<7} {r['name']}{flag}: {r['description']}  now: {value}")
        if not out:
            print("no alert rules")
    else:
        for e in out:
            sent = ", ".join(f"{d['contact']} {'ok' if d['ok'] else 'FAILED'}" for d in e.get("deliveries", []))
            print(f"{_when(e['at'])}  {e['kind']:<8} {e['message']}" + (f"  [{sent}]" if sent else ""))
        if not out:
            print("no alert events")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="netra alerts", description="Alert rules of a Netra server.")
    _fill(parser)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
