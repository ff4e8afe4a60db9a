"""netra_server.trace_tree.span_tree: the one per-span rollup (the trace-usage route and the dashboard's
waterfall both use it): depth-first order, subtree usage under the billing rule, odd parents."""

from __future__ import annotations

from decimal import Decimal

from netra_server.dashboard import views
from netra_server.store import SpanRow
from netra_server.trace_tree import UsageRollup, span_tree


def row(span_id: str, parent: str = "", start: int = 0, *, tokens: tuple[int, int] = (0, 0), cost: str | None = None,
        usage: bool = False, covered: bool = False, cached: int = 0) -> SpanRow:
    return SpanRow(
        project_id="p", trace_id="t" * 32, span_id=span_id, parent_span_id=parent, name=span_id, kind="INTERNAL",
        span_type="", tenant_id="", session_id="", user_id="", service="", environment="", start_ns=start,
        end_ns=start + 10, duration_ns=10, status_code="UNSET", status_message="", model="", provider="",
        input_tokens=tokens[0], output_tokens=tokens[1], cached_tokens=cached, reasoning_tokens=0,
        cost=None if cost is None else Decimal(cost), cost_source="", cost_unknown=usage and cost is None,
        has_usage=usage, covered=covered, attributes="{}", resource_attributes="{}", events="[]", ingested_ms=0,
    )


def test_rollups_count_each_unit_once() -> None:
    spans = [
        row("root", start=0, usage=True, covered=True, tokens=(99, 99), cost="9"),  # covered: own numbers only
        row("b", "root", start=5, usage=True, tokens=(10, 2), cost="0.25", cached=4),
        row("a", "root", start=1),
        row("a1", "a", start=2, usage=True, tokens=(7, 1)),  # unknown price
        row("a2", "a", start=3, usage=True, tokens=(1, 1), cost="0.5"),
    ]
    tree = span_tree(spans)
    assert [(n.span.span_id, n.depth) for n in tree.nodes] == [("root", 0), ("a", 1), ("a1", 2), ("a2", 2), ("b", 1)]
    by_id = {n.span.span_id: n for n in tree.nodes}
    assert by_id["a"].rollup == UsageRollup(2, 8, 2, 0, Decimal("0.5"), 1)
    assert by_id["b"].rollup == UsageRollup(1, 10, 2, 4, Decimal("0.25"), 0)
    assert by_id["root"].rollup == UsageRollup(3, 18, 4, 4, Decimal("0.75"), 1) == tree.total
    assert tree.total.total_tokens == 22
    assert [c.span.span_id for c in by_id["root"].children] == ["a", "b"]
    assert (tree.start_ns, tree.end_ns) == (0, 15)


def test_missing_self_and_cyclic_parents_are_roots_and_every_span_appears_once() -> None:
    spans = [
        row("orphan", "not-stored", start=4, usage=True, tokens=(1, 0), cost="1"),
        row("self", "self", start=3, usage=True, tokens=(1, 0), cost="1"),
        row("x", "y", start=1, usage=True, tokens=(1, 0), cost="1"),  # x <-> y: bad data
        row("y", "x", start=2, usage=True, tokens=(1, 0), cost="1"),
        row("x", "y", start=1, usage=True, tokens=(1, 0), cost="1"),  # a duplicate row counts once
    ]
    tree = span_tree(spans)
    assert sorted(n.span.span_id for n in tree.nodes) == ["orphan", "self", "x", "y"]
    assert [(n.span.span_id, n.depth) for n in tree.nodes] == [("self", 0), ("orphan", 0), ("x", 0), ("y", 1)]
    assert tree.total.request_count == 4 and tree.total.total_cost == Decimal(4)
    by_id = {n.span.span_id: n for n in tree.nodes}
    assert [c.span.span_id for c in by_id["x"].children] == ["y"] and by_id["y"].children == []


def test_a_deep_trace_and_an_empty_one() -> None:
    chain = [row(f"s{i}", f"s{i - 1}" if i else "", start=i, usage=i == 4999, tokens=(1, 1), cost="0.1")
             for i in range(5000)]
    tree = span_tree(reversed(chain))
    assert tree.nodes[-1].depth == 4999 and tree.total == UsageRollup(1, 1, 1, 0, Decimal("0.1"), 0)
    assert all(n.rollup.request_count == 1 for n in tree.nodes)
    empty = span_tree([])
    assert (empty.nodes, empty.total, empty.start_ns) == ([], UsageRollup(), 0)


def test_the_dashboards_waterfall_shows_the_same_rollups() -> None:
    spans = [row("root"), row("llm", "root", start=5, usage=True, tokens=(3, 4), cost="0.01")]
    tree = span_tree(spans)
    views_ = views.waterfall(tree)
    assert [(v.span.span_id, v.depth, v.subtree.total_cost) for v in views_] == [
        ("root", 0, Decimal("0.01")), ("llm", 1, Decimal("0.01"))]
    assert views_[1].offset_pct == 5 / 15 * 100 and views_[0].width_pct == 10 / 15 * 100
    assert views_[0].attributes == {} and views_[0].events == []
