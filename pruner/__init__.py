"""Context pruning + reranking: the contract, the similarity baseline, the Provence-style model."""

from pruner.answer import answer_scores, is_heading_like
from pruner.base import PrunedContext, Pruner, assemble, check_threshold
from pruner.blend import BlendedPruner, SentenceBlend
from pruner.configuration import PrunerConfig
from pruner.inference import ContextPruner
from pruner.modeling import PrunerModel, PrunerOutput
from pruner.similarity import SimilarityPruner

__all__ = [
    "BlendedPruner",
    "ContextPruner",
    "PrunedContext",
    "Pruner",
    "PrunerConfig",
    "PrunerModel",
    "PrunerOutput",
    "SentenceBlend",
    "SimilarityPruner",
    "answer_scores",
    "assemble",
    "check_threshold",
    "is_heading_like",
]
