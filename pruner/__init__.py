"""Context pruning + reranking: the contract and the similarity baseline."""

from pruner.base import PrunedContext, Pruner, assemble, check_threshold
from pruner.similarity import SimilarityPruner

__all__ = ["PrunedContext", "Pruner", "SimilarityPruner", "assemble", "check_threshold"]
