"""The torch networks of neural collaborative filtering (He et al., WWW 2017): GMF, MLP, NeuMF.

Each network maps ``(user_idx, item_idx)`` int64 tensors of shape ``(B,)`` to ``(B,)`` logits
(apply a sigmoid for the predicted probability of an interaction). Sizes:

* GMF: user and item embeddings of ``factors`` dims, their element-wise product, one linear output.
* MLP: user and item embeddings of ``mlp_factors`` dims, concatenated (``2 * mlp_factors`` wide),
  then a tower of ``Linear + ReLU (+ dropout)`` layers of widths ``layers`` (e.g. ``[64, 32, 16,
  8]``), one linear output over the last layer.
* NeuMF: a GMF path and an MLP path with their own embeddings; the GMF product and the last MLP
  layer are concatenated into one linear output.

The first tower layer acts on a concatenation, so it splits into a user half and an item half
(``W [u; i] = W_u u + W_i i``). For large batches the networks project the whole embedding
tables through their half once per step and gather rows, which is the same function and gradient
as projecting every sample but costs ``(n_users + n_items)`` instead of ``B`` matrix rows.
"""

from __future__ import annotations

import threading
from typing import cast

import torch
from torch import nn

__all__ = ["GMF", "MLP", "NeuMF", "gather", "halving_tower", "init_neumf_from", "mark_sparse",
           "set_score_dtype"]


def halving_tower(last: int, n_layers: int) -> list[int]:
    """Widths of a tower of ``n_layers`` layers that halve down to ``last``.

    ``halving_tower(8, 4) == [64, 32, 16, 8]``; ``halving_tower(16, 3) == [64, 32, 16]``.
    """
    if last < 1 or n_layers < 1:
        raise ValueError(f"need last >= 1 and n_layers >= 1, got {last}, {n_layers}")
    return [last * 2 ** (n_layers - 1 - k) for k in range(n_layers)]


_ROWS_LOCK = threading.Lock()

GRID_USERS, GRID_ITEMS = 16, 512
"""Block of (users, items) one step of :meth:`_Tower.grid_scores` holds: 16 x 512 pairs of the
128-wide first layer are 4 MiB, what a core's cache keeps while the next layer reads it."""


