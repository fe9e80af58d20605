"""Hand-written numpy programs of the benchmarked models: the floor graphspec is held to.

No graph, no tape, no allocation in the steady state: every buffer is made once and
reused, every update is in place (``out=``). Same math as graphspec's path (Keras'
softmax + categorical crossentropy, Keras' Adam), same dtype (float32).
"""
from __future__ import annotations

import math

import numpy as np

EPSILON = 1e-7


class Adam:
    """Keras' Adam on a list of arrays, in place, with one scratch buffer per array."""

    def __init__(self, params, lr=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
        self.params = params
        self.lr, self.b1, self.b2, self.eps = lr, beta_1, beta_2, epsilon
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.tmp = [np.empty_like(p) for p in params]
        self.t = 0

    def step(self, grads) -> None:
        self.t += 1
        b1, b2 = self.b1, self.b2
        alpha = self.lr * math.sqrt(1 - b2 ** self.t) / (1 - b1 ** self.t)
        for w, g, m, v, tmp in zip(self.params, grads, self.m, self.v, self.tmp):
            # m += (g - m) * (1 - b1)
            np.subtract(g, m, out=tmp)
            tmp *= 1 - b1
            m += tmp
            # v += (g * g - v) * (1 - b2)
            np.multiply(g, g, out=tmp)
            tmp -= v
            tmp *= 1 - b2
            v += tmp
            # w -= alpha * m / (sqrt(v) + eps)
            np.sqrt(v, out=tmp)
            tmp += self.eps
            np.divide(m, tmp, out=tmp)
            tmp *= alpha
            w -= tmp


class MLP:
    """Dense layers with ReLU, softmax output, Keras categorical crossentropy, Adam."""

    def __init__(self, weights, batch: int, lr=1e-3):
        """``weights``: [(kernel, bias), ...] float32 arrays (copied)."""
        self.W = [np.array(k, copy=True) for k, _ in weights]
        self.b = [np.array(b, copy=True) for _, b in weights]
        dtype = self.W[0].dtype
        self.z = [np.empty((batch, w.shape[1]), dtype) for w in self.W]   # activations
        self.dz = [np.empty((batch, w.shape[1]), dtype) for w in self.W]  # their grads
        self.gW = [np.empty_like(w) for w in self.W]
        self.gb = [np.empty_like(b) for b in self.b]
        self.mask = [np.empty((batch, w.shape[1]), bool) for w in self.W]
        self.row = np.empty((batch, 1), dtype)
        self.opt = Adam(self.W + self.b, lr=lr)

    def forward(self, x) -> np.ndarray:
        h = x
        last = len(self.W) - 1
        for i, (w, b, z) in enumerate(zip(self.W, self.b, self.z)):
            np.matmul(h, w, out=z)
            z += b
            if i < last:
                np.maximum(z, 0, out=z)
            h = z
        # softmax in place
        p, row = self.z[last], self.row
        np.max(p, axis=1, keepdims=True, out=row)
        p -= row
        np.exp(p, out=p)
        np.sum(p, axis=1, keepdims=True, out=row)
        p /= row
        return p

    def step(self, x, y) -> float:
        p = self.forward(x)
        batch = x.shape[0]
        last = len(self.W) - 1
        # Keras CCE on probabilities: -sum(t * log(clip(p, eps, 1 - eps))) / batch
        d = self.dz[last]
        np.clip(p, EPSILON, 1 - EPSILON, out=d)
        np.log(d, out=d)
        d *= y
        loss = -float(d.sum()) / batch
        # d loss / d logits through softmax (p inside the clip range): (p - y) / batch
        np.subtract(p, y, out=d)
        d *= 1.0 / batch
        for i in range(last, -1, -1):
            h = x if i == 0 else self.z[i - 1]
            np.matmul(h.T, self.dz[i], out=self.gW[i])
            np.sum(self.dz[i], axis=0, out=self.gb[i])
            if i > 0:
                prev = self.dz[i - 1]
                np.matmul(self.dz[i], self.W[i].T, out=prev)
                np.greater(self.z[i - 1], 0, out=self.mask[i - 1])
                prev *= self.mask[i - 1]
        self.opt.step(self.gW + self.gb)
        return loss

    def predict(self, x) -> np.ndarray:
        return self.forward(x)

    def gemms(self, x) -> None:
        """The matrix products of :meth:`step` alone, same operands and layouts."""
        h = x
        for w, z in zip(self.W, self.z):
            np.matmul(h, w, out=z)
            h = z
        for i in range(len(self.W) - 1, -1, -1):
            h = x if i == 0 else self.z[i - 1]
            np.matmul(h.T, self.dz[i], out=self.gW[i])
            if i > 0:
                np.matmul(self.dz[i], self.W[i].T, out=self.dz[i - 1])

    def forward_gemms(self, x) -> None:
        h = x
        for w, z in zip(self.W, self.z):
            np.matmul(h, w, out=z)
            h = z


class Chain:
    """``n`` Dense(units, relu) layers applied to one sample: the per-layer floor."""

    def __init__(self, weights):
        self.weights = [(np.array(k), np.array(b)) for k, b in weights]

    def predict(self, x) -> np.ndarray:
        h = x
        for w, b in self.weights:
            h = h @ w
            h += b
            np.maximum(h, 0, out=h)
        return h


class GemmFloor:
    """Only the matrix products of a step, into preallocated outputs.

    ``products`` lists ``(m, k, n, layout)``: an ``(m, k) @ (k, n)`` product where
    ``layout`` says which operand is a transposed view, as the real step has it:
    ``"nn"``, ``"tn"`` (``a.T @ b``, weight gradients), ``"nt"`` (``a @ b.T``, input
    gradients).
    """

    def __init__(self, products, dtype=np.float32, rng=None):
        rng = rng or np.random.default_rng(0)
        self.ops = []
        for m, k, n, layout in products:
            a = rng.standard_normal((k, m) if layout[0] == "t" else (m, k)).astype(dtype)
            b = rng.standard_normal((n, k) if layout[1] == "t" else (k, n)).astype(dtype)
            self.ops.append((a.T if layout[0] == "t" else a, b.T if layout[1] == "t" else b,
                             np.empty((m, n), dtype)))

    def run(self) -> None:
        for a, b, out in self.ops:
            np.matmul(a, b, out=out)
