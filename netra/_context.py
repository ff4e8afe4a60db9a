"""Request context (tenant, session, user, custom attributes) kept in a ContextVar.

The value is an immutable-by-convention ``dict`` of span attributes (``netra.tenant_id`` ...), replaced
(copy on write) on every change, so a context copied into a task or a thread never sees later changes
made elsewhere. The span processor reads it in ``on_start`` and stamps it on every span.

Nothing here reads W3C baggage: inbound headers never set tenant, session or user.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable, Mapping
from contextvars import ContextVar, Token
from types import TracebackType
from typing import ParamSpec, TypeAlias, TypeVar

from netra import semconv

AttributeValue: TypeAlias = str | bool | int | float

_P = ParamSpec("_P")
_R = TypeVar("_R")

#: The current request context: span attributes to stamp, or None when empty.
REQUEST_CONTEXT: ContextVar[dict[str, AttributeValue] | None] = ContextVar("netra_request_context", default=None)

_KEYS = {"tenant_id": semconv.TENANT_ID, "session_id": semconv.SESSION_ID, "user_id": semconv.USER_ID}


def _clean_id(value: object) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text or None


def _with(
    current: Mapping[str, AttributeValue] | None, updates: Mapping[str, AttributeValue | None]
) -> dict[str, AttributeValue] | None:
    new: dict[str, AttributeValue] = dict(current) if current else {}
    for key, value in updates.items():
        if value is None:
            new.pop(key, None)
        else:
            new[key] = value
    return new or None


def set_id(kind: str, value: object) -> None:
    """Set (or with None / "" clear) ``tenant_id``, ``session_id`` or ``user_id`` in the current context."""
    REQUEST_CONTEXT.set(_with(REQUEST_CONTEXT.get(), {_KEYS[kind]: _clean_id(value)}))


def _custom_key(key: str) -> str:
    if not isinstance(key, str) or not key:
        raise TypeError(f"custom attribute names must be non-empty strings, got {key!r}")
    return key if key.startswith(semconv.CUSTOM_PREFIX) else semconv.CUSTOM_PREFIX + key


def _custom_value(key: str, value: object) -> AttributeValue | None:
    if value is None or isinstance(value, str | bool | int | float):
        return value
    raise TypeError(
        f"custom attribute {key!r} must be a str, bool, int or float (or None to remove it), "
        f"got {type(value).__name__}"
    )


def set_custom(attributes: Mapping[str, object]) -> None:
    """Add ``netra.custom.<key>`` attributes to the current context (a value of None removes the key)."""
    updates = {_custom_key(k): _custom_value(k, v) for k, v in attributes.items()}
    REQUEST_CONTEXT.set(_with(REQUEST_CONTEXT.get(), updates))


def clear() -> None:
    """Forget tenant, session, user and custom attributes in the current context."""
    REQUEST_CONTEXT.set(None)


def get() -> dict[str, AttributeValue]:
    """A copy of the current request context as span attributes (empty dict when nothing is set)."""
    current = REQUEST_CONTEXT.get()
    return dict(current) if current else {}


def build(
    *,
    tenant_id: object = None,
    session_id: object = None,
    user_id: object = None,
    custom: Mapping[str, object] | None = None,
    inherit: Mapping[str, AttributeValue] | None = None,
) -> dict[str, AttributeValue] | None:
    updates: dict[str, AttributeValue | None] = {}
    for kind, value in (("tenant_id", tenant_id), ("session_id", session_id), ("user_id", user_id)):
        cleaned = _clean_id(value)
        if cleaned is not None:
            updates[_KEYS[kind]] = cleaned
    if custom:
        for k, v in custom.items():
            updates[_custom_key(k)] = _custom_value(k, v)
    return _with(inherit, updates)


class ScopedContext:
    """``with Netra.context(tenant_id=...):`` (also ``async with``): values set only inside the block.

    Values not given are inherited from the enclosing context unless ``inherit=False``. On exit the
    previous context comes back, including anything ``Netra.set_*`` changed inside the block.
    """

    __slots__ = ("_token", "_value")

    def __init__(self, value: dict[str, AttributeValue] | None) -> None:
        self._value = value
        self._token: Token[dict[str, AttributeValue] | None] | None = None

    def __enter__(self) -> ScopedContext:
        if self._token is not None:
            raise RuntimeError("this Netra.context(...) block is already active; create a new one per `with`")
        self._token = REQUEST_CONTEXT.set(self._value)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        token, self._token = self._token, None
        if token is not None:
            REQUEST_CONTEXT.reset(token)

    async def __aenter__(self) -> ScopedContext:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)


def bind(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Return ``fn`` bound to a copy of the *current* context (request context and the current span).

    Use it to carry context into a thread pool: ``executor.submit(Netra.bind_context(work), arg)``.
    Each call runs in its own copy, so the worker thread's own context is never changed.
    """
    captured = contextvars.copy_context()

    @functools.wraps(fn)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        return captured.copy().run(fn, *args, **kwargs)

    return run


