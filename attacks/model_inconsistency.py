"""``model_inconsistency``: an active server sends every client but the target a model whose updates vanish.

Pasquini, Francati, Ateniese, "Eluding Secure Aggregation in Federated Learning via
Model Inconsistency" (CCS 2022). Secure aggregation hides a client's update among the
others' only if the others' updates are there. The server sends the target the real
model and every other client a *dead* one (:func:`dead_parameters`: the first hidden
layer's weights 0 and biases far below 0, so every unit of a ReLU-like activation is off
for every input): their gradients vanish on every coordinate but the output layer's
bias, which cross-entropy always moves (by ``p - y``). The secure aggregate then holds
the target's update, exactly as the protocol encoded it, on every other coordinate, at
any number of clients.

:func:`leakage.quantify.model_inconsistency_round` plays one FedSGD/FedAvg round for real: each client
trains on its own data from the model it was sent (the project's local training), the
updates go through the real secure aggregation protocol
(:func:`defenses.secure_aggregation.run_protocol`, fixed-point in ``Z_(2^k)``), and the
server multiplies the aggregate back into a sum. With ``ClientChecks(bind_model=True)``
each client binds its keys to the digest of the model it received: the clients holding
the dead model cannot decrypt the target's shares nor it theirs, every client refuses,
and the round aborts before any masked input is sent. Model vetting
(``announced_architecture``) does not catch it: the dead model has the real architecture.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from leakage.errors import ConfigError
from leakage.models import ParameterLayout

__all__ = ["dead_parameters"]

_DEAD_BIAS = -1.0e4
_RELU_LIKE = (nn.ReLU, nn.ReLU6, nn.Sigmoid, nn.Hardtanh, nn.LeakyReLU)


def dead_parameters(model: nn.Module, params: Tensor) -> Tensor:
    """Return ``params`` with the first layer's weights 0 and biases -1e4: its units are off for every input.

    The model must start (after any ``Flatten``) with a ``Linear`` layer with a bias
    followed by a ReLU-like activation (ReLU, sigmoid, ...), whose gradient vanishes there.

    Raises:
        ConfigError: another architecture.

    >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    >>> flat = torch.cat([p.detach().reshape(-1) for p in net.parameters()])
    >>> dead = dead_parameters(net, flat)
    >>> dead[:12].abs().max().item(), dead[12:15].tolist()
    (0.0, [-10000.0, -10000.0, -10000.0])
    """
    layers = [m for m in model.modules() if not isinstance(m, (nn.Sequential, nn.Flatten)) and m is not model]
    first = next((i for i, m in enumerate(layers) if any(True for _ in m.parameters(recurse=False))), None)
    if first is None or not isinstance(layers[first], nn.Linear) or layers[first].bias is None or first + 1 >= len(
            layers) or not isinstance(layers[first + 1], _RELU_LIKE):
        raise ConfigError("model_inconsistency needs a model whose first layer is a Linear with a bias followed by "
                          "a ReLU-like activation (ReLU, ReLU6, LeakyReLU, Hardtanh, Sigmoid)")
    layer = layers[first]
    assert isinstance(layer, nn.Linear)
    names = {id(p): name for name, p in model.named_parameters()}
    layout = ParameterLayout.of(model)
    named = {name: value.clone() for name, value in layout.unflatten(params.detach().clone()).items()}
    named[names[id(layer.weight)]].zero_()
    assert layer.bias is not None
    named[names[id(layer.bias)]].fill_(_DEAD_BIAS)
    return torch.cat([named[name].reshape(-1) for name in layout.names])
