"""Netra: observability and per-tenant cost tracking for AI products.

```python
from netra import Netra, SpanType, UsageModel
Netra.init(app_name="meetingmind", environment="production")
Netra.set_tenant_id("apex-legal")
with Netra.start_span("meeting-summarization") as span:
    span.set_usage([UsageModel(model="gpt-4o-mini", usage_type="chat", units_used=1580, cost_in_usd=0.0004,
                               input_tokens=1200, output_tokens=380)])
```

``import netra`` is light: the OpenTelemetry SDK, the exporter, instrumentations, prices and the usage
client load on first use.
"""

from netra._env import ConfigError
from netra._netra import Netra
from netra._types import SpanType, UsageModel
from netra.decorators import agent, span, task, workflow
from netra.span_wrapper import SpanWrapper

__all__ = ["ConfigError", "Netra", "SpanType", "SpanWrapper", "UsageModel", "agent", "span", "task", "workflow"]
__version__ = "0.1.0"
