"""The torch networks of the autoencoder recommenders (:mod:`movierec.models.autoencoders`).

Both read a user as a binary multi-hot row ``x`` (``float32 (batch, n_items)``) and return one
logit per item; the multinomial log-likelihood of the row is ``sum(log_softmax(logits) * x)``.

* :class:`MultVAENet`: Liang, Krishnan, Hoffman & Jebara (WWW 2018), as in their code
  (github.com/dawenl/vae_cf): L2-normalised input, dropout, ``tanh`` MLP encoder
  ``[n_items -> hidden -> 2 * latent]`` (mean and log-variance), symmetric decoder; loss
  ``-loglik + beta * KL(q || N(0, I))`` with ``beta`` annealed by :func:`kl_beta`.
* :class:`RecVAENet`: Shenbin, Alekseev, Tutubalina, Malykh & Nikolenko (WSDM 2020), as in their
  code (github.com/ilya-shenbin/RecVAE): a 5-layer densely connected encoder (swish, layer norm),
  a linear decoder and the composite prior: a mixture of ``N(0, I)``, the posterior of the
  *previous* encoder (frozen; :meth:`RecVAENet.update_prior` copies the encoder into it) and a
  wide ``N(0, e^10 I)``, weights 3/20, 3/4, 1/10. The KL weight is ``gamma * |x|`` per user.

Torch is imported at the top of this module: it lives in ``training`` (beside the NCF networks)
so the model registry, which imports every module of ``movierec.models``, never loads it.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn
from torch.nn import functional as F

PRIOR_WEIGHTS = (3 / 20, 3 / 4, 1 / 10)
"""RecVAE's composite prior: standard normal, old posterior, wide normal (their code)."""
WIDE_LOGVAR = 10.0
"""Log-variance of the composite prior's wide component (their code)."""


def kl_beta(step: int, beta_max: float, anneal_steps: int) -> float:
    """Mult-VAE's KL weight after ``step`` updates: ``min(beta_max, step / anneal_steps)``
    (linear annealing from 0, capped; the paper's ``anneal_cap`` / ``total_anneal_steps``);
    ``anneal_steps == 0`` means no annealing (``beta_max`` from the first update)."""
    if anneal_steps <= 0:
        return float(beta_max)
    return float(min(beta_max, step / anneal_steps))


def normalise_rows(x: torch.Tensor) -> torch.Tensor:
    """Each row divided by its L2 norm (an all-zero row stays zero)."""
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)


