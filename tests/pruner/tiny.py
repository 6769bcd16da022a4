"""A tiny randomly initialised pruner checkpoint (our structure), for fast tests."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoTokenizer, BertConfig

from index import bundled_model_path
from pruner import PrunerConfig, PrunerModel


def save_tiny_checkpoint(path: Path, layers: int = 2, max_seq_length: int = 48) -> Path:
    encoder = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    torch.manual_seed(0)
    config = PrunerConfig(encoder=encoder.to_dict(), max_seq_length=max_seq_length)
    PrunerModel(config).save_pretrained(path)
    AutoTokenizer.from_pretrained(bundled_model_path(), local_files_only=True).save_pretrained(path)
    return path
