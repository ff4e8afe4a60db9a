"""The span tree of one trace with per-span usage rollups (what each step cost, descendants included).

Public API (stable; ``GET /api/traces/{trace_id}/usage`` and the dashboard's trace page use it)::

    from netra_server.trace_tree import span_tree
    spans, _ = store.trace_spans(project_id, trace_id)
    tree = span_tree(spans)
    for node in tree.nodes:                  # depth first; siblings in start-time order
        node.span, node.depth, node.rollup   # rollup: counted usage of the span and all its descendants
    tree.total                               # the trace's counted usage (the roots' rollups added up)

Rollups follow the billing rule (``docs/design.md``): a span adds its own usage only if it *counted*
(it has usage and no descendant recorded usage); a covered span shows its own numbers but adds
nothing, so every unit of usage is in exactly one rollup path and ``total`` counts it once. A span
whose parent is not among ``spans`` (not stored, or outside a tenant-limited key's view) is a root,
and so is a span in a parent cycle (bad data): every span appears once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from netra_server.store import SpanRow

__all__ = ["SpanNode", "SpanTree", "UsageRollup", "span_tree"]


@dataclass
class UsageRollup:
    """Counted usage under the billing rule. ``total_cost`` sums known costs; ``unpriced_count``
    counts counted spans whose price is unknown (their cost is not in ``total_cost``)."""

    request_count: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    total_cost: Decimal = field(default_factory=lambda: Decimal(0))
    unpriced_count: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @classmethod
    def of(cls, span: SpanRow) -> UsageRollup:
        """The span's own usage if it counts, else zero."""
        if not span.counted:
            return cls()
        return cls(
            request_count=1,
            input_tokens=span.input_tokens,
            output_tokens=span.output_tokens,
            cached_tokens=span.cached_tokens,
            total_cost=span.cost if span.cost is not None else Decimal(0),
            unpriced_count=1 if span.cost is None else 0,
        )

    def add(self, other: UsageRollup) -> None:
        self.request_count += other.request_count
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cached_tokens += other.cached_tokens
        self.total_cost += other.total_cost
        self.unpriced_count += other.unpriced_count


@dataclass
class SpanNode:
    span: SpanRow
    depth: int = 0
    children: list[SpanNode] = field(default_factory=list)
    #: Counted usage of the span and all its descendants.
    rollup: UsageRollup = field(default_factory=UsageRollup)


@dataclass(frozen=True)
class SpanTree:
    #: Every span once, depth first; siblings (and roots) by start time, then span id.
    nodes: list[SpanNode]
    #: The trace's counted usage: the roots' rollups added up.
    total: UsageRollup
    #: Earliest span start and latest span end (ns); 0 for an empty tree.
    start_ns: int
    end_ns: int

    @property
    def roots(self) -> list[SpanNode]:
        return [n for n in self.nodes if n.depth == 0]


def span_tree(spans: Iterable[SpanRow]) -> SpanTree:
    """Build the tree of ``spans`` (one trace) with depths and rollups; iterative, so deep traces
    do not hit the recursion limit."""
    nodes: dict[str, SpanNode] = {}
    for s in spans:
        nodes.setdefault(s.span_id, SpanNode(s))  # a span id once (the store already deduplicates)
    if not nodes:
        return SpanTree([], UsageRollup(), 0, 0)
    ordered = sorted(nodes.values(), key=lambda n: (n.span.start_ns, n.span.span_id))
    roots: list[SpanNode] = []
    for node in ordered:
        parent = node.span.parent_span_id
        if parent and parent != node.span.span_id and parent in nodes:
            nodes[parent].children.append(node)
        else:
            roots.append(node)

    order: list[SpanNode] = []
    seen: set[str] = set()

    def walk(root: SpanNode) -> None:
        stack = [(root, 0)]
        while stack:
            node, depth = stack.pop()
            if node.span.span_id in seen:
                continue
            seen.add(node.span.span_id)
            node.depth = depth
            order.append(node)
            stack.extend((c, depth + 1) for c in reversed(node.children))

    for root in roots:
        walk(root)
    for node in ordered:  # spans in a parent cycle are unreachable from a root: start at the earliest
        if node.span.span_id not in seen:
            walk(node)
    for node in order:  # the span a cycle's walk started at is not its parent's child
        node.children = [c for c in node.children if c.depth == node.depth + 1]

    for node in reversed(order):  # children before parents
        acc = UsageRollup.of(node.span)
        for c in node.children:
            acc.add(c.rollup)
        node.rollup = acc
    total = UsageRollup()
    for node in order:
        if node.depth == 0:
            total.add(node.rollup)
    return SpanTree(order, total, min(n.span.start_ns for n in order), max(n.span.end_ns for n in order))
