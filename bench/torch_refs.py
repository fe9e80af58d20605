"""The PyTorch side of each benchmark: the same model, batch, dtype and loss math,
started from the same weights (copied from graphspec, layouts converted), trained with
``torch.optim.Adam`` at its defaults except Keras' epsilon (1e-7)."""
from __future__ import annotations

import numpy as np

EPSILON = 1e-7


def load_torch(threads: int):
    """torch with ``threads`` intra-op threads, or None if it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch


def keras_cce(torch, probs, target):
    """Keras' categorical crossentropy on probabilities (renormalise, clip, -sum t log q),
    averaged over the batch: the loss graphspec's trainer computes."""
    q = probs / probs.sum(dim=-1, keepdim=True)
    return -(target * torch.log(q.clamp(EPSILON, 1 - EPSILON))).sum(dim=-1).mean()


def _set(torch, param, array) -> None:
    """Copy a numpy array into an existing parameter (shapes must agree exactly)."""
    value = torch.from_numpy(np.ascontiguousarray(array))
    if tuple(value.shape) != tuple(param.shape):
        raise ValueError(f"weight of shape {tuple(value.shape)} for a parameter of shape "
                         f"{tuple(param.shape)}")
    with torch.no_grad():
        param.copy_(value)


class _Step:
    """``train(x, y)`` = zero_grad, forward, loss, backward, Adam step, ``loss.item()``."""

    def __init__(self, torch, net, loss_fn):
        self.torch, self.net, self.loss_fn = torch, net, loss_fn
        self.opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=EPSILON)

    def train(self, x, y) -> float:
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.net(x), y)
        loss.backward()
        self.opt.step()
        return loss.item()

    def predict(self, x):
        with self.torch.inference_mode():
            return self.net(x)


def mlp(torch, weights):
    """``weights``: [(kernel (in, out), bias)], Keras layout; ReLU between, softmax last."""
    nn = torch.nn
    layers = []
    for i, (kernel, bias) in enumerate(weights):
        linear = nn.Linear(*kernel.shape)
        _set(torch, linear.weight, kernel.T)
        _set(torch, linear.bias, bias)
        layers.append(linear)
        layers.append(nn.ReLU() if i < len(weights) - 1 else nn.Softmax(dim=-1))
    net = nn.Sequential(*layers)
    return _Step(torch, net, lambda p, y: keras_cce(torch, p, y))


def cnn(torch, w):
    """Conv(32,3,relu)-MaxPool-Conv(64,3,relu)-MaxPool-Flatten-Dense(10, softmax), NCHW.

    ``w`` maps graphspec keys to arrays; conv kernels go HWIO -> OIHW and the dense
    kernel's rows are permuted from Keras' (h, w, c) flatten order to torch's (c, h, w).
    """
    nn = torch.nn
    conv1, conv2 = nn.Conv2d(1, 32, 3), nn.Conv2d(32, 64, 3)
    _set(torch, conv1.weight, w["conv_1/kernel"].transpose(3, 2, 0, 1))
    _set(torch, conv1.bias, w["conv_1/bias"])
    _set(torch, conv2.weight, w["conv_2/kernel"].transpose(3, 2, 0, 1))
    _set(torch, conv2.bias, w["conv_2/bias"])
    dense = nn.Linear(1600, 10)
    kernel = w["predictions/kernel"].reshape(5, 5, 64, 10).transpose(2, 0, 1, 3)
    _set(torch, dense.weight, kernel.reshape(1600, 10).T)
    _set(torch, dense.bias, w["predictions/bias"])
    net = nn.Sequential(conv1, nn.ReLU(), nn.MaxPool2d(2), conv2, nn.ReLU(), nn.MaxPool2d(2),
                        nn.Flatten(), dense, nn.Softmax(dim=-1))
    return _Step(torch, net, lambda p, y: keras_cce(torch, p, y))


def lstm(torch, w, units: int):
    """nn.LSTM (gate order i, f, g, o = Keras' i, f, c, o) on the last step -> Linear(1),
    mean squared error. Keras' single bias goes to ``bias_ih``; ``bias_hh`` is zero."""
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            kernel = w["lstm/kernel"]
            self.lstm = nn.LSTM(kernel.shape[0], units, batch_first=True)
            _set(torch, self.lstm.weight_ih_l0, kernel.T)
            _set(torch, self.lstm.weight_hh_l0, w["lstm/recurrent_kernel"].T)
            _set(torch, self.lstm.bias_ih_l0, w["lstm/bias"])
            _set(torch, self.lstm.bias_hh_l0, np.zeros_like(w["lstm/bias"]))
            self.head = nn.Linear(units, 1)
            _set(torch, self.head.weight, w["head/kernel"].T)
            _set(torch, self.head.bias, w["head/bias"])

        def forward(self, x):
            out, _ = self.lstm(x)
            return self.head(out[:, -1])

    return _Step(torch, Net(), lambda p, y: ((p - y) ** 2).mean())


def chain(torch, weights):
    nn = torch.nn
    layers = []
    for kernel, bias in weights:
        linear = nn.Linear(*kernel.shape)
        _set(torch, linear.weight, kernel.T)
        _set(torch, linear.bias, bias)
        layers += [linear, nn.ReLU()]
    return _Step(torch, nn.Sequential(*layers), None)
