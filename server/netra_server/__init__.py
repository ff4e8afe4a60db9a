"""The Netra server: OTLP receiver, chDB/ClickHouse store, usage API, dashboard and alerts on one port.

Entry points: ``netra serve`` (``netra_server.cli``), :func:`netra_server.app.create_app`,
:class:`netra_server.config.Settings`, :func:`netra_server.store.open_store` and, for tests,
:func:`netra_server.testing.run_server`. See ``docs/server.md``.
"""

__version__ = "0.1.0"