def multinomial_loglik(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``(batch,)`` multinomial log-likelihood of each row ``x`` under ``softmax(logits)``."""
    return (F.log_softmax(logits, dim=1) * x).sum(dim=1)


def log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Element-wise log-density of ``N(mu, exp(logvar))`` at ``z``."""
    return -0.5 * (logvar + math.log(2 * math.pi) + (z - mu).pow(2) / logvar.exp())


class MultVAENet(nn.Module):
    """Mult-VAE: ``encode(x) -> (mu, logvar)``, ``decode(z) -> logits``."""

    def __init__(self, n_items: int, hidden: int, latent: int, dropout: float):
        super().__init__()
        self.dropout = dropout
        self.latent = latent
        self.enc_hidden = nn.Linear(n_items, hidden)
        self.enc_out = nn.Linear(hidden, 2 * latent)
        self.dec_hidden = nn.Linear(latent, hidden)
        self.dec_out = nn.Linear(hidden, n_items)
        for layer in (self.enc_hidden, self.enc_out, self.dec_hidden, self.dec_out):
            nn.init.xavier_uniform_(layer.weight)  # their code: Xavier weights, N(0, 0.001) bias
            nn.init.normal_(layer.bias, std=0.001)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.dropout(normalise_rows(x), p=self.dropout, training=self.training)
        h = self.enc_out(torch.tanh(self.enc_hidden(h)))
        return h[:, : self.latent], h[:, self.latent :]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.dec_out(torch.tanh(self.dec_hidden(z)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of every item; the posterior mean is decoded (no sampling) in eval mode."""
        mu, logvar = self.encode(x)
        return self.decode(_sample(mu, logvar) if self.training else mu)

    def loss(self, x: torch.Tensor, beta: float) -> tuple[torch.Tensor, dict[str, float]]:
        """``mean(-loglik) + beta * mean(KL(q(z|x) || N(0, I)))`` over the batch."""
        mu, logvar = self.encode(x)
        logits = self.decode(_sample(mu, logvar))
        nll = -multinomial_loglik(logits, x).mean()
        kl = (0.5 * (-logvar + logvar.exp() + mu.pow(2) - 1)).sum(dim=1).mean()
        return nll + beta * kl, {"nll": float(nll.detach()), "kl": float(kl.detach())}

    def item_table(self) -> torch.Tensor:
        """``(n_items, hidden)``: the decoder's output weights, one row per item."""
        return self.dec_out.weight


class RecVAEEncoder(nn.Module):
    """RecVAE's encoder: five densely connected swish + layer-norm layers."""

    def __init__(self, n_items: int, hidden: int, latent: int, eps: float = 0.1):
        super().__init__()
        self.fcs = nn.ModuleList([nn.Linear(n_items, hidden)] +
                                 [nn.Linear(hidden, hidden) for _ in range(4)])
        self.lns = nn.ModuleList([nn.LayerNorm(hidden, eps=eps) for _ in range(5)])
        self.mu = nn.Linear(hidden, latent)
        self.logvar = nn.Linear(hidden, latent)

    def forward(self, x: torch.Tensor, dropout: float) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.dropout(normalise_rows(x), p=dropout, training=self.training)
        outs: list[torch.Tensor] = []
        for fc, ln in zip(self.fcs, self.lns, strict=True):
            pre = fc(h) + sum(outs) if outs else fc(h)
            h = ln(F.silu(pre))  # swish
            outs.append(h)
        return self.mu(h), self.logvar(h)


class RecVAENet(nn.Module):
    """RecVAE: encoder, linear decoder and the composite prior's frozen old encoder.

    The old encoder is held outside the module's registered children: it is not trained, not in
    ``state_dict`` (an artifact holds only what scoring needs) and starts as a copy of the
    encoder; :meth:`update_prior` copies the current encoder into it.
    """

    def __init__(self, n_items: int, hidden: int, latent: int, dropout: float):
        super().__init__()
        self.dropout = dropout
        self.encoder = RecVAEEncoder(n_items, hidden, latent)
        self.decoder = nn.Linear(latent, n_items)
        self._old = [copy.deepcopy(self.encoder).requires_grad_(False)]

    @property
    def old_encoder(self) -> RecVAEEncoder:
        return self._old[0]

    def update_prior(self) -> None:
        """The composite prior now uses a frozen copy of the current encoder."""
        self._old[0] = copy.deepcopy(self.encoder).requires_grad_(False).eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of every item; the posterior mean is decoded in eval mode."""
        mu, logvar = self.encoder(x, self.dropout if self.training else 0.0)
        return self.decoder(_sample(mu, logvar) if self.training else mu)

    def log_prior(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Element-wise log-density of the composite prior at ``z`` for the users ``x``."""
        old = self.old_encoder.to(x.device).eval()
        with torch.no_grad():
            post_mu, post_logvar = old(x, 0.0)
        zeros = torch.zeros_like(z)
        parts = [log_normal(z, zeros, zeros), log_normal(z, post_mu, post_logvar),
                 log_normal(z, zeros, torch.full_like(z, WIDE_LOGVAR))]
        weighted = [p + math.log(w) for p, w in zip(parts, PRIOR_WEIGHTS, strict=True)]
        return torch.logsumexp(torch.stack(weighted, dim=-1), dim=-1)

    def loss(self, x: torch.Tensor, dropout: float, gamma: float,
             beta: float | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """Negative ELBO with the composite prior; the KL weight is ``gamma * |x|`` per user, or
        ``beta`` for everyone when given (their ``--beta``)."""
        mu, logvar = self.encoder(x, dropout)
        z = _sample(mu, logvar)
        loglik = multinomial_loglik(self.decoder(z), x)
        kl = (log_normal(z, mu, logvar) - self.log_prior(x, z)).sum(dim=1)
        weight = x.sum(dim=1) * gamma if beta is None else torch.full_like(kl, beta)
        loss = -(loglik - kl * weight).mean()
        return loss, {"nll": float(-loglik.detach().mean()),
                      "kl": float(kl.detach().mean())}

    def item_table(self) -> torch.Tensor:
        """``(n_items, latent)``: the decoder's weights, one row per item."""
        return self.decoder.weight


def _sample(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
