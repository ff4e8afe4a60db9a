"""``netra credits grant|adjust|limit|balance|accounts|ledger|usage`` — over HTTP, like any client.

The server is ``--endpoint`` (or ``$NETRA_OTLP_ENDPOINT``; default ``http://localhost:4318``), the key
``--api-key`` (or ``$NETRA_API_KEY``; granting needs an admin key). Examples::

    netra credits grant apex-legal 500 --note "March prepaid plan"
    netra credits adjust techstart-inc -2.50 --note "refund of a failed call"
    netra credits limit techstart-inc 10          # may go 10 USD below zero
    netra credits balance apex-legal
    netra credits ledger apex-legal --kind grant --kind confirmation
    netra credits usage --by model --tenant apex-legal --since 2026-03-01
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

__all__ = ["add_command", "main"]


def add_command(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "credits", help="tenant credits: grant, adjust, overdraft limits, balances, ledger, usage",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _fill(p)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--endpoint", default=os.environ.get("NETRA_OTLP_ENDPOINT", "http://localhost:4318"),
                   help="the Netra server (env NETRA_OTLP_ENDPOINT)")
    p.add_argument("--api-key", default=os.environ.get("NETRA_API_KEY"), help="an API key (env NETRA_API_KEY)")


def _fill(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="credits_command", metavar="ACTION", required=True)
    for name, help_ in (("grant", "add credits to a tenant (admin key)"),
                        ("adjust", "correct a tenant's balance by a signed amount (admin key)")):
        g = sub.add_parser(name, help=help_)
        _common(g)
        g.add_argument("tenant")
        g.add_argument("amount", help="USD, e.g. 25 or 12.50" + (" (negative to take away)" if name == "adjust" else ""))
        g.add_argument("--note", default="", help="why (kept in the ledger)")
        g.add_argument("--idempotency-key", default=None, help="retrying with the same key grants once")
        g.set_defaults(func=_grant, kind=name)
    lim = sub.add_parser("limit", help="set how far below zero a tenant may go (admin key)")
    _common(lim)
    lim.add_argument("tenant")
    lim.add_argument("amount", help="USD (0: no overdraft)")
    lim.set_defaults(func=_limit)
    bal = sub.add_parser("balance", help="a tenant's granted, spent, reserved, balance and available credit")
    _common(bal)
    bal.add_argument("tenant")
    bal.set_defaults(func=_balance)
    acc = sub.add_parser("accounts", help="every account of the project")
    _common(acc)
    acc.set_defaults(func=_accounts)
    led = sub.add_parser("ledger", help="the ledger entries (oldest first)")
    _common(led)
    led.add_argument("tenant", nargs="?")
    led.add_argument("--kind", action="append", default=[], help="grant, adjustment, reservation, confirmation, "
                     "release, usage (repeatable)")
    led.add_argument("--since")
    led.add_argument("--until")
    led.set_defaults(func=_ledger)
    use = sub.add_parser("usage", help="usage recorded against credits, grouped")
    _common(use)
    use.add_argument("--by", choices=("model", "context", "tenant", "day"), default="model")
    use.add_argument("--tenant")
    use.add_argument("--model")
    use.add_argument("--context", choices=("customer", "system"))
    use.add_argument("--since")
    use.add_argument("--until")
    use.set_defaults(func=_usage)


def _client(args: argparse.Namespace) -> Any:
    from netra.credits import CreditsClient

    if not args.api_key:
        raise SystemExit("netra credits: pass --api-key or set NETRA_API_KEY")
    return CreditsClient(args.endpoint, args.api_key)


def _run(args: argparse.Namespace, fn: Any) -> int:
    from netra.usage import NetraUsageError

    try:
        with _client(args) as c:
            fn(c)
    except NetraUsageError as exc:
        print(f"netra credits: {exc}", file=sys.stderr)
        return 1
    return 0


def _show_account(a: Any) -> None:
    print(f"{a.tenant_id}: balance {a.balance:f} {a.currency}, reserved {a.reserved:f}, available {a.available:f} "
          f"(granted {a.granted:f}, adjusted {a.adjusted:f}, spent {a.spent:f}, overdraft limit "
          f"{a.overdraft_limit:f}, system usage {a.system_cost:f})")


def _grant(args: argparse.Namespace) -> int:
    def go(c: Any) -> None:
        fn = c.grant if args.kind == "grant" else c.adjust
        e = fn(args.tenant, args.amount, note=args.note, idempotency_key=args.idempotency_key)
        print(f"{e.kind} of {e.amount:f} USD to {e.tenant_id} (entry {e.seq}); balance now {e.balance_after:f} USD")

    return _run(args, go)


def _limit(args: argparse.Namespace) -> int:
    return _run(args, lambda c: _show_account(c.set_overdraft_limit(args.tenant, args.amount)))


def _balance(args: argparse.Namespace) -> int:
    return _run(args, lambda c: _show_account(c.get_account(args.tenant)))


def _accounts(args: argparse.Namespace) -> int:
    def go(c: Any) -> None:
        for a in c.list_accounts():
            _show_account(a)

    return _run(args, go)


def _ts(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _ledger(args: argparse.Namespace) -> int:
    def go(c: Any) -> None:
        print(f"{'seq':>6}  {'time (UTC)':19}  {'tenant':20}  {'kind':12}  {'amount':>14}  {'hold':>14}  "
              f"{'balance':>14}  note")
        for e in c.iter_entries(args.tenant, kinds=args.kind, since=args.since, until=args.until):
            print(f"{e.seq:>6}  {_ts(e.at)}  {e.tenant_id[:20]:20}  {e.kind:12}  {e.amount:>14f}  {e.hold:>14f}  "
                  f"{e.balance_after:>14f}  {e.note}")

    return _run(args, go)


def _usage(args: argparse.Namespace) -> int:
    def go(c: Any) -> None:
        report = c.get_usage(args.by, tenant_id=args.tenant, model=args.model, context=args.context,
                             since=args.since, until=args.until)
        print(f"{args.by:24}  {'requests':>8}  {'input':>10}  {'output':>10}  {'cost (USD)':>16}")
        for g in report.groups:
            print(f"{g.key[:24]:24}  {g.requests:>8}  {g.input_tokens:>10}  {g.output_tokens:>10}  {g.cost:>16f}")
        print(f"{'total':24}  {report.total_requests:>8}  {'':>10}  {'':>10}  {report.total_cost:>16f}")

    return _run(args, go)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="netra credits")
    _fill(parser)
    args = parser.parse_args(list(argv) if argv is not None else None)
    return int(args.func(args))
