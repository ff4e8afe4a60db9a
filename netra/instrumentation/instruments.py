"""Names of the instrumentations ``Netra.init(instruments=...)`` can switch on, and their loader.

``instruments=None`` (the default) switches on every known instrumentation whose library is installed;
``instruments={InstrumentSet.OPENAI}`` only those named (a missing library is then a clear warning);
``block_instruments={...}`` excludes some. Instrumentor modules are imported only when asked for, so
``import netra`` never imports ``openai``.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

logger = logging.getLogger("netra")

__all__ = ["InstrumentSet", "instrument", "uninstrument"]


class InstrumentSet(StrEnum):
    """Instrumentations Netra knows about."""

    OPENAI = "openai"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class _Spec:
    library: str  # the module that must be importable for the instrumentation to make sense
    module: str
    cls: str
    extra: str
    #: keywords for ``instrument()`` under Netra (e.g. the price table is loaded by Netra.init, in the background)
    options: tuple[tuple[str, Any], ...] = ()


_SPECS: dict[str, _Spec] = {
    InstrumentSet.OPENAI.value: _Spec(
        "openai", "netra_instrumentation_openai", "OpenAIInstrumentor", "openai", (("warm_prices", False),)
    ),
}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def instrument(
    names: Iterable[str] | None, blocked: Iterable[str] = (), tracer_provider: Any = None
) -> list[Any]:
    """Instrument the named libraries (None: all installed); returns the instrumentors switched on."""
    explicit = names is not None
    wanted = set(_SPECS) if names is None else {str(getattr(n, "value", n)).lower() for n in names}
    wanted -= {str(getattr(n, "value", n)).lower() for n in blocked}
    done: list[Any] = []
    for name in sorted(wanted):
        spec = _SPECS.get(name)
        if spec is None:
            logger.warning(
                "Netra: unknown instrument %r ignored; known: %s", name, ", ".join(sorted(_SPECS)) or "none"
            )
            continue
        if not _installed(spec.library):
            if explicit:
                logger.warning(
                    "Netra: instrument %s was requested but the %r package is not installed; "
                    "install it with: pip install 'netra[%s]'",
                    name,
                    spec.library,
                    spec.extra,
                )
            continue
        try:
            module = importlib.import_module(spec.module)
            instrumentor = getattr(module, spec.cls)()
            if getattr(instrumentor, "is_instrumented_by_opentelemetry", False):
                logger.info("Netra: %s is already instrumented; leaving it as it is", name)
                continue
            instrumentor.instrument(tracer_provider=tracer_provider, **dict(spec.options))
        except Exception as error:
            logger.warning(
                "Netra: could not switch on the %s instrumentation (%s: %s); tracing of %s is off. "
                "Reinstall with: pip install 'netra[%s]'",
                name,
                type(error).__name__,
                error,
                spec.library,
                spec.extra,
            )
            continue
        logger.debug("Netra: instrumented %s", name)
        done.append(instrumentor)
    return done


def uninstrument(instrumentors: Iterable[Any]) -> None:
    for instrumentor in instrumentors:
        try:
            instrumentor.uninstrument()
        except Exception:
            logger.debug("Netra: uninstrument failed for %r", instrumentor, exc_info=True)
