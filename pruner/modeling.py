"""The Provence-style pruner model: one encoder pass gives a passage score and token scores.

    input:  [CLS] question [SEP] sentence_1 sentence_2 … [SEP]        (B, T)
    encoder hidden states                                             (B, T, H)
    rank head on [CLS]        → rank_logits                           (B,)
    token head on every token → token_logits (keep vs drop)           (B, T)

Trained with token BCE (question and special tokens ignored) + λ · ranking loss (pruner/train.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import BertModel, PreTrainedModel

from pruner.configuration import PrunerConfig


@dataclass
class PrunerOutput:
    rank_logits: torch.Tensor  # (B,)
    token_logits: torch.Tensor  # (B, T)


class PrunerModel(PreTrainedModel):
    config_class = PrunerConfig
    base_model_prefix = "encoder"

    def __init__(self, config: PrunerConfig) -> None:
        super().__init__(config)
        self.encoder = BertModel(config.encoder_config, add_pooling_layer=False)
        self.dropout = nn.Dropout(config.head_dropout)
        self.rank_head = nn.Linear(config.hidden_size, 1)
        self.token_head = nn.Linear(config.hidden_size, 1)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            module.weight.data.normal_(mean=0.0, std=0.02)
            if module.bias is not None:
                module.bias.data.zero_()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> PrunerOutput:
        hidden = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state  # (B, T, H)
        hidden = self.dropout(hidden)
        rank_logits = self.rank_head(hidden[:, 0]).squeeze(-1)  # (B,)
        token_logits = self.token_head(hidden).squeeze(-1)  # (B, T)
        return PrunerOutput(rank_logits=rank_logits, token_logits=token_logits)

    def rank(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Rank logits only (B,): reranking without the token head, to measure its overhead."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.rank_head(self.dropout(hidden[:, 0])).squeeze(-1)
