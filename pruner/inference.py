"""ContextPruner: rerank and prune passages with the Provence-style model in one forward pass.

    pruner = ContextPruner()                      # the checkpoint shipped under pruner/checkpoint
    out = pruner.process("Who wrote X?", ["Passage one. Two.", "Other passage."])

Each passage becomes ``[CLS] question [SEP] s_1 … s_n [SEP]``. A passage longer than the model
window is split at sentence boundaries into windows that each carry the question; their sentence
scores are merged back and the passage score is the best window's. A sentence's score is the mean
keep-probability of its tokens. Inputs are sorted by length so batches carry little padding.

Concurrent calls share forward passes (pruner/batching.py: whoever finds the model idle runs
every queued request's windows together), and a (question, passage) seen before is answered from
a bounded cache without a forward pass. The model runs in fp32, bf16 or int8 (pruner/precision.py).
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

import torch
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from pruner.base import PrunedContext, assemble, check_threshold
from pruner.batching import Batcher
from pruner.modeling import PrunerModel
from pruner.precision import PRECISIONS, check_precision, to_precision
from pruner.provence_deberta import ProvenceDeberta, is_provence_dir

logger = logging.getLogger(__name__)

CHECKPOINT = Path(__file__).resolve().parent / "checkpoint"
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")


def split_sentences(text: str) -> list[str]:
    """A small splitter for plain-string contexts (the service passes pre-split sentences)."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


@dataclass(frozen=True)
class _Window:
    question: int  # index of the question
    context: int  # index of the passage among the question's
    sentences: list[int]  # indices of its sentences in this window
    input_ids: list[int]
    spans: list[tuple[int, int]]  # token span of each sentence in input_ids


@dataclass(frozen=True)
class _Scored:
    rank: float  # the window's passage score
    sentences: list[float]  # keep score of each of its sentences


Key = tuple[str, tuple[str, ...]]  # (question, passage sentences)


