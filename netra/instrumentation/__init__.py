"""Instrumentations Netra can switch on: see :mod:`netra.instrumentation.instruments`."""
