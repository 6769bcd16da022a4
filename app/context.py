"""The context sent to the LLM: the reranked passages' kept sentences within the token budget,
what was cut and why (pruned or over budget), and how well each sent sentence answers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from app.answers import Answer, AskOptions, Citation
from app.fusion import Candidate
from app.llm import ContextSentence, Passage, render_context
from index import ChunkRecord, SentenceRecord
from pruner import PrunedContext, answer_scores
from pruner.answer import ANSWER_COSINE_WEIGHT


def assemble_context(
    fused: list[Candidate],
    pruned: list[PrunedContext],
    options: AskOptions,
    order: Sequence[int],
    count_tokens: Callable[[Sequence[str]], list[int]],
    titles: dict[str, str],
    hops: dict[int, tuple[int, str, int]] | None = None,
) -> Answer:
    """Best-reranked passages first (``rerank_order``), their kept sentences whole, within
    the token budget.

    ``tokens_before`` is what the top_k reranked passages would cost unpruned (what a RAG
    service without a pruner sends); ``tokens_after`` is what is sent, headers included.
    A sentence that does not fit is skipped, and smaller ones after it may still fit; it is
    marked ``over_budget`` on its citation, and counted apart from what the pruner dropped.
    ``hops`` maps a chunk id found by a later hop to (hop, bridge entity, id of the chunk it
    follows), shown on its citation.
    """
    hops = hops or {}
    candidates = [c.chunk for c in fused]
    sources = {c.chunk.id: c.found_by for c in fused}
    ranked = [(candidates[i], pruned[i]) for i in order]
    sentence_tokens = count_tokens([s.text for c, _ in ranked for s in c.sentences])
    header_tokens = count_tokens([header_of(1, titles[c.document_id], c) for c, _ in ranked])
    cost: dict[tuple[int, int], int] = {}
    pos = 0
    for c, _ in ranked:
        for s in c.sentences:
            cost[(c.id, s.index)] = sentence_tokens[pos]
            pos += 1
    before = sum(header_tokens[: options.top_k]) + sum(
        cost[(c.id, s.index)] for c, _ in ranked[: options.top_k] for s in c.sentences
    )
    citations: list[Citation] = []
    sent: dict[int, set[int]] = {}  # chunk id -> indices of the sentences sent
    used = 0
    for (chunk, result), header in zip(ranked, header_tokens, strict=True):
        if len(citations) == options.top_k:
            break
        kept: list[SentenceRecord] = []
        spent = header
        for i in result.kept:
            if used + spent + cost[(chunk.id, i)] <= options.max_context_tokens:
                kept.append(chunk.sentences[i])
                spent += cost[(chunk.id, i)]
        sent[chunk.id] = {s.index for s in kept}
        if not kept:
            continue
        used += spent
        citations.append(
            Citation(
                n=len(citations) + 1,
                chunk=chunk,
                title=titles[chunk.document_id],
                score=result.rerank_score,
                kept=kept,
                kept_scores=[result.sentence_scores[s.index] for s in kept],
                pruned_count=len(chunk.sentences) - len(kept),
                found_by=sources[chunk.id],
                sentence_scores=list(result.sentence_scores),
                over_budget=frozenset(result.kept) - sent[chunk.id],
            )
        )
        if chunk.id in hops:
            citations[-1] = _with_hop(citations[-1], hops[chunk.id], citations)
    by_pruner, by_budget = cuts(ranked[: options.top_k], sent, cost, header_tokens)
    return Answer(
        answer="",
        abstained=False,
        llm="",
        citations=citations,
        context=render_context([passage_of(c) for c in citations]),
        candidates=len(candidates),
        tokens_candidates=sum(sentence_tokens),
        tokens_before=before,
        tokens_after=used,
        sentences_pruned=by_pruner[0],
        tokens_pruned=by_pruner[1],
        sentences_over_budget=by_budget[0],
        tokens_over_budget=by_budget[1],
    )


def _with_hop(citation: Citation, hop: tuple[int, str, int], citations: list[Citation]) -> Citation:
    """A later hop's passage: its hop, bridge and the citation number of the one it follows."""
    number, bridge, source = hop
    led_by = next((c.n for c in citations if c.chunk.id == source), None)
    return replace(citation, hop=number, bridge=bridge, led_by=led_by)


def score_answers(
    encode: Callable[[Sequence[str]], np.ndarray],
    question: str,
    citations: list[Citation],
    weight: float = ANSWER_COSINE_WEIGHT,
) -> list[Citation]:
    """The citations with how well each sent sentence answers the question
    (``pruner.answer``): one embedding pass over the sent sentences (the question's vector
    is cached from retrieval)."""
    texts = [s.text for c in citations for s in c.kept]
    if not texts:
        return citations
    vectors = encode([question, *texts])
    cosines = (vectors[1:] @ vectors[0]).tolist()
    out, pos = [], 0
    for c in citations:
        n = len(c.kept)
        sentences = [s.text for s in c.kept]
        scores = answer_scores(sentences, c.kept_scores, cosines[pos : pos + n], weight)
        out.append(replace(c, answer_scores=scores))
        pos += n
    return out


def cuts(
    ranked: Sequence[tuple[ChunkRecord, PrunedContext]],
    sent: dict[int, set[int]],
    cost: dict[tuple[int, int], int],
    header_tokens: Sequence[int],
) -> tuple[tuple[int, int], tuple[int, int]]:
    """What the ``ranked`` passages lost, as ((sentences, tokens) pruned, (sentences, tokens)
    over budget): a sentence the pruner dropped is pruned; one it kept that was not sent is
    over budget. A passage that sends nothing loses its header as well: to the budget if the
    pruner kept any of it, else to pruning."""
    sentences, tokens = [0, 0], [0, 0]  # [pruned, over budget]
    for (chunk, result), header in zip(ranked, header_tokens, strict=False):
        kept, sent_here = set(result.kept), sent.get(chunk.id, set())
        for s in chunk.sentences:
            if s.index not in sent_here:
                why = int(s.index in kept)
                sentences[why] += 1
                tokens[why] += cost[(chunk.id, s.index)]
        if not sent_here:
            tokens[int(bool(kept))] += header
    return (sentences[0], tokens[0]), (sentences[1], tokens[1])


def header_of(n: int, title: str, chunk: ChunkRecord) -> str:
    return Passage(n, title, chunk.heading_path, []).header


def passage_of(c: Citation) -> Passage:
    answers: list[float | None] = list(c.answer_scores) or [None] * len(c.kept)
    return Passage(
        n=c.n,
        title=c.title,
        heading_path=c.chunk.heading_path,
        sentences=[
            ContextSentence(s.text, score, answer)
            for s, score, answer in zip(c.kept, c.kept_scores, answers, strict=True)
        ],
    )
