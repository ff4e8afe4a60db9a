"""``python -m netra_server serve ...``: the server's commands without the ``netra`` front door."""

from netra_server.cli import main

if __name__ == "__main__":  # not in the parser processes (spawn imports this module as __mp_main__)
    raise SystemExit(main())
