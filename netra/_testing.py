"""Test support: put Netra and OpenTelemetry's global tracer provider back to a blank state.

``netra._testing.reset()`` (also ``Netra._reset_for_tests()``) shuts Netra down, clears the request
context of the calling context, forgets the provider Netra used, and clears OpenTelemetry's "provider
already set" guard so the next ``Netra.init`` (or a test's own ``set_tracer_provider``) starts afresh.
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.util._once import Once

from netra import _context
from netra._netra import Netra, _state


def reset_global_tracer_provider() -> None:
    """Forget OpenTelemetry's global tracer provider (test-only: the API offers no way to do it)."""
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None


def reset() -> None:
    from netra import _install, _runtime

    Netra.shutdown(timeout=2.0)
    _install._warned = False
    _context.clear()
    own = _runtime.forget_own_provider()
    _state.provider = None
    _state.tracers.clear()
    if own is not None:
        try:
            own.shutdown()
        except Exception:
            pass
    reset_global_tracer_provider()
