"""The deterministic answer: a reply whose sections follow what the prompt asks, and JSON for a schema.

Meeting-summary prompts get a structured summary (summary, key decisions, action items, risks,
sentiment, participants, as the prompt asks); other prompts a short answer built from the prompt's words.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["Reply", "compose", "keywords", "value_for_schema"]


_STOPWORDS: Final = frozenset(
    """about above after again against because before being below between could doing during each
    from further having here into itself just more most other ought over same should some such than
    that their theirs them then there these they this those through under until very what when where
    which while whom with would your yours also will were been does have said says like make made
    well want need needs think know going really something anything everyone everything okay yeah
    right good great thanks thank please summarize summary meeting transcript following provide
    include write concise brief detailed items item action decisions decision risks risk sentiment
    participants assistant helpful format bullet bullets points point list notes section sections
    tenant tier features feature words expects expect wants asks moves means takes gets puts keeps
    looks seems shows tells still already before extend object close respond third thirty fifteenth
    monday tuesday wednesday thursday friday saturday sunday january february march april june july
    august september october november december week weeks month months today tomorrow anything next days
    morning afternoon evening hours minutes""".split()
)
_WHEN: Final = ("Friday", "end of week", "next Tuesday", "the next steering meeting", "month end", "Monday")
_VERBS: Final = ("draft", "review", "send out", "update", "confirm", "estimate", "circulate", "finalize")
_MOODS: Final = ("constructive", "positive", "mixed", "cautious but positive", "focused", "tense at times")


def keywords(text: str, limit: int = 10, exclude: Sequence[str] = ()) -> list[str]:
    counts: dict[str, int] = {}
    first: dict[str, int] = {}
    skip = {e.lower() for e in exclude}
    for i, w in enumerate(re.findall(r"[A-Za-z][A-Za-z-]{3,}", text)):
        lw = w.lower()
        if lw in _STOPWORDS or lw in skip or lw.endswith(("ed", "ly", "ing")):
            continue
        counts[lw] = counts.get(lw, 0) + 1
        first.setdefault(lw, i)
    ranked = sorted(counts, key=lambda w: (-counts[w], first[w]))
    return ranked[:limit]


def _speakers(text: str) -> list[str]:
    seen: list[str] = []
    for m in re.finditer(r"^\s*([A-Z][a-z]+(?: [A-Z][a-z]+)?)\s*:", text, re.MULTILINE):
        name = m.group(1)
        if name not in seen and name.lower() not in _STOPWORDS:
            seen.append(name)
    return seen


@dataclass(slots=True)
class Reply:
    sections: dict[str, list[str]]
    text: str


def compose(rng: random.Random, instructions: str, user_text: str) -> Reply:
    """A deterministic answer whose shape follows the prompt."""
    lower = (instructions + "\n" + user_text).lower()
    people = _speakers(user_text) or ["The team"]
    names = [part for p in people for part in p.split()]
    words = keywords(user_text, exclude=names) or keywords(instructions) or ["the request"]
    deck: list[str] = []

    def kw() -> str:
        # draw without replacement until the deck is empty, so sentences repeat words less
        if not deck:
            deck.extend(rng.sample(words, len(words)))
        return deck.pop()

    def person() -> str:
        return rng.choice(people)

    detail = 1
    if any(w in lower for w in ("detailed", "comprehensive", "thorough", "in depth")):
        detail = 2
    if any(w in lower for w in ("brief", "concise", "short", "one sentence", "tl;dr")):
        detail = 0
    sections: dict[str, list[str]] = {}
    if "meeting" in lower or "transcript" in lower:
        sentences = [
            f"The meeting focused on {kw()} and {kw()}.",
            f"{person()} walked the group through {kw()}, and {person()} raised questions about {kw()}.",
            f"The team agreed that {kw()} needs more work before the next review.",
            f"Discussion of {kw()} took most of the time; {kw()} was deferred.",
            f"{person()} shared an update on {kw()} and the impact on {kw()}.",
            f"Open questions remain on {kw()}.",
        ]
        n_summary = (1, 3, 5)[detail] + rng.randint(0, 1)
        sections["summary"] = sentences[:n_summary]
        n_items = (1, 2, 4)[detail] + rng.randint(0, 1)
        if "decision" in lower:
            sections["key_decisions"] = [
                rng.choice(
                    (
                        f"Proceed with {kw()} as proposed.",
                        f"Postpone the decision on {kw()} until {rng.choice(_WHEN)}.",
                        f"{person()} owns {kw()} going forward.",
                        f"Keep the current approach to {kw()}.",
                    )
                )
                for _ in range(n_items)
            ]
        if "action item" in lower or "next step" in lower:
            sections["action_items"] = [
                f"{person()} to {rng.choice(_VERBS)} the {kw()} plan by {rng.choice(_WHEN)}."
                for _ in range(n_items + 1)
            ]
        if "risk" in lower:
            sections["risks"] = [
                rng.choice(
                    (
                        f"{kw().capitalize()} could slip if {kw()} is not resolved.",
                        f"The dependency on {kw()} is not staffed yet.",
                        f"Budget for {kw()} is not confirmed.",
                    )
                )
                for _ in range(max(1, n_items - 1))
            ]
        if "sentiment" in lower:
            sections["sentiment"] = [f"{rng.choice(_MOODS).capitalize()}."]
        if "participant" in lower or "attendee" in lower:
            sections["participants"] = [", ".join(people)]
    else:
        sentences = [
            f"{kw().capitalize()} depends mostly on {kw()} and {kw()}.",
            f"In short, {kw()} is the main point to consider.",
            f"The key trade-off is between {kw()} and {kw()}.",
            f"A practical next step is to review {kw()} with the team.",
            f"Most of the effort goes into {kw()}, while {kw()} needs less attention.",
        ]
        sections["answer"] = sentences[: (1, 2, 4)[detail] + rng.randint(0, 1)]
    titles = {
        "summary": "Summary",
        "key_decisions": "Key decisions",
        "action_items": "Action items",
        "risks": "Risks",
        "sentiment": "Sentiment",
        "participants": "Participants",
    }
    parts: list[str] = []
    for key, lines in sections.items():
        if key == "answer":
            parts.append(" ".join(lines))
        elif key in ("summary", "sentiment", "participants"):
            parts.append(f"{titles[key]}: " + " ".join(lines))
        else:
            parts.append(f"{titles[key]}:\n" + "\n".join(f"- {line}" for line in lines))
    return Reply(sections, "\n\n".join(parts))


def value_for_schema(schema: Any, rng: random.Random, words: list[str], depth: int = 0) -> Any:
    if not isinstance(schema, Mapping) or depth > 6:
        return rng.choice(words)
    if "enum" in schema and schema["enum"]:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            return value_for_schema(schema[key][0], rng, words, depth + 1)
    typ = schema.get("type")
    if isinstance(typ, list):
        typ = next((t for t in typ if t != "null"), "string")
    if typ == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        return {k: value_for_schema(v, rng, words, depth + 1) for k, v in props.items()}
    if typ == "array":
        return [value_for_schema(schema.get("items"), rng, words, depth + 1) for _ in range(2)]
    if typ == "integer":
        return rng.randint(1, 10)
    if typ == "number":
        return round(rng.uniform(0, 100), 2)
    if typ == "boolean":
        return rng.random() < 0.5
    return " ".join(rng.choice(words) for _ in range(rng.randint(1, 3)))
