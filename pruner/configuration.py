"""Configuration of the Provence-style pruner: a BERT encoder plus a ranking and a token head."""

from __future__ import annotations

from typing import Any

from transformers import AutoConfig, BertConfig, PretrainedConfig


class PrunerConfig(PretrainedConfig):
    """``encoder`` holds the BertConfig of the encoder (MiniLM-L6 for our checkpoint).

    ``default_threshold`` is the sentence keep threshold the checkpoint was tuned for; Provence
    uses 0.1 as its conservative default.
    """

    model_type = "sieve-pruner"

    def __init__(
        self,
        encoder: dict[str, Any] | None = None,
        head_dropout: float = 0.1,
        max_seq_length: int = 512,
        default_threshold: float = 0.1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.encoder = encoder if encoder is not None else BertConfig().to_dict()
        self.head_dropout = head_dropout
        self.max_seq_length = max_seq_length
        self.default_threshold = default_threshold

    @property
    def encoder_config(self) -> BertConfig:
        return BertConfig(**self.encoder)

    @property
    def hidden_size(self) -> int:
        return int(self.encoder["hidden_size"])


AutoConfig.register(PrunerConfig.model_type, PrunerConfig)  # lets Auto* classes read our dir
