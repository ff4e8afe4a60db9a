"""Alert rules: per-tenant SLA and cost alerts evaluated inside ``netra serve``.

* :mod:`.model` — the rule (validated JSON), filters, conditions, contact points.
* :mod:`.state` — the ok → firing → resolved state machine and history events.
* :mod:`.notifiers` — generic webhook, Slack-compatible webhook, email over SMTP.
* :mod:`.client` — a small HTTP client for the ``/api/alerts`` routes (the demo and the CLI use it).
"""
