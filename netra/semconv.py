"""Attribute names shared by the SDK, the instrumentations and the server.

The contract lives in ``DESIGN.md`` ("Span attributes"); this module is its single copy in code.
"""

from __future__ import annotations

from typing import Final

# Request context, stamped on every span started in that context.
TENANT_ID: Final = "netra.tenant_id"
SESSION_ID: Final = "netra.session_id"
USER_ID: Final = "netra.user_id"
CUSTOM_PREFIX: Final = "netra.custom."
ENVIRONMENT: Final = "deployment.environment.name"

# Span type (SpanType values: span, generation, tool, embedding, agent, usage).
SPAN_TYPE: Final = "netra.span.type"

# Explicit usage written by ``span.set_usage``: a JSON array of UsageModel objects.
USAGE: Final = "netra.usage"
# Set on each still-open ancestor when a descendant span with usage ends (the billing rule).
USAGE_COVERED: Final = "netra.usage.covered"
# A streamed call whose usage the provider did not report.
USAGE_MISSING: Final = "netra.usage.missing"

# Measured cost.
COST: Final = "gen_ai.usage.cost"
COST_SOURCE: Final = "netra.cost.source"
COST_UNKNOWN: Final = "netra.cost.unknown"
COST_SOURCE_PROVIDER: Final = "provider"
COST_SOURCE_USER: Final = "user"
COST_SOURCE_PRICE_TABLE_PREFIX: Final = "price_table:"

# OpenTelemetry GenAI semantic conventions (current version).
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
GEN_AI_SYSTEM_INSTRUCTIONS: Final = "gen_ai.system_instructions"
# Audio tokens (part of the input / output tokens), as OpenAI reports them.
GEN_AI_USAGE_AUDIO_INPUT_TOKENS: Final = "gen_ai.usage.audio.input_tokens"
GEN_AI_USAGE_AUDIO_OUTPUT_TOKENS: Final = "gen_ai.usage.audio.output_tokens"

# OpenAI instrumentation: the ``x-request-id`` of the call, and how a streamed call ended
# (``completed``, ``closed_early``, ``abandoned``, ``error``, ``cancelled``).
OPENAI_REQUEST_ID: Final = "openai.request.id"
STREAM_OUTCOME: Final = "netra.stream.outcome"

# Older conventions that other producers still write; the server reads them too.
LEGACY_PROMPT_TOKENS: Final = "gen_ai.usage.prompt_tokens"
LEGACY_COMPLETION_TOKENS: Final = "gen_ai.usage.completion_tokens"
OPENINFERENCE_PROMPT_TOKENS: Final = "llm.token_count.prompt"
OPENINFERENCE_COMPLETION_TOKENS: Final = "llm.token_count.completion"

# Attributes whose presence on a finished span means "this span recorded usage" (billing rule).
USAGE_BEARING_ATTRIBUTES: Final = (
    USAGE,
    COST,
    GEN_AI_USAGE_INPUT_TOKENS,
    GEN_AI_USAGE_OUTPUT_TOKENS,
    LEGACY_PROMPT_TOKENS,
    LEGACY_COMPLETION_TOKENS,
    OPENINFERENCE_PROMPT_TOKENS,
    OPENINFERENCE_COMPLETION_TOKENS,
)

# Which decorator made a span: workflow, task, agent or span (``@workflow`` ...).
ENTITY_KIND: Final = "netra.entity.kind"
