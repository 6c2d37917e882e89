"""A network's weights as one flat ``float32`` vector: how torch models store them in artifacts.

The vector holds every parameter and buffer of ``net.state_dict()``, in that order; the model's
hyper-parameters rebuild a network of the same shape to load it back.
"""

from __future__ import annotations

import numpy as np
import torch

from movierec.errors import ModelError


def flat_weights(net) -> np.ndarray:
    """``float32``: the network's parameters and buffers, flat, in ``state_dict`` order."""
    with torch.no_grad():
        parts = [t.detach().float().cpu().reshape(-1) for t in net.state_dict().values()]
        return torch.cat(parts).numpy().astype(np.float32, copy=False)


def load_flat(net, flat: np.ndarray | torch.Tensor) -> None:
    """Load :func:`flat_weights`' vector back into a network of the same shape;
    :class:`ModelError` when its length does not match the network."""
    if isinstance(flat, np.ndarray):
        flat = torch.from_numpy(np.ascontiguousarray(flat))
    state = net.state_dict()
    total = sum(int(t.numel()) for t in state.values())
    if flat.numel() != total:
        raise ModelError(f"weights_ holds {flat.numel()} numbers but the network needs {total}")
    new, pos = {}, 0
    for key, t in state.items():
        new[key] = flat[pos : pos + t.numel()].view(t.shape).to(t.dtype).clone()
        pos += t.numel()
    with torch.no_grad():
        net.load_state_dict(new)


def cached_network(model, make_net):
    """``model``'s trained network (eval mode), built by ``make_net(model.n_items_)`` from its
    flat ``weights_`` once and cached on the model until ``weights_`` is replaced. The one home of
    this for the models that store a torch network as :func:`flat_weights` (sequential,
    autoencoders)."""
    cached = getattr(model, "_net_cache", None)
    if cached is not None and cached[0] is model.weights_:
        return cached[1]
    net = make_net(model.n_items_)
    load_flat(net, model.weights_)
    net.eval()
    model._net_cache = (model.weights_, net)
    return net
