"""The demo: a local OpenAI-compatible endpoint, the MeetingMind workload and ``netra demo``.

* :mod:`netra_server.demo.fake_openai` — a real HTTP server that speaks the OpenAI API (chat
  completions with and without streaming, embeddings, models, errors) with simulated model output,
  token usage and latency. Only the model is simulated: the ``openai`` client, the instrumentation,
  the exporter and the Netra server in front of it are the real ones.
* :mod:`netra_server.demo.meetingmind` — the multi-tenant cookbook's workload (tiers, rate limits,
  ``MultiTenantMeetingSummarizer``, sample meetings).
* :mod:`netra_server.demo.cli` — ``netra demo``, with :mod:`netra_server.demo.server` (the server it
  sends to), :mod:`netra_server.demo.report` (the report read back) and
  :mod:`netra_server.demo.prepaid` (the tenants' prepaid credits).
"""