class _Tower(nn.Module):
    """``Linear + ReLU (+ dropout)`` layers over ``[user_vec; item_vec]`` (see module docstring)."""

    def __init__(self, in_half: int, layers: list[int], dropout: float):
        super().__init__()
        if not layers:
            raise ValueError("an MLP tower needs at least one layer")
        self.first_user = nn.Linear(in_half, layers[0], bias=True)
        self.first_item = nn.Linear(in_half, layers[0], bias=False)
        pairs = zip(layers[:-1], layers[1:], strict=True)
        self.rest = nn.ModuleList(nn.Linear(a, b) for a, b in pairs)
        self.dropout = float(dropout)
        self.out_dim = layers[-1]
        self.score_dtype: torch.dtype | None = None  # see grid_scores and set_score_dtype

    @staticmethod
    def _project(layer: nn.Linear, table: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """``layer(table[idx])``; projects the whole table first when ``idx`` is much longer."""
        if idx.numel() > 2 * table.shape[0]:
            return nn.functional.embedding(idx, layer(table))
        return layer(gather(table, idx))

    def _linears(self) -> list[nn.Linear]:
        """The layers after the first, typed (``nn.ModuleList`` yields plain modules)."""
        return [cast("nn.Linear", layer) for layer in self.rest]

    def _top(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """``drop(relu(...))`` through the layers, then ``@ w``. Dropout multiplies by a 0/1
        mask only; its ``1 / (1 - p)`` goes into the next layer's weights (or ``w``), the same
        function with two fewer passes over the batch per layer."""
        x, scale = self._drop(torch.relu(x))
        for layer in self._linears():
            weight = layer.weight if scale == 1.0 else layer.weight * scale
            x, scale = self._drop(torch.relu(nn.functional.linear(x, weight, layer.bias)))
        return x @ (w if scale == 1.0 else w * scale)

    def forward(
        self, user_table: torch.Tensor, item_table: torch.Tensor, u: torch.Tensor, i: torch.Tensor,
        w: torch.Tensor,
    ) -> torch.Tensor:
        """``last layer @ w``, ``(B,)``, for the pairs ``(u[b], i[b])``."""
        hu = self._project(self.first_user, user_table, u)
        return self._top(hu + self._project(self.first_item, item_table, i), w)

    def groups(
        self, user_table: torch.Tensor, item_table: torch.Tensor, u: torch.Tensor, i: torch.Tensor,
        w: torch.Tensor,
    ) -> torch.Tensor:
        """``last layer @ w``, ``(G, m)``, for user ``u[g]`` with each of items ``i[g, :]``."""
        hu = self._project(self.first_user, user_table, u)
        return self._top(hu[:, None, :] + self._project(self.first_item, item_table, i), w)

    def grid(
        self, user_vecs: torch.Tensor, item_table: torch.Tensor, items: torch.Tensor,
        w: torch.Tensor,
    ) -> torch.Tensor:
        """``last layer @ w``, ``(U, M)``, for every (user vector, item) pair."""
        hu = self.first_user(user_vecs)
        return self._top(hu[:, None, :] + self._item_half(item_table, items)[None], w)

    def pair_scores(self, user_vecs: torch.Tensor, item_table: torch.Tensor,
                    items: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """``last layer @ w``, ``(B,)``, for user vector ``user_vecs[b]`` with ``items[b]``
        (scoring; the first layer's item half is the cached projection of :meth:`_item_half`)."""
        return self._top(self.first_user(user_vecs) + self._item_half(item_table, items), w)

    def grid_scores(self, user_vecs: torch.Tensor, item_table: torch.Tensor,
                    items: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """``grid(...) @ w`` ``(U, M)`` without the ``(U, M, width)`` layers in memory: blocks of
        :data:`GRID_USERS` users times :data:`GRID_ITEMS` items stay in cache (~3x faster on
        ML-20M's 26,744 items than whole rows, and memory no longer grows with the catalogue).

        The first layer of a block is one matrix product with its ReLU fused: each row is an
        item's embedding followed by a one-hot of the block's user, ``[e_i; onehot(u)]``, and
        the weight is ``[W_i | W_u u_1 + b ... W_u u_16 + b]``, so the product is ``W_i e_i +
        W_u u + b`` for every pair without a separate add and ReLU pass over the block (those
        two passes were 45% of the time; the rows are built once per catalogue, see
        :meth:`_pair_rows`). Later layers are products with fused ReLU too (oneDNN, where torch
        has it).

        With :attr:`score_dtype` bfloat16 (:func:`set_score_dtype`) the layers run in bfloat16
        (AMX / AVX512-BF16 matrix products where the CPU has them) and the last product, ``@
        w``, in float32, so the scores are float32 and do not tie more than they do."""
        hu = self.first_user(user_vecs)  # (U, width), the first layer's bias included
        low = self.score_dtype
        work = hu.dtype if low is None else low
        out = torch.empty(hu.shape[0], items.shape[0], dtype=torch.result_type(hu, w))
        chunks = self._pair_rows(item_table, items, work, min(GRID_USERS, hu.shape[0]))
        w_items = self.first_item.weight.to(work)  # (width, factors)
        rest = [(layer.weight.to(work),
                 None if layer.bias is None else layer.bias.to(work))
                for layer in self._linears()]
        w_out = w.to(out.dtype)
        users = torch.zeros(hu.shape[1], GRID_USERS, dtype=work)
        for s in range(0, hu.shape[0], GRID_USERS):
            block = hu[s : s + GRID_USERS]
            n = block.shape[0]
            users.zero_()
            users[:, :n] = block.T
            weight = torch.cat([w_items, users], dim=1)
            for c, rows in zip(range(0, items.shape[0], GRID_ITEMS), chunks, strict=True):
                m = min(GRID_ITEMS, items.shape[0] - c)
                x = linear_relu(rows[: n * m], weight, None)  # user major: the block's n users
                for layer_weight, bias in rest:
                    x = linear_relu(x, layer_weight, bias)
                out[s : s + n, c : c + m] = (x.to(out.dtype) @ w_out).view(n, m)
        return out

    def _pair_rows(self, item_table: torch.Tensor, items: torch.Tensor, dtype: torch.dtype,
                   users: int) -> list[torch.Tensor]:
        """The first-layer inputs of :meth:`grid_scores`: per chunk of :data:`GRID_ITEMS` of
        ``items``, ``(users * m, factors + GRID_USERS)`` rows ``[e_i; onehot(u)]``, user major
        (the first ``n * m`` rows serve a block of ``n`` users). They depend on neither the
        users nor the weights: for the whole catalogue in order (full ranking) they are built
        for :data:`GRID_USERS` users and kept until the item table changes (16 x items x
        (factors + 16) values: 68 MB in bfloat16 at ML-20M's 26,744 items and 64 factors)."""
        whole = (items.shape[0] == item_table.shape[0]
                 and bool(torch.equal(items, torch.arange(items.shape[0]))))
        if not whole:
            return self._build_pair_rows(item_table, items, dtype, users)
        with _ROWS_LOCK:  # full ranking may score on several threads: build them once
            cached = getattr(self, "_rows_cache", None)
            if (cached is None or cached[0] is not item_table
                    or cached[1] != item_table._version or cached[2] != dtype):
                chunks = self._build_pair_rows(item_table, items, dtype, GRID_USERS)
                cached = self._rows_cache = (item_table, item_table._version, dtype, chunks)
            return cached[3]

    @staticmethod
    def _build_pair_rows(item_table: torch.Tensor, items: torch.Tensor, dtype: torch.dtype,
                         users: int) -> list[torch.Tensor]:
        onehot = torch.eye(GRID_USERS, dtype=dtype)
        chunks = []
        for c in range(0, items.shape[0], GRID_ITEMS):
            e = nn.functional.embedding(items[c : c + GRID_ITEMS], item_table).to(dtype)
            m, f = e.shape
            rows = torch.empty(users, m, f + GRID_USERS, dtype=dtype)
            rows[:, :, :f] = e
            rows[:, :, f:] = onehot[:users, None, :]
            chunks.append(rows.view(users * m, f + GRID_USERS))
        return chunks

    def _item_half(self, item_table: torch.Tensor, items: torch.Tensor,
                   dtype: torch.dtype | None = None) -> torch.Tensor:
        """The first layer's item half for ``items`` (in ``dtype``; None: as computed). Scoring
        (eval mode, no gradients) keeps the whole table's projection, computed once, since it
        does not depend on the user."""
        if self.training or torch.is_grad_enabled():
            self._items_projected = None
            half = self._project(self.first_item, item_table, items)
            return half if dtype is None else half.to(dtype)
        cached = getattr(self, "_items_projected", None)
        if (cached is None or cached[0] is not item_table or cached[1] != item_table._version
                or cached[2] != dtype):
            projected = self.first_item(item_table)
            cached = (item_table, item_table._version, dtype,
                      projected if dtype is None else projected.to(dtype))
            self._items_projected = cached
        return nn.functional.embedding(items, cached[3])

    def _drop(self, x: torch.Tensor) -> tuple[torch.Tensor, float]:
        """``(x * mask, scale)``: dropout without its rescaling, which the caller applies."""
        if self.dropout > 0 and self.training:
            keep, scale = dropout_mask(x, self.dropout)
            return x * keep, scale
        return x, 1.0


def _fused_linear_relu(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
                       ) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "relu", [], "")


def _plain_linear_relu(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
                       ) -> torch.Tensor:
    return nn.functional.linear(x, weight, bias).relu_()


_LINEAR_RELU: dict[torch.dtype, object] = {}


def linear_relu(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
                ) -> torch.Tensor:
    """``relu(x @ weight.T + bias)`` for scoring (no gradients): one oneDNN product with the
    ReLU fused where this torch build has it (``torch.ops.mkldnn._linear_pointwise``, the op
    torch's own compiler emits on CPU; a second pass over the output less), else linear then
    ReLU. Checked once per dtype against the plain form."""
    kernel = _LINEAR_RELU.get(x.dtype)
    if kernel is None:
        kernel = _plain_linear_relu
        try:
            if torch.backends.mkldnn.is_available():
                probe = (torch.randn(8, 16).to(x.dtype), torch.randn(4, 16).to(x.dtype),
                         torch.randn(4).to(x.dtype))
                tol = 1e-2 if x.dtype == torch.bfloat16 else 1e-5
                if torch.allclose(_fused_linear_relu(*probe).float(),
                                  _plain_linear_relu(*probe).float(), rtol=tol, atol=tol):
                    kernel = _fused_linear_relu
        except (RuntimeError, AttributeError, NotImplementedError):
            pass
        _LINEAR_RELU[x.dtype] = kernel
    return kernel(x, weight, bias)  # type: ignore[operator]


def gather(table: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``table[idx]`` as an embedding lookup. A table marked by :func:`mark_sparse` gets a sparse
    gradient (only the rows looked up), which the lazy optimiser
    (:class:`movierec.training.optim.LazyAdam`) updates without touching the other rows."""
    return nn.functional.embedding(idx, table, sparse=bool(getattr(table, "sparse_grad", False)))


def mark_sparse(net: nn.Module, max_rows_touched: int, factor: int = 4) -> list[str]:
    """Mark the embedding tables of ``net`` with more than ``factor * max_rows_touched`` rows
    (the most rows one batch can look up) for sparse gradients; returns their names.

    A batch of ML-20M touches ~6,500 of 138,493 user rows: a dense gradient and a dense Adam
    step over the whole table cost ~20x the rows that changed. Tables a batch covers well
    (ml-100k, ML-1M) stay dense, so their training is unchanged."""
    marked = []
    for name, module in net.named_modules():
        if isinstance(module, nn.Embedding) and module.num_embeddings > factor * max_rows_touched:
            module.weight.sparse_grad = True  # type: ignore[attr-defined]  # read by LazyAdam
            marked.append(name)
    return marked


def dropout_mask(x: torch.Tensor, p: float) -> tuple[torch.Tensor, float]:
    """A dropout mask for ``x``: ``(keep, scale)`` with ``keep`` 0/1 in ``x``'s shape and dtype
    and ``scale = 1 / (1 - p')``, ``p'`` being ``p`` rounded to a multiple of 1/256 (``keep`` all
    ones and scale 1 when that is 0). The mask comes from random bytes: one 64-bit draw masks
    eight elements, about 3x faster than ``nn.functional.dropout`` on CPU, where the random draws
    dominate. Uses torch's global generator (seeded runs repeat)."""
    k = min(255, max(0, round(p * 256)))
    if k == 0:
        return torch.ones_like(x), 1.0
    n = x.numel()
    words = torch.randint(-(2**63), 2**63 - 1, ((n + 7) // 8,), dtype=torch.int64,
                          device=x.device)
    keep = (words.view(torch.uint8)[:n].view(x.shape) >= k).to(x.dtype)
    return keep, 256.0 / (256 - k)


def fast_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """``nn.functional.dropout(x, p)`` with the mask of :func:`dropout_mask`."""
    if min(255, max(0, round(p * 256))) == 0:
        return x
    keep, scale = dropout_mask(x, p)
    return x * keep * scale


def _embedding(n: int, dim: int, std: float) -> nn.Embedding:
    emb = nn.Embedding(n, dim)
    nn.init.normal_(emb.weight, std=std)
    return emb


class UserHistory(nn.Module):
    """The pooled history part of user vectors (SVD++ / FISM style, ``user_history=True``):
    user ``u``'s vector gains ``|N(u)| ** -0.5 * sum(y_j for j in N(u))`` over the items ``N(u)``
    they interacted with in training, so a user with few interactions is described by what they
    picked rather than by a barely trained free vector. The interactions are set with
    :meth:`set_interactions` (buffers, not saved: the Recommender rebuilds them from its train
    interactions)."""

    indices: torch.Tensor  # buffers: every user's items, end to end (int64)
    offsets: torch.Tensor  # where each user's items start in ``indices`` (int64, n_users)
    weights: torch.Tensor  # each entry's ``|N(u)| ** -0.5`` (float32)

    def __init__(self, n_users: int, n_items: int, dim: int, init_std: float):
        super().__init__()
        self.n_users = n_users
        self.items = _embedding(n_items, dim, init_std)
        self.register_buffer("indices", torch.zeros(0, dtype=torch.int64), persistent=False)
        self.register_buffer("offsets", torch.zeros(n_users, dtype=torch.int64), persistent=False)
        self.register_buffer("weights", torch.zeros(0), persistent=False)

    def set_interactions(self, indptr, indices) -> None:
        """Users' items as CSR arrays (``indptr`` of length ``n_users + 1``, ``indices``)."""
        indptr = torch.as_tensor(indptr, dtype=torch.int64)
        counts = indptr[1:] - indptr[:-1]
        self.indices = torch.as_tensor(indices, dtype=torch.int64).to(self.offsets.device)
        self.offsets = indptr[:-1].to(self.offsets.device)
        norm = counts.clamp_min(1).double().rsqrt().float()
        self.weights = torch.repeat_interleave(norm, counts).to(self.offsets.device)

    def table(self) -> torch.Tensor:
        """``(n_users, dim)`` pooled history vectors (zero for users without interactions)."""
        return nn.functional.embedding_bag(self.indices, self.items.weight, self.offsets,
                                           mode="sum", per_sample_weights=self.weights)

    def pooled(self, items: torch.Tensor) -> torch.Tensor:
        """``(dim,)`` pooled vector of someone who picked ``items``."""
        return self.items(items).sum(dim=0) / max(1, len(items)) ** 0.5


class _Scorer(nn.Module):
    """Three views of one network's logits, each built from ``_parts`` (logits without the
    output bias, given the output weights ``w``):

    * ``forward(u, i)``: pairs, ``(B,)``;
    * ``forward_groups(u, items)``: user ``u[g]`` with items ``items[g, :]``, ``(G, m)`` (a
      training epoch is laid out this way: each observed item followed by its negatives);
    * ``score_grid(user_vecs, items)``: every user vector with every item, ``(U, M)``.
    """

    out: nn.Linear

    def _pairs(self, u: torch.Tensor, i: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _groups(self, u: torch.Tensor, items: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _grid(self, user_vecs: torch.Tensor, items: torch.Tensor, w: torch.Tensor
              ) -> torch.Tensor:
        raise NotImplementedError

    def _pair_vecs(self, user_vecs: torch.Tensor, items: torch.Tensor, w: torch.Tensor
                   ) -> torch.Tensor:
        raise NotImplementedError

    def _add_item_bias(self, n_items: int, enabled: bool) -> None:
        """An optional learned bias per item (``item_bias=True``; zero at start): popularity
        needs no embedding dimension, and L2 on the embeddings does not shrink it."""
        self.item_bias = nn.Embedding(n_items, 1) if enabled else None
        if self.item_bias is not None:
            nn.init.zeros_(self.item_bias.weight)

    def _bias(self, items: torch.Tensor) -> torch.Tensor | float:
        if self.item_bias is None:
            return 0.0
        return nn.functional.embedding(items, self.item_bias.weight)[..., 0]

    def forward(self, u: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        return self._pairs(u, i, self.out.weight[0]) + self.out.bias + self._bias(i)

    def forward_groups(self, u: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self._groups(u, items, self.out.weight[0]) + self.out.bias + self._bias(items)

    def score_grid(self, user_vecs: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self._grid(user_vecs, items, self.out.weight[0]) + self.out.bias + self._bias(items)

    def score_pairs(self, user_vecs: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """``(B,)`` logits of user vector ``user_vecs[b]`` (from ``user_vectors``) with item
        ``items[b]``: :meth:`score_grid`'s numbers pair by pair, for a few items per user."""
        return (self._pair_vecs(user_vecs, items, self.out.weight[0]) + self.out.bias
                + self._bias(items))


class _FreeUsers(_Scorer):
    """User vectors of GMF and MLP: a free embedding per user (+ the pooled history)."""

    user: nn.Embedding
    history: UserHistory | None

    def user_table(self) -> torch.Tensor:
        """``(n_users, factors)`` user vectors: free embeddings (+ pooled history)."""
        if self.history is None:
            return self.user.weight
        return self.user.weight + self.history.table()

    def new_user_vector(self, items: torch.Tensor) -> torch.Tensor:
        """``(factors,)`` start of a new user's vector: the mean free embedding (+ the pooled
        history of ``items``)."""
        start = self.user.weight.mean(dim=0)
        return start if self.history is None else start + self.history.pooled(items)

    def _users(self, u: torch.Tensor) -> torch.Tensor:
        return gather(self.user_table(), u)

    def user_vectors(self, u: torch.Tensor) -> torch.Tensor:
        """``(U, factors)``: what :meth:`score_grid` needs to know about users ``u``."""
        return self._users(u)


class GMF(_FreeUsers):
    """Generalised matrix factorisation: ``logit = h . (p_u * q_i) + b``."""

    def __init__(self, n_users: int, n_items: int, factors: int = 32, init_std: float = 0.01,
                 item_bias: bool = False, user_history: bool = False):
        super().__init__()
        self.user = _embedding(n_users, factors, init_std)
        self.item = _embedding(n_items, factors, init_std)
        self.out = nn.Linear(factors, 1)
        nn.init.normal_(self.out.weight, mean=1.0 / factors**0.5, std=0.01)
        nn.init.zeros_(self.out.bias)
        self._add_item_bias(n_items, item_bias)
        self.history = UserHistory(n_users, n_items, factors, init_std) if user_history else None

    def _pairs(self, u, i, w):
        return (self._users(u) * gather(self.item.weight, i)) @ w

    def _groups(self, u, items, w):
        return (gather(self.item.weight, items) * (self._users(u) * w)[:, None, :]).sum(dim=-1)

    def _grid(self, user_vecs, items, w):
        return (user_vecs * w) @ gather(self.item.weight, items).T

    def _pair_vecs(self, user_vecs, items, w):
        return (gather(self.item.weight, items) * (user_vecs * w)).sum(dim=-1)

    def item_tables(self) -> list[torch.Tensor]:
        return [self.item.weight]


class MLP(_FreeUsers):
    """Multi-layer perceptron over concatenated user and item embeddings."""

    def __init__(
        self,
        n_users: int,
        n_items: int,
        mlp_factors: int = 32,
        layers: list[int] | tuple[int, ...] = (64, 32, 16, 8),
        dropout: float = 0.0,
        init_std: float = 0.01,
        item_bias: bool = False,
        user_history: bool = False,
    ):
        super().__init__()
        self.user = _embedding(n_users, mlp_factors, init_std)
        self.item = _embedding(n_items, mlp_factors, init_std)
        self.tower = _Tower(mlp_factors, list(layers), dropout)
        self.out = nn.Linear(self.tower.out_dim, 1)
        self._add_item_bias(n_items, item_bias)
        self.history = (UserHistory(n_users, n_items, mlp_factors, init_std) if user_history
                        else None)

    def _pairs(self, u, i, w):
        return self.tower(self.user_table(), self.item.weight, u, i, w)

    def _groups(self, u, items, w):
        return self.tower.groups(self.user_table(), self.item.weight, u, items, w)

    def _grid(self, user_vecs, items, w):
        if torch.is_grad_enabled() or self.training:
            return self.tower.grid(user_vecs, self.item.weight, items, w)
        return self.tower.grid_scores(user_vecs, self.item.weight, items, w)

    def _pair_vecs(self, user_vecs, items, w):
        return self.tower.pair_scores(user_vecs, self.item.weight, items, w)

    def item_tables(self) -> list[torch.Tensor]:
        return [self.item.weight]



class NeuMF(_Scorer):
    """Neural matrix factorisation: a GMF path and an MLP path fused by one output layer over
    their concatenated last layers (computed as the sum of the two halves' dot products)."""

    def __init__(
        self,
        n_users: int,
        n_items: int,
        factors: int = 32,
        mlp_factors: int = 32,
        layers: list[int] | tuple[int, ...] = (64, 32, 16, 8),
        dropout: float = 0.0,
        init_std: float = 0.01,
        item_bias: bool = False,
        user_history: bool = False,
    ):
        super().__init__()
        # the two paths have no item biases of their own; NeuMF has one over both
        self.gmf = GMF(n_users, n_items, factors, init_std, user_history=user_history)
        self.mlp = MLP(n_users, n_items, mlp_factors, layers, dropout, init_std,
                       user_history=user_history)
        del self.gmf.out, self.mlp.out  # NeuMF has one output over both paths
        self.factors = factors
        self.out = nn.Linear(factors + self.mlp.tower.out_dim, 1)
        self._add_item_bias(n_items, item_bias)

    def _pairs(self, u, i, w):
        f = self.factors
        return self.gmf._pairs(u, i, w[:f]) + self.mlp._pairs(u, i, w[f:])

    def _groups(self, u, items, w):
        f = self.factors
        return self.gmf._groups(u, items, w[:f]) + self.mlp._groups(u, items, w[f:])

    def _grid(self, user_vecs, items, w):
        f = self.factors
        return (self.gmf._grid(user_vecs[:, :f], items, w[:f])
                + self.mlp._grid(user_vecs[:, f:], items, w[f:]))

    def _pair_vecs(self, user_vecs, items, w):
        f = self.factors
        return (self.gmf._pair_vecs(user_vecs[:, :f], items, w[:f])
                + self.mlp._pair_vecs(user_vecs[:, f:], items, w[f:]))

    def item_tables(self) -> list[torch.Tensor]:
        return self.gmf.item_tables() + self.mlp.item_tables()

    def user_vectors(self, u: torch.Tensor) -> torch.Tensor:
        """``(U, factors + mlp_factors)``: the GMF then the MLP user vector."""
        return torch.cat([self.gmf.user_vectors(u), self.mlp.user_vectors(u)], dim=1)

    def new_user_vector(self, items: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.gmf.new_user_vector(items), self.mlp.new_user_vector(items)])


def set_score_dtype(net: nn.Module, dtype: torch.dtype | None) -> None:
    """Score every (user, item) grid of ``net``'s MLP towers with layers in ``dtype``
    (``torch.bfloat16``; None: the weights' float32). Training is not affected: it uses the
    precision of its autocast."""
    for module in net.modules():
        if isinstance(module, _Tower):
            module.score_dtype = dtype


def set_interactions(net: nn.Module, indptr, indices) -> None:
    """Give every :class:`UserHistory` inside ``net`` the users' interactions (CSR arrays)."""
    for module in net.modules():
        if isinstance(module, UserHistory):
            module.set_interactions(indptr, indices)


@torch.no_grad()
def init_neumf_from(neumf: NeuMF, gmf: GMF, mlp: MLP, alpha: float = 0.5) -> NeuMF:
    """Initialise ``neumf`` from pre-trained ``gmf`` and ``mlp`` (the paper's pre-training).

    Embeddings and tower layers are copied; the output layer becomes
    ``[alpha * h_gmf, (1 - alpha) * h_mlp]`` with bias ``alpha * b_gmf + (1 - alpha) * b_mlp``
    (item biases, where present, mix the same way).
    Shapes must agree (same sizes of embeddings and tower). Returns ``neumf``.
    """
    top = ("out.", "item_bias.")
    gmf_state = {k: v for k, v in gmf.state_dict().items() if not k.startswith(top)}
    mlp_state = {k: v for k, v in mlp.state_dict().items() if not k.startswith(top)}
    neumf.gmf.load_state_dict(gmf_state)
    neumf.mlp.load_state_dict(mlp_state)
    neumf.out.weight.copy_(
        torch.cat([alpha * gmf.out.weight, (1.0 - alpha) * mlp.out.weight], dim=1)
    )
    neumf.out.bias.copy_(alpha * gmf.out.bias + (1.0 - alpha) * mlp.out.bias)
    if neumf.item_bias is not None:
        neumf.item_bias.weight.zero_()
        for part, weight in ((gmf, alpha), (mlp, 1.0 - alpha)):
            if part.item_bias is not None:
                neumf.item_bias.weight.add_(weight * part.item_bias.weight)
    return neumf
