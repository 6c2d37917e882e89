"""The torch networks of the sequential recommenders: SASRec, GRU4Rec and BERT4Rec.

Every network reads windows of ``item_idx + 1`` (``int64 (B, L)``, left-padded with ``0``, the
last column the most recent item; :mod:`movierec.data.sequences`) and gives a hidden state per
position, ``encode(seq) -> (B, L, d)``; an item's score at a position is the dot product of the
state with the item's embedding (shared input / output table, as in the papers and RecBole),
plus BERT4Rec's output bias. Details follow RecBole's implementations:

* SASRec (Kang & McAuley, ICDM 2018): item + learned position embeddings, LayerNorm, dropout,
  post-LN transformer layers (GELU feed-forward of ``4 * hidden``), causal attention that never
  looks at padding; weights drawn from N(0, 0.02). Dropout on the attention weights is its own
  setting (``attn_dropout``, default 0): on CPU it costs four times the attention itself.
* GRU4Rec (Hidasi et al., ICLR 2016; RecBole's next-item form): dropout on the item embeddings,
  a bias-free GRU (so left padding, a zero embedding, leaves the zero state unchanged), a linear
  map back to the embedding size.
* BERT4Rec (Sun et al., CIKM 2019): the SASRec stack attending both ways, an extra ``[mask]``
  token (index ``n_items + 1``), an output head (linear, GELU, LayerNorm) and a bias per item; at
  inference the mask token is appended after the person's items and its state is read.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["BERT4RecNet", "GRU4RecNet", "SASRecNet", "next_item_loss"]

INIT_STD = 0.02


class _ItemScorer(nn.Module):
    """Shared scoring of states against the item table (rows ``1..n_items``)."""

    n_items: int
    item: nn.Embedding

    def item_table(self) -> torch.Tensor:
        return self.item.weight[1 : self.n_items + 1]

    def item_bias(self) -> torch.Tensor | None:
        return None

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """``(N, n_items)`` scores of every item for states ``h`` ``(N, d)``; column ``j`` is
        ``item_idx`` ``j``."""
        out = h @ self.item_table().T
        bias = self.item_bias()
        return out if bias is None else out + bias

    def score_items(self, h: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """``(N, k)`` scores of ``items`` (``item_idx + 1``, ``(N, k)``) for states ``(N, d)``."""
        out = torch.einsum("nd,nkd->nk", h, self.item(items))
        bias = self.item_bias()
        return out if bias is None else out + bias[items - 1]

    def user_state(self, seq: torch.Tensor) -> torch.Tensor:
        """``(B, d)``: the state that predicts the item after window ``seq``."""
        return self.encode(seq)[:, -1]

    def encode(self, seq: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


def _attention_mask(seq: torch.Tensor, causal: bool) -> torch.Tensor:
    """``bool (B, 1, L, L)``, True where a query MAY look: real (non-padding) keys, only earlier
    ones when ``causal``; a position may always look at itself (so padded rows stay finite)."""
    length = seq.shape[1]
    eye = torch.eye(length, dtype=torch.bool, device=seq.device)
    allowed = (seq != 0)[:, None, :].expand(-1, length, -1)
    if causal:
        allowed = allowed & torch.tril(torch.ones(length, length, dtype=torch.bool,
                                                  device=seq.device))[None]
    return (allowed | eye[None])[:, None]


class _Block(nn.Module):
    """One post-LN transformer layer (as RecBole's and BERT's): multi-head attention, dropout,
    add and LayerNorm; GELU feed-forward, dropout, add and LayerNorm. Attention runs through
    ``scaled_dot_product_attention`` with one mask per sequence shared by the heads."""

    def __init__(self, hidden: int, heads: int, inner: int, dropout: float, attn_dropout: float):
        super().__init__()
        self.heads, self.attn_dropout = heads, attn_dropout
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.out = nn.Linear(hidden, hidden)
        self.norm1 = nn.LayerNorm(hidden, eps=1e-12)
        self.ff = nn.Sequential(nn.Linear(hidden, inner), nn.GELU(), nn.Linear(inner, hidden))
        self.norm2 = nn.LayerNorm(hidden, eps=1e-12)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        b, length, d = x.shape
        q, k, v = self.qkv(x).view(b, length, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed,
                                             dropout_p=self.attn_dropout if self.training else 0.0)
        x = self.norm1(x + self.drop(self.out(att.transpose(1, 2).reshape(b, length, d))))
        return self.norm2(x + self.drop(self.ff(x)))


class _TransformerNet(_ItemScorer):
    causal = True

    def __init__(self, n_items: int, extra_tokens: int, hidden: int, layers: int, heads: int,
                 max_len: int, dropout: float, attn_dropout: float, inner: int | None):
        super().__init__()
        self.n_items, self.heads, self.max_len = n_items, heads, max_len
        self.item = nn.Embedding(n_items + 1 + extra_tokens, hidden, padding_idx=0)
        self.position = nn.Embedding(max_len, hidden)
        self.norm = nn.LayerNorm(hidden, eps=1e-12)
        self.dropout = nn.Dropout(dropout)
        inner = inner or 4 * hidden
        self.blocks = nn.ModuleList(_Block(hidden, heads, inner, dropout, attn_dropout)
                                    for _ in range(layers))
        self.apply(_init_weights)

    def encode(self, seq: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(seq.shape[1], device=seq.device) + (self.max_len - seq.shape[1])
        x = self.dropout(self.norm(self.item(seq) + self.position(pos)[None]))
        allowed = _attention_mask(seq, self.causal)
        for block in self.blocks:
            x = block(x, allowed)
        return x


class SASRecNet(_TransformerNet):
    """SASRec: ``layers`` causal transformer layers of width ``hidden`` with ``heads`` heads."""

    def __init__(self, n_items: int, hidden: int = 64, layers: int = 2, heads: int = 2,
                 max_len: int = 50, dropout: float = 0.2, attn_dropout: float = 0.0,
                 inner: int | None = None):
        super().__init__(n_items, 0, hidden, layers, heads, max_len, dropout, attn_dropout, inner)


class BERT4RecNet(_TransformerNet):
    """BERT4Rec: bidirectional layers, a ``[mask]`` token ``n_items + 1``, an output head."""

    causal = False

    def __init__(self, n_items: int, hidden: int = 64, layers: int = 2, heads: int = 2,
                 max_len: int = 50, dropout: float = 0.2, attn_dropout: float = 0.0,
                 inner: int | None = None):
        super().__init__(n_items, 1, hidden, layers, heads, max_len, dropout, attn_dropout, inner)
        self.mask_token = n_items + 1
        self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(),
                                  nn.LayerNorm(hidden, eps=1e-12))
        self.bias = nn.Parameter(torch.zeros(n_items))
        self.head.apply(_init_weights)

    def item_bias(self) -> torch.Tensor:
        return self.bias

    def encode(self, seq: torch.Tensor) -> torch.Tensor:
        return self.head(super().encode(seq))

    def user_state(self, seq: torch.Tensor) -> torch.Tensor:
        """The state at a mask token appended after the window's last ``L - 1`` items."""
        masked = torch.cat([seq[:, 1:], torch.full_like(seq[:, :1], self.mask_token)], dim=1)
        return self.encode(masked)[:, -1]


