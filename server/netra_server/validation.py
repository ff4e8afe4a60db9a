"""Input checks shared by the routes: ISO 8601 times and signed, opaque cursors.

Every function raises :class:`BadRequest` with a message that says what to send instead; the app turns
it into ``400 {"error": {"message": ...}}``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from datetime import UTC, datetime, timedelta, timezone

import orjson

__all__ = ["BadRequest", "CursorCodec", "iso_ms", "iso_ns", "parse_time"]


class BadRequest(ValueError):
    """Bad input: answered 400 with this message."""


_ISO_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?"
    r"\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$"
)


def parse_time(value: str | None, name: str) -> int | None:
    """An ISO 8601 time (``2025-01-31``, ``2025-01-31T12:00:00``, with ``Z`` or ``+02:00``, fractional
    seconds up to nanoseconds) as Unix nanoseconds; no offset means UTC. ``None``/empty -> ``None``."""
    if value is None or value == "":
        return None
    m = _ISO_RE.match(value.strip())
    if not m:
        raise BadRequest(
            f"{name} {value!r} is not an ISO 8601 time; send e.g. 2025-01-31T12:00:00Z or 2025-01-31T12:00:00.123+02:00"
        )
    y, mo, d, hh, mi, ss, frac, tz = m.groups()
    try:
        if tz in (None, "Z", "z"):
            tzinfo: timezone = UTC
        else:
            sign = 1 if tz[0] == "+" else -1
            digits = tz[1:].replace(":", "")
            off = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
            if off >= timedelta(hours=24):
                raise ValueError("offset out of range")
            tzinfo = timezone(sign * off)
        dt = datetime(int(y), int(mo), int(d), int(hh or 0), int(mi or 0), int(ss or 0), tzinfo=tzinfo)
    except ValueError as exc:
        raise BadRequest(f"{name} {value!r} is not a valid time ({exc})") from exc
    if dt.year < 1970 or dt.year > 2261:
        raise BadRequest(f"{name} {value!r} is out of range (1970..2261)")
    ns = int(dt.timestamp()) * 1_000_000_000 + (int(frac.ljust(9, "0")) if frac else 0)
    if ns < 0:
        raise BadRequest(f"{name} {value!r} is before 1970")
    return ns


def iso_ns(ns: int) -> str:
    """Unix nanoseconds as ``2025-01-31T12:00:00.123456789Z``."""
    secs, frac = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(secs, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


def iso_ms(ns: int) -> str:
    """Unix nanoseconds as ``2025-01-31T12:00:00.123Z`` (JavaScript-friendly)."""
    secs, frac = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(secs, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac // 1_000_000:03d}Z"


class CursorCodec:
    """Opaque, tamper-proof cursors: base64url(JSON payload) + '.' + HMAC-SHA256 (truncated to 16 bytes).

    The payload binds the cursor to a project and a *kind* of listing (e.g. the sort field and order),
    so a cursor cannot be replayed against another project or ordering.
    """

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _sig(self, scope: str, body: bytes) -> bytes:
        return hmac.new(self._secret, scope.encode() + b"\x00" + body, hashlib.sha256).digest()[:16]

    def encode(self, scope: str, values: list[str | int]) -> str:
        body = orjson.dumps(values)
        enc = base64.urlsafe_b64encode(body).rstrip(b"=")
        sig = base64.urlsafe_b64encode(self._sig(scope, body)).rstrip(b"=")
        return (enc + b"." + sig).decode()

    def decode(self, scope: str, cursor: str) -> list[str | int]:
        bad = BadRequest("cursor is not valid for this listing; pass back a `cursor` value from a previous page unchanged")
        if not cursor or len(cursor) > 1024 or cursor.count(".") != 1:
            raise bad
        enc, sig = cursor.split(".")
        try:
            body = base64.urlsafe_b64decode(enc + "=" * (-len(enc) % 4))
            got = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
        except (binascii.Error, ValueError):
            raise bad from None
        if not hmac.compare_digest(got, self._sig(scope, body)):
            raise bad
        try:
            values = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise bad from None
        if not isinstance(values, list):
            raise bad
        return values
