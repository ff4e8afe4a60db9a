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


def _start(
    wrapper: SpanWrapper, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[SpanWrapper, Context, Any]:
    """Begin a (async) generator function's span and create the generator with the span current."""
    ctx = trace.set_span_in_context(wrapper._begin())
    token = context_api.attach(ctx)
    try:
        return wrapper, ctx, fn(*args, **kwargs)
    finally:
        context_api.detach(token)


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
            wrapper, ctx, agen = _start(new_span(), fn, args, kwargs)
            error: BaseException | None = None
            to_send: Any = None
            to_throw: BaseException | None = None
            try:
                while True:
                    token = context_api.attach(ctx)
                    try:
                        if to_throw is not None:
                            thrown, to_throw = to_throw, None
                            item = await agen.athrow(thrown)
                        else:
                            item = await agen.asend(to_send)
                    except StopAsyncIteration:
                        return
                    finally:
                        context_api.detach(token)
                    try:
                        to_send = yield item
                    except GeneratorExit:
                        raise
                    except BaseException as thrown_in:  # thrown in by the consumer: pass it on
                        to_throw = thrown_in
            except GeneratorExit:
                token = context_api.attach(ctx)
                try:
                    await agen.aclose()
                finally:
                    context_api.detach(token)
                raise
            except BaseException as exc:
                error = exc
                raise
            finally:
                wrapper.end(error)

        return agen_wrapper

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
            wrapper, ctx, gen = _start(new_span(), fn, args, kwargs)
            error: BaseException | None = None
            to_send: Any = None
            to_throw: BaseException | None = None
            try:
                while True:
                    token = context_api.attach(ctx)
                    try:
                        if to_throw is not None:
                            thrown, to_throw = to_throw, None
                            item = gen.throw(thrown)
                        else:
                            item = gen.send(to_send)
                    except StopIteration as stop:
                        return stop.value
                    finally:
                        context_api.detach(token)
                    try:
                        to_send = yield item
                    except GeneratorExit:
                        raise
                    except BaseException as thrown_in:
                        to_throw = thrown_in
            except GeneratorExit:
                token = context_api.attach(ctx)
                try:
                    gen.close()
                finally:
                    context_api.detach(token)
                raise
            except BaseException as exc:
                error = exc
                raise
            finally:
                wrapper.end(error)

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
