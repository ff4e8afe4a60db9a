"""``python -m netra_server serve ...``: the server's commands without the ``netra`` front door."""

from netra_server.cli import main

raise SystemExit(main())
