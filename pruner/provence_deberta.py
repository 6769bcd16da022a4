"""Adapter for a local copy of Naver's Provence (``naver/provence-reranker-debertav3-v1``).

That checkpoint is a DeBERTa-v3 encoder (``deberta.*``) with a context pooler on the first token
(``pooler.dense``), a ranking ``classifier`` (one logit) and a two-class ``token_classifier``
(drop / keep) on every token. This module rebuilds that structure from the directory's
``config.json`` and weights with plain transformers classes (no remote code, nothing downloaded)
and returns the same ``PrunerOutput`` as our own model: the keep logit is ``logit_keep -
logit_drop``, so its sigmoid equals Provence's softmax keep-probability.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn
from transformers import DebertaV2Config, DebertaV2Model
from transformers.models.deberta_v2.modeling_deberta_v2 import ContextPooler

from pruner.modeling import PrunerOutput

logger = logging.getLogger(__name__)

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def is_provence_dir(path: Path) -> bool:
    """True for a Provence / DeBERTa-v2 checkpoint directory (rather than one of ours)."""
    config = json.loads((path / "config.json").read_text())
    return config.get("model_type") in ("deberta-v2", "deberta_v2") or "Provence" in config.get(
        "architectures", []
    )


class ProvenceDeberta(nn.Module):
    def __init__(self, config: DebertaV2Config) -> None:
        super().__init__()
        self.config = config
        self.deberta = DebertaV2Model(config)
        self.pooler = ContextPooler(config)
        self.classifier = nn.Linear(self.pooler.output_dim, 1)
        self.token_classifier = nn.Linear(config.hidden_size, 2)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **_: Any
    ) -> PrunerOutput:
        hidden = self.deberta(input_ids=input_ids, attention_mask=attention_mask)[0]  # (B, T, H)
        rank_logits = self.classifier(self.pooler(hidden))[:, 0]  # (B,)
        two = self.token_classifier(hidden)  # (B, T, 2): drop, keep
        return PrunerOutput(rank_logits=rank_logits, token_logits=two[..., 1] - two[..., 0])

    def rank(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Rank logits only (B,)."""
        hidden = self.deberta(input_ids=input_ids, attention_mask=attention_mask)[0]
        return self.classifier(self.pooler(hidden))[:, 0]

    @classmethod
    def from_dir(cls, path: str | Path) -> ProvenceDeberta:
        path = Path(path)
        raw = json.loads((path / "config.json").read_text())
        raw.pop("auto_map", None)  # remote-code pointers: we never execute them
        config = DebertaV2Config(**raw)
        if not getattr(config, "max_seq_length", None):
            config.max_seq_length = min(512, int(config.max_position_embeddings))
        if not getattr(config, "default_threshold", None):
            config.default_threshold = 0.1  # Provence's conservative default
        model = cls(config)
        weights = next((path / f for f in WEIGHT_FILES if (path / f).exists()), None)
        if weights is None:
            raise FileNotFoundError(f"no {' or '.join(WEIGHT_FILES)} in {path}")
        state = (
            load_file(str(weights))
            if weights.suffix == ".safetensors"
            else torch.load(weights, map_location="cpu", weights_only=True)
        )
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected:
            logger.info(
                "ignored %d weights not in the Provence structure: %s",
                len(unexpected),
                unexpected[:5],
            )
        essential = [k for k in missing if not k.endswith("position_ids")]
        if essential:
            raise ValueError(
                f"{weights} lacks weights the Provence structure needs: {essential[:5]}"
            )
        return model.eval()
