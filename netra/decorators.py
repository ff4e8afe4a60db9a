"""``@workflow``, ``@task``, ``@agent`` and ``@span``: a span around each call.

Each works bare (``@task``) or with options (``@task(name="fetch", as_type=SpanType.TOOL)``) on sync,
async, generator and async-generator functions (and methods). For generators the span covers the whole
iteration and is current only while the generator body runs, never in the consumer between items.
An exception (any ``BaseException``) ends the span with ERROR status and propagates; a generator that
its consumer closes early (``GeneratorExit``) ends normally.
No arguments or return values are recorded.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from typing import Any, TypeVar, overload

from opentelemetry import context as context_api
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.util.types import AttributeValue

from netra import semconv
from netra._netra import DEFAULT_MODULE_NAME, start_span
from netra._types import SpanType
from netra.span_wrapper import SpanWrapper

__all__ = ["agent", "span", "task", "workflow"]

F = TypeVar("F", bound=Callable[..., Any])


class _Run:
    """One call of a decorated (async) generator function: its span, the context that makes the span
    current, and what the consumer sent or threw in last. The sync and the async wrapper differ only in
    ``await``; what they do at each step is here."""

    __slots__ = ("ctx", "error", "gen", "span", "to_send", "to_throw", "token")

    def __init__(self, span: SpanWrapper, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Begin the span and create the generator with the span current."""
        self.span = span
        self.ctx: Context = trace.set_span_in_context(span._begin())
        self.error: BaseException | None = None
        self.to_send: Any = None
        self.to_throw: BaseException | None = None
        with self:
            self.gen = fn(*args, **kwargs)

    def __enter__(self) -> None:
        """The span is current (while the generator body runs)."""
        self.token = context_api.attach(self.ctx)

    def __exit__(self, *exc: object) -> None:
        context_api.detach(self.token)

    def resume(self, send: Callable[[Any], Any], throw: Callable[[BaseException], Any]) -> Any:
        """``send`` what the consumer sent, or ``throw`` what it threw in (once)."""
        if self.to_throw is not None:
            thrown, self.to_throw = self.to_throw, None
            return throw(thrown)
        return send(self.to_send)

    def received(self, thrown_in: BaseException) -> None:
        """The consumer threw ``thrown_in`` into the wrapper: pass it on to the generator, unless it is
        ``GeneratorExit`` (the wrapper is being closed: close the generator)."""
        if isinstance(thrown_in, GeneratorExit):
            raise thrown_in
        self.to_throw = thrown_in


def _wrap(
    fn: Callable[..., Any],
    kind: str,
    name: str | None,
    as_type: SpanType | str,
    attributes: Mapping[str, AttributeValue] | None,
    module_name: str,
) -> Callable[..., Any]:
    span_name = name or fn.__qualname__
    attrs: dict[str, AttributeValue] = {semconv.ENTITY_KIND: kind}
    if attributes:
        attrs.update(attributes)

    def new_span() -> SpanWrapper:
        return start_span(span_name, attrs, module_name, as_type)

    if inspect.isasyncgenfunction(fn):

        @functools.wraps(fn)
        async def agen_wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
            run = _Run(new_span(), fn, args, kwargs)
            agen = run.gen
            try:
                while True:
                    with run:
                        try:
                            item = await run.resume(agen.asend, agen.athrow)
                        except StopAsyncIteration:
                            return
                    try:
                        run.to_send = yield item
                    except BaseException as thrown_in:
                        run.received(thrown_in)
            except GeneratorExit:
                with run:
                    await agen.aclose()
                raise
            except BaseException as exc:
                run.error = exc
                raise
            finally:
                run.span.end(run.error)

        return agen_wrapper

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
            run = _Run(new_span(), fn, args, kwargs)
            gen = run.gen
            try:
                while True:
                    with run:
                        try:
                            item = run.resume(gen.send, gen.throw)
                        except StopIteration as stop:
                            return stop.value
                    try:
                        run.to_send = yield item
                    except BaseException as thrown_in:
                        run.received(thrown_in)
            except GeneratorExit:
                with run:
                    gen.close()
                raise
            except BaseException as exc:
                run.error = exc
                raise
            finally:
                run.span.end(run.error)

        return gen_wrapper

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            with new_span():
                return await fn(*args, **kwargs)

        return async_wrapper

    @functools.wraps(fn)
    def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
        with new_span():
            return fn(*args, **kwargs)

    return sync_wrapper


class SpanDecorator:
    """A decorator usable bare (``@task``) or with options (``@task(name=..., as_type=...)``)."""

    def __init__(self, kind: str, default_type: SpanType) -> None:
        self.kind = kind
        self.default_type = default_type
        self.__doc__ = f"Trace each call of the function as a {kind!r} span (type {default_type.value!r})."

    @overload
    def __call__(self, fn: F, /) -> F: ...

    @overload
    def __call__(
        self,
        fn: None = None,
        /,
        *,
        name: str | None = None,
        as_type: SpanType | str | None = None,
        attributes: Mapping[str, AttributeValue] | None = None,
        module_name: str = DEFAULT_MODULE_NAME,
    ) -> Callable[[F], F]: ...

    def __call__(
        self,
        fn: F | None = None,
        /,
        *,
        name: str | None = None,
        as_type: SpanType | str | None = None,
        attributes: Mapping[str, AttributeValue] | None = None,
        module_name: str = DEFAULT_MODULE_NAME,
    ) -> F | Callable[[F], F]:
        kind = self.kind
        span_type = self.default_type if as_type is None else as_type
        if fn is not None:
            if not callable(fn):
                raise TypeError(f"@{kind} decorates a function; got {fn!r} (options go by name: @{kind}(name=...))")
            return _wrap(fn, kind, name, span_type, attributes, module_name)

        def apply(target: F) -> F:
            return _wrap(target, kind, name, span_type, attributes, module_name)  # type: ignore[return-value]

        return apply

    def __repr__(self) -> str:
        return f"<netra decorator @{self.kind}>"


workflow = SpanDecorator("workflow", SpanType.SPAN)
task = SpanDecorator("task", SpanType.SPAN)
agent = SpanDecorator("agent", SpanType.AGENT)
span = SpanDecorator("span", SpanType.SPAN)