class ContextPruner:
    name = "provence"

    def __init__(
        self,
        path: str | Path | None = None,
        device: str = "auto",
        batch_size: int = 32,
        precision: str = "auto",
        cache_size: int = 0,
        max_batch_windows: int = 64,
        max_wait_s: float = 0.0,
    ) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be > 0, got {batch_size}")
        if precision != "auto" and precision not in PRECISIONS:
            raise ValueError(
                f"precision must be auto or one of {', '.join(PRECISIONS)}, got {precision!r}"
            )
        if cache_size < 0:
            raise ValueError(f"cache_size must be >= 0, got {cache_size}")
        self.path = Path(path) if path else CHECKPOINT
        if not (self.path / "config.json").exists():
            raise FileNotFoundError(f"no pruner checkpoint at {self.path} (config.json missing)")
        self.device = device
        self.batch_size = batch_size
        self._model: PrunerModel | ProvenceDeberta | None = None
        self._tokenizer: PreTrainedTokenizerBase | None = None
        self.precision = precision
        self.cache_size = cache_size
        self._load_lock = threading.Lock()
        # one fast tokenizer for every request thread: its Rust side is not shared safely
        self._tok_lock = threading.Lock()
        # requests' windows are merged into shared forward passes, first come first served
        self.batcher: Batcher[_Window, _Scored] = Batcher(
            self._run_windows, max_items=max_batch_windows, max_wait_s=max_wait_s
        )
        self._cache: OrderedDict[Key, tuple[list[float], float]] = OrderedDict()
        self._cache_lock = threading.Lock()
        self.cache_hits = 0

    def load(self) -> ContextPruner:
        """Load once (safe to call twice, from any thread); once loaded, no lock is taken."""
        if self._model is None:
            with self._load_lock:
                if self._model is None:
                    self._load()
        return self

    def _load(self) -> None:
        if self.device == "auto":
            self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self._tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
        model: PrunerModel | ProvenceDeberta
        if is_provence_dir(self.path):  # a local copy of Naver's DeBERTa Provence
            model = ProvenceDeberta.from_dir(self.path)
        else:
            model = PrunerModel.from_pretrained(self.path, local_files_only=True)
        if (
            self.precision == "auto"
        ):  # bf16 on a GPU; on a CPU the service decides (app/precision.py)
            self.precision = "bf16" if self.device.startswith("cuda") else "fp32"
        check_precision(self.precision, self.device)
        self._model = to_precision(model.eval(), self.precision, self.device)  # type: ignore[assignment]
        logger.info("pruner loaded from %s on %s in %s", self.path, self.device, self.precision)

    @property
    def default_threshold(self) -> float:
        return float(self.model.config.default_threshold)

    @property
    def model(self) -> PrunerModel | ProvenceDeberta:
        self.load()
        assert self._model is not None
        return self._model

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        self.load()
        assert self._tokenizer is not None
        return self._tokenizer

    @overload
    def process(  # type: ignore[overload-overlap]  # a str is also a Sequence[str]
        self,
        question: str,
        contexts: Sequence[Sequence[str]] | Sequence[str],
        threshold: float | None = None,
        always_select_title: bool = True,
        batch_size: int | None = None,
        reorder: bool = False,
        top_k: int | None = 5,
    ) -> list[PrunedContext]: ...

    @overload
    def process(
        self,
        question: Sequence[str],
        contexts: Sequence[Sequence[Sequence[str]] | Sequence[str]],
        threshold: float | None = None,
        always_select_title: bool = True,
        batch_size: int | None = None,
        reorder: bool = False,
        top_k: int | None = 5,
    ) -> list[list[PrunedContext]]: ...

    def process(
        self,
        question: str | Sequence[str],
        contexts: Any,
        threshold: float | None = None,
        always_select_title: bool = True,
        batch_size: int | None = None,
        reorder: bool = False,
        top_k: int | None = 5,
    ) -> list[PrunedContext] | list[list[PrunedContext]]:
        """Prune and rerank, as Provence's ``process()``.

        ``question`` is one question with its contexts, or a list of questions with one list of
        contexts each (all scored in shared, length-bucketed batches). A context is a list of
        sentences or a string (split here). With ``always_select_title`` the first sentence is
        kept whenever anything else is. With ``reorder`` each question's results come best-first,
        ``top_k`` of them (all when ``top_k`` is None); without it they keep the input order.
        """
        threshold = check_threshold(self.default_threshold if threshold is None else threshold)
        size = self.batch_size if batch_size is None else batch_size
        if size <= 0:
            raise ValueError(f"batch_size must be > 0, got {size}")
        if top_k is not None and top_k <= 0:
            raise ValueError(f"top_k must be > 0, got {top_k}")
        single = isinstance(question, str)
        if single and isinstance(contexts, str):
            contexts = [contexts]  # one passage given as a string, not a list of characters
        questions = [question] if isinstance(question, str) else list(question)
        # several questions: one list of contexts each, or a single context string each
        groups = [contexts] if single else [[g] if isinstance(g, str) else g for g in contexts]
        if len(groups) != len(questions):
            raise ValueError(
                f"{len(questions)} questions but {len(groups)} context lists: give one per question"
            )
        if any(not q.strip() for q in questions):
            raise ValueError("question must not be empty")
        passages = [
            [[*split_sentences(c)] if isinstance(c, str) else list(c) for c in group]
            for group in groups
        ]
        scored = self._score(questions, passages, size)
        results: list[list[PrunedContext]] = []
        for group, group_scores in zip(passages, scored, strict=True):
            out = [
                assemble(sentences, scores, threshold, rank, always_select_title)
                for sentences, (scores, rank) in zip(group, group_scores, strict=True)
            ]
            if reorder:
                out.sort(key=lambda r: -r.rerank_score)
                out = out[:top_k] if top_k else out
            results.append(out)
        return results[0] if single else results

    def rerank(
        self, question: str, contexts: Sequence[Sequence[str]] | Sequence[str]
    ) -> list[float]:
        """Passage scores only, in input order: the same forward pass without the token head
        and sentence scoring (what a plain cross-encoder reranker costs)."""
        if not question.strip():
            raise ValueError("question must not be empty")
        passages = [split_sentences(c) if isinstance(c, str) else list(c) for c in contexts]
        with self._tok_lock:
            windows = self._windows(question, passages)
        return self.batcher.alone(lambda: self._rank_windows(windows, len(passages)))

    @torch.inference_mode()  # per thread: the leader that runs this may be another request's
    def _rank_windows(self, windows: list[_Window], count: int) -> list[float]:
        scores = [0.0] * count
        order = sorted(range(len(windows)), key=lambda i: len(windows[i].input_ids))
        for start in range(0, len(order), self.batch_size):
            batch = [windows[i] for i in order[start : start + self.batch_size]]
            ids, mask = self._pad(batch)
            logits = self.model.rank(ids, mask)
            for w, r in zip(batch, torch.sigmoid(logits.float()).cpu().tolist(), strict=True):
                scores[w.context] = max(scores[w.context], r)
        return scores

    # ---- internals --------------------------------------------------------------------------
    def _score(
        self, questions: list[str], passages: list[list[list[str]]], batch_size: int
    ) -> list[list[tuple[list[float], float]]]:
        """Per question, per passage: (sentence keep scores, passage rerank score)."""
        out: list[list[tuple[list[float], float] | None]] = [
            [self._cached((q, tuple(p))) if p else ([], 0.0) for p in group]
            for q, group in zip(questions, passages, strict=True)
        ]
        todo = [
            [p if out[qi][ci] is None else [] for ci, p in enumerate(group)]
            for qi, group in enumerate(passages)
        ]
        if any(p for group in todo for p in group):
            with self._tok_lock:
                windows = [
                    w for qi, q in enumerate(questions) for w in self._windows(q, todo[qi], qi)
                ]
            if batch_size == self.batch_size:
                scored = self.batcher.submit(windows)
            else:  # a caller's own batch size: not merged with others
                scored = self.batcher.alone(lambda: self._run_windows(windows, batch_size))
            fresh: dict[tuple[int, int], tuple[list[float], float]] = {}
            for w, sc in zip(windows, scored, strict=True):
                sentences, rank = fresh.setdefault(
                    (w.question, w.context), ([0.0] * len(todo[w.question][w.context]), 0.0)
                )
                for si, value in zip(w.sentences, sc.sentences, strict=True):
                    sentences[si] = value
                fresh[(w.question, w.context)] = (sentences, max(rank, sc.rank))
            for (qi, ci), result in fresh.items():
                out[qi][ci] = result
                self._remember((questions[qi], tuple(passages[qi][ci])), result)
        return [[r if r is not None else ([], 0.0) for r in group] for group in out]

    def _cached(self, key: Key) -> tuple[list[float], float] | None:
        if not self.cache_size:
            return None
        with self._cache_lock:
            found = self._cache.get(key)
            if found is not None:
                self._cache.move_to_end(key)
                self.cache_hits += 1
                return list(found[0]), found[1]
        return None

    def _remember(self, key: Key, result: tuple[list[float], float]) -> None:
        if not self.cache_size:
            return
        with self._cache_lock:
            self._cache[key] = (list(result[0]), result[1])
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

    @torch.inference_mode()
    def _run_windows(
        self, windows: Sequence[_Window], batch_size: int | None = None
    ) -> list[_Scored]:
        """Every window's scores, in input order: sorted by length, batch_size per forward."""
        size = batch_size or self.batch_size
        scored: list[_Scored | None] = [None] * len(windows)
        order = sorted(range(len(windows)), key=lambda i: len(windows[i].input_ids))
        for start in range(0, len(order), size):
            picked = order[start : start + size]
            ranks, keeps = self._forward([windows[i] for i in picked])
            for i, rank, keep in zip(picked, ranks, keeps, strict=True):
                spans = windows[i].spans
                scored[i] = _Scored(
                    rank, [float(keep[a:b].mean()) if b > a else 0.0 for a, b in spans]
                )
        return [s for s in scored if s is not None]

    def _pad(self, batch: list[_Window]) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded ids and attention mask (B, T) on the model's device."""
        width = max(len(w.input_ids) for w in batch)
        pad = self.tokenizer.pad_token_id or 0
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, w in enumerate(batch):
            ids[row, : len(w.input_ids)] = torch.tensor(w.input_ids)
            mask[row, : len(w.input_ids)] = 1
        device = self.model.device
        return ids.to(device), mask.to(device)

    def _forward(self, batch: list[_Window]) -> tuple[list[float], list[torch.Tensor]]:
        ids, mask = self._pad(batch)
        out = self.model(input_ids=ids, attention_mask=mask)
        ranks = torch.sigmoid(out.rank_logits.float()).cpu().tolist()  # (B,)
        keeps = torch.sigmoid(out.token_logits.float()).cpu()  # (B, T)
        return ranks, list(keeps)

    def _windows(self, question: str, passages: list[list[str]], qi: int = 0) -> list[_Window]:
        tok = self.tokenizer
        max_len = int(self.model.config.max_seq_length)
        q_ids = tok(question, add_special_tokens=False)["input_ids"][: max_len // 4]
        head = [tok.cls_token_id, *q_ids, tok.sep_token_id]
        room = max_len - len(head) - 1  # the closing [SEP]
        flat = [s for p in passages for s in p]
        encoded: list[list[int]] = tok(flat, add_special_tokens=False)["input_ids"] if flat else []
        windows: list[_Window] = []
        pos = 0
        for ci, sentences in enumerate(passages):
            if not sentences:
                continue  # nothing to score: rank and sentence scores stay 0
            current: list[int] = []
            ids: list[int] = list(head)
            spans: list[tuple[int, int]] = []
            for si in range(len(sentences)):
                piece = encoded[pos + si][:room]  # a giant sentence is scored on its start
                if current and len(ids) + len(piece) > max_len - 1:
                    windows.append(_Window(qi, ci, current, [*ids, tok.sep_token_id], spans))
                    current, ids, spans = [], list(head), []
                spans.append((len(ids), len(ids) + len(piece)))
                ids.extend(piece)
                current.append(si)
            pos += len(sentences)
            windows.append(_Window(qi, ci, current, [*ids, tok.sep_token_id], spans))
        return windows

    def to_provence_dicts(self, results: list[PrunedContext]) -> list[dict[str, Any]]:
        """The shape of Provence's ``process()`` output, for drop-in users."""
        return [
            {
                "pruned_context": r.pruned_text,
                "reranking_score": r.rerank_score,
                "compression_rate": 100.0 * r.compression,
                "kept_sentences": r.kept,
            }
            for r in results
        ]
