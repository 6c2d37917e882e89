"""Losses: log loss over (soft) implicit labels, L2 on the embeddings in a batch, and the genre
diversity regulariser."""

from __future__ import annotations

from typing import Protocol

import torch

from movierec.training.networks import gather


class EmbeddingNetwork(Protocol):
    """What :func:`batch_l2` needs of a network (every NCF network has it)."""

    def user_vectors(self, u: torch.Tensor) -> torch.Tensor: ...

    def item_tables(self) -> list[torch.Tensor]: ...


def log_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy of ``sigmoid(logits)`` against targets in [0, 1] (the NCF
    paper's log loss; soft targets allowed)."""
    return torch.nn.functional.binary_cross_entropy_with_logits(logits, target)


def batch_l2(net: EmbeddingNetwork, u: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
    """Mean over the batch pairs ``(u[b], i[b])`` of the squared L2 norms of the user vector and
    the item embeddings they use: regularises frequent users and items in proportion to their
    use, unlike optimiser weight decay, which shrinks every row every step."""
    total = net.user_vectors(u).pow(2).sum(dim=1).mean()
    for table in net.item_tables():
        total = total + gather(table, i).pow(2).sum(dim=1).mean()
    return total


def jaccard(genres: torch.Tensor) -> torch.Tensor:
    """``(M, M)`` Jaccard similarity of ``M`` binary genre rows ``(M, n_genres)`` (0 where both
    rows are empty), as EVALUATION.md's diversity@10 uses it."""
    g = genres.float()
    inter = g @ g.T
    size = g.sum(dim=1)
    union = size[:, None] + size[None, :] - inter
    return torch.where(union > 0, inter / union.clamp_min(1.0), torch.zeros_like(inter))


def diversity_penalty(
    scores: torch.Tensor, similarity: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """How alike the items are that each user scores highest: a differentiable soft top-k.

    ``scores`` is ``(U, M)`` (users x candidate items), ``similarity`` is ``(M, M)`` genre
    similarity of the candidates. Each user's scores become a distribution
    ``p = softmax(scores / temperature)`` over the candidates; the penalty is the mean over users
    of the expected similarity of two *different* items drawn from it,
    ``sum_{i != j} p_i p_j S_ij / (1 - sum_i p_i^2)``: the soft version of the mean pairwise
    similarity that diversity@10 measures on the top 10 (1 - diversity). It is high when the
    top-scored items share genres and falls as high scores spread over unlike genres; flattening
    the scores does not lower it (the diagonal is left out and the sum renormalised), so the
    log loss keeps the ranking and the penalty only reorders it.
    """
    p = torch.softmax(scores / temperature, dim=1)
    off = similarity - torch.diag_embed(torch.diagonal(similarity))
    alike = ((p @ off) * p).sum(dim=1)
    distinct = (1.0 - (p * p).sum(dim=1)).clamp_min(1e-6)
    return (alike / distinct).mean()
