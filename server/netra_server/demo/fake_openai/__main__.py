"""``python -m netra_server.demo.fake_openai``: serve the simulated endpoint in the foreground."""

from netra_server.demo.fake_openai.cli import main

raise SystemExit(main())
