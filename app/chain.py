"""Multi-hop chaining: what one hop found steers the next (retrieve → prune → bridge → retrieve →
prune), without an LLM.

The pruner judges every passage alone, so the passage about "the director of film X" that does
not name film X loses. After a pass, the kept sentences of its best passages are the evidence;
their *bridge entities* are the graph entities they name that the question does not (found by the
graph's own extractor and keys, so the names are the ones the graph knows; the closest to the
question first). The next hop then

1. retrieves again with the question plus the bridge names (vector, BM25 and the graph's
   neighbourhood of the bridges): new candidates;
2. prunes again the candidates not in the context yet that name a bridge (the next ones of the
   current order, and the new ones) with the question plus the bridge names as the query, so a
   passage about the bridge is judged against what the question asks of it;
3. accepts a passage when a sentence it keeps names a bridge, and places it right after the
   passage whose evidence led to it, so the LLM reads the chain in reasoning order.

Everything here is bounded by :class:`HopLimits`; app/hops.py runs it over the candidates
(``Hops.run``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from graph import GraphRetriever
from pruner import PrunedContext


@dataclass(frozen=True)
class HopLimits:
    bridges: int = 3  # bridge entities per hop, closest to the question first
    evidence_passages: int = 2  # best passages whose kept sentences are the evidence
    evidence_sentences: int = 2  # best kept sentences of each of them
    # chunks the pass did not have, per hop (per retriever, fused and cut); 3 on the HotpotQA
    # train sample (a design family): as many gold passages sent as 10 within one question, at
    # 1.8x instead of 2.0x the one-pass time
    retrieved: int = 3
    rescored: int = 10  # candidates of the current order re-pruned per hop
    per_source: int = 2  # passages a bridge source may lead to
    # a blended pruner refines a re-pruned passage only when a sentence whose keep probability
    # is at least this names a bridge (chosen on the HotpotQA train sample, a design family:
    # at 0.002 no accepted passage was lost, at 0.01 one in eight)
    keep_floor: float = 0.002


@dataclass(frozen=True)
class Bridge:
    name: str  # as the graph spells it
    key: str
    source: int  # candidate position of the passage whose kept sentences name it
    weight: float  # specificity: rarer entities first


@dataclass(frozen=True)
class Link:
    """A passage in a chain: the hop that found it (0: the first pass already had it in the
    context, the hop only put it after its source), the bridge it names and the passage
    (candidate position) whose evidence named that bridge."""

    hop: int
    bridge: str
    source: int


def evidence(
    texts: Sequence[Sequence[str]],
    pruned: Sequence[PrunedContext],
    order: Sequence[int],
    among: Sequence[int] | None,
    passages: int,
    sentences: int,
) -> list[tuple[int, list[str]]]:
    """(position, its best kept sentences) of the first ``passages`` passages of ``order`` that
    keep a sentence (only those in ``among`` when given: the previous hop's passages). Only the
    ``sentences`` best-scored kept sentences of each count: a passage keeps its neighbours of the
    answer too, and their names lead nowhere."""
    allowed = None if among is None else set(among)
    out: list[tuple[int, list[str]]] = []
    for i in order:
        if len(out) == passages:
            break
        result = pruned[i]
        if result.kept and (allowed is None or i in allowed):
            best = sorted(result.kept, key=lambda k: -result.sentence_scores[k])[:sentences]
            out.append((i, [texts[i][k] for k in sorted(best)]))
    return out


def find_bridges(
    graph: GraphRetriever,
    question: str,
    found: Sequence[tuple[int, list[str]]],
    limit: int,
    seen: set[str] | frozenset[str] = frozenset(),
    relevance: Callable[[Sequence[Bridge]], Sequence[float]] | None = None,
) -> list[Bridge]:
    """The graph entities the evidence names that the question does not (nor an earlier hop),
    at most ``limit``: the most relevant to the question first when ``relevance`` scores them
    (the service: cosine of name and question), then the rarest. Rarity alone picks entities
    that are rare but beside the point ("O.F.M", "Fugue")."""
    asked = {s.key for s in graph.link(question)} | set(seen)
    best: dict[str, Bridge] = {}
    for position, sentences in found:
        for seed in graph.mentioned(sentences):
            if seed.key in asked or seed.key in best:
                continue
            best[seed.key] = Bridge(seed.name, seed.key, position, seed.weight)
    bridges = sorted(best.values(), key=lambda b: -b.weight)
    if relevance is not None and bridges:
        scores = list(relevance(bridges))
        order = sorted(range(len(bridges)), key=lambda i: -scores[i])  # stable: rarer first
        bridges = [bridges[i] for i in order]
    return bridges[:limit]


def hop_query(question: str, bridges: Sequence[Bridge], follow_up: str | None = None) -> str:
    """The next hop's query: the question, the LLM's follow-up query when there is one, then
    the bridge names. (Not the evidence sentences themselves: they make every passage that
    resembles them look relevant, "Harbour towns on the Baltic coast …" for a film shot there;
    the pruner was not trained on question + evidence.)"""
    return " ".join([question, *([follow_up] if follow_up else []), *(b.name for b in bridges)])


def may_name(bridges: Sequence[Bridge], sentences: Sequence[str], title: str) -> bool:
    """Whether a passage could name a bridge at all (its name or key as whole words in the text
    or title, case-folded): a cheap test before pruning it again; :func:`named_bridge`
    decides."""
    text = " ".join([title, *sentences]).casefold()
    return any(_whole(b.name.casefold(), text) or _whole(b.key, text) for b in bridges)


def _whole(words: str, text: str) -> bool:
    return bool(words) and re.search(rf"(?<!\w){re.escape(words)}(?!\w)", text) is not None


def named_bridge(
    graph: GraphRetriever, kept: Sequence[str], bridges: Sequence[Bridge]
) -> Bridge | None:
    """The first bridge (rarest first) that the kept sentences name, if any."""
    if not kept:
        return None
    keys = {s.key for s in graph.mentioned(list(kept))}
    return next((b for b in bridges if b.key in keys), None)


def chain_order(order: Sequence[int], links: dict[int, Link], per_source: int) -> list[int]:
    """``order`` with every linked passage moved right after its source (best first as they
    come in ``order``; at most ``per_source`` each), so a chain reads in reasoning order. Links
    whose source is not in ``order`` keep their place."""
    present = set(order)
    candidates: dict[int, list[int]] = {}
    for i in order:
        link = links.get(i)
        if link is not None and link.source in present and link.source != i:
            candidates.setdefault(link.source, []).append(i)
    followers: dict[int, list[int]] = {}
    for source, linked in candidates.items():
        # what a hop found comes first for the slots; then they read in the order's sequence
        kept = sorted(linked, key=lambda i: links[i].hop == 0)[:per_source]
        followers[source] = [i for i in linked if i in kept]
    moved = {i for bucket in followers.values() for i in bucket}
    out: list[int] = []
    placed: set[int] = set()

    def place(i: int) -> None:
        if i in placed:
            return
        placed.add(i)
        out.append(i)
        for follower in followers.get(i, []):
            place(follower)  # a later hop's passage follows the one it came from, and so on

    for i in order:
        if i not in moved:
            place(i)
    out.extend(i for i in order if i not in placed)  # never lose a passage (no cycle expected)
    return out