class GRU4RecNet(_ItemScorer):
    """GRU4Rec: ``embedding``-dim items (dropout ``dropout``), a bias-free GRU of ``layers``
    layers and ``hidden`` units, a linear map back to ``embedding`` dims."""

    def __init__(self, n_items: int, hidden: int = 64, layers: int = 1,
                 embedding: int | None = None, dropout: float = 0.25):
        super().__init__()
        emb = embedding or hidden
        self.n_items = n_items
        self.item = nn.Embedding(n_items + 1, emb, padding_idx=0)
        self.emb_dropout = nn.Dropout(dropout)
        self.gru = nn.GRU(emb, hidden, layers, bias=False, batch_first=True)
        self.dense = nn.Linear(hidden, emb)
        nn.init.xavier_normal_(self.item.weight)
        with torch.no_grad():
            self.item.weight[0].zero_()
        for w in self.gru.parameters():
            nn.init.xavier_uniform_(w)

    def encode(self, seq: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(self.emb_dropout(self.item(seq)))
        return self.dense(out)


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, (nn.Linear, nn.Embedding)):
        module.weight.data.normal_(0.0, INIT_STD)
        if isinstance(module, nn.Embedding) and module.padding_idx is not None:
            module.weight.data[module.padding_idx].zero_()
    if isinstance(module, nn.Linear) and module.bias is not None:
        module.bias.data.zero_()
    if isinstance(module, nn.LayerNorm):
        module.weight.data.fill_(1.0)
        module.bias.data.zero_()


def next_item_loss(net: _ItemScorer, h: torch.Tensor, targets: torch.Tensor, loss: str,
                   n_negatives: int, gbce_t: float, generator: torch.Generator) -> torch.Tensor:
    """Mean loss of predicting ``targets`` (``item_idx + 1``, ``(N,)``) from states ``h``
    ``(N, d)``:

    * ``ce``: softmax cross-entropy over every item (SASRec+ / RecBole's CE);
    * ``bce``: log loss on the target and one uniformly drawn item (the SASRec paper);
    * ``sampled``: softmax cross-entropy over the target and ``n_negatives`` drawn items;
    * ``gbce``: gSASRec's generalised BCE with ``n_negatives`` drawn items: the target's
      log-sigmoid is weighted by ``beta = alpha * (t * (1 - 1 / alpha) + 1 / alpha)``, ``alpha``
      the sampling rate ``n_negatives / (n_items - 1)`` and ``t = gbce_t`` (Petrov & Macdonald,
      RecSys 2023: ``sigmoid(s)^beta`` is the calibrated probability).
    """
    if loss == "ce":
        return F.cross_entropy(net.logits(h), targets - 1)
    k = 1 if loss == "bce" else n_negatives
    negatives = torch.randint(1, net.n_items + 1, (h.shape[0], k), generator=generator)
    scores = net.score_items(h, torch.cat([targets[:, None], negatives.to(h.device)], dim=1))
    if loss == "sampled":
        return F.cross_entropy(scores, torch.zeros(h.shape[0], dtype=torch.long,
                                                   device=h.device))
    beta = 1.0
    if loss == "gbce":
        alpha = k / max(1, net.n_items - 1)
        beta = alpha * (gbce_t * (1 - 1 / alpha) + 1 / alpha)
    per_row = -beta * F.logsigmoid(scores[:, 0]) - F.logsigmoid(-scores[:, 1:]).sum(dim=1)
    return per_row.mean()
