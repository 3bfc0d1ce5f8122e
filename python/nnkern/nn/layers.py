"""Feed-forward layers on nnkern.ops: Dense, activations, Embedding, Sequential.

Each layer's ``forward(x)`` keeps what its ``backward(dout)`` needs (one forward, then one
backward); ``backward`` returns dL/dx and adds parameter gradients into ``layer.grads``.
Parameters are initialised as PyTorch initialises the same module, from an explicit seed or
numpy Generator.
"""

from __future__ import annotations

import numpy as np

from .. import ops
from .module import Module

__all__ = ["Dense", "Sigmoid", "Tanh", "ReLU", "LeakyReLU", "Softmax", "Dropout", "BatchNorm1d", "Embedding",
           "Sequential"]


def _rng(seed):
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _dtype(dtype):
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise TypeError(f"dtype: expected float32 or float64, got {dt}")
    return dt


def _positive_int(v, name):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{name}: expected a positive integer, got {v!r}")
    return int(v)


class _Saved:
    """What a forward keeps for its backward, with a clear error when backward comes first."""

    def __init__(self, layer):
        self.layer = layer
        self.value = None

    def get(self):
        if self.value is None:
            raise RuntimeError(f"{type(self.layer).__name__}.backward called before forward")
        return self.value


class Dense(Module):
    """y = x W^T + b (torch.nn.Linear). x (..., in_features) -> y (..., out_features).

    Parameters: weight (out_features, in_features), bias (out_features,), both initialised
    U(-1/sqrt(in_features), 1/sqrt(in_features)) as torch does.
    """

    def __init__(self, in_features, out_features, bias=True, seed=None, dtype=np.float32):
        super().__init__()
        I, O = _positive_int(in_features, "in_features"), _positive_int(out_features, "out_features")
        dt, rng = _dtype(dtype), _rng(seed)
        k = 1.0 / np.sqrt(I)
        self.in_features, self.out_features = I, O
        self.add_parameter("weight", rng.uniform(-k, k, (O, I)).astype(dt))
        if bias:
            self.add_parameter("bias", rng.uniform(-k, k, O).astype(dt))
        self._x = _Saved(self)

    def forward(self, x):
        self._x.value = np.asarray(x)
        return ops.dense(x, self.weight, self._params.get("bias"))

    def backward(self, dout):
        dx, dW, db = ops.dense_backward(dout, self._x.get(), self.weight)
        self._grads["weight"] += dW
        if "bias" in self._params:
            self._grads["bias"] += db
        return dx

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={'bias' in self._params}"


class _Activation(Module):
    _fwd = _bwd = None

    def __init__(self):
        super().__init__()
        self._saved = _Saved(self)

    def forward(self, x):
        y = type(self)._fwd(x)
        self._saved.value = y
        return y

    def backward(self, dout):
        return type(self)._bwd(dout, self._saved.get())


class Sigmoid(_Activation):
    """y = 1 / (1 + exp(-x))."""
    _fwd = staticmethod(ops.sigmoid)
    _bwd = staticmethod(ops.sigmoid_backward)


class Tanh(_Activation):
    """y = tanh(x)."""
    _fwd = staticmethod(ops.tanh)
    _bwd = staticmethod(ops.tanh_backward)


class ReLU(Module):
    """y = max(x, 0) (gradient 0 at 0, as torch)."""

    def __init__(self):
        super().__init__()
        self._x = _Saved(self)

    def forward(self, x):
        self._x.value = np.asarray(x)
        return ops.relu(x)

    def backward(self, dout):
        return ops.relu_backward(dout, self._x.get())


class LeakyReLU(Module):
    """y = x for x > 0, alpha * x otherwise."""

    def __init__(self, alpha=0.01):
        super().__init__()
        self.alpha = float(alpha)
        self._x = _Saved(self)

    def forward(self, x):
        self._x.value = np.asarray(x)
        return ops.leaky_relu(x, self.alpha)

    def backward(self, dout):
        return ops.leaky_relu_backward(dout, self._x.get(), self.alpha)

    def extra_repr(self):
        return f"alpha={self.alpha}"


class Softmax(Module):
    """softmax along `axis` (default the last)."""

    def __init__(self, axis=-1):
        super().__init__()
        self.axis = axis
        self._y = _Saved(self)

    def forward(self, x):
        y = ops.softmax(x, axis=self.axis)
        self._y.value = y
        return y

    def backward(self, dout):
        return ops.softmax_backward(dout, self._y.get(), axis=self.axis)


class Embedding(Module):
    """Rows of a (num_embeddings, embedding_dim) table picked by integer ids (torch.nn.Embedding).

    forward(ids) with ids of any shape -> (*ids.shape, embedding_dim); backward(dout) adds
    dout into the picked rows of the weight's gradient and returns None (ids have no
    gradient). padding_idx, if given, is a row that is initialised to zero and never updated.
    """

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, seed=None, dtype=np.float32):
        super().__init__()
        V, D = _positive_int(num_embeddings, "num_embeddings"), _positive_int(embedding_dim, "embedding_dim")
        w = _rng(seed).standard_normal((V, D)).astype(_dtype(dtype))
        if padding_idx is not None:
            if not -V <= padding_idx < V:
                raise ValueError(f"padding_idx: {padding_idx} is out of range for {V} embeddings")
            padding_idx %= V
            w[padding_idx] = 0
        self.padding_idx = padding_idx
        self.add_parameter("weight", w)
        self._ids = _Saved(self)

    def forward(self, ids):
        ids = np.asarray(ids)
        if ids.dtype.kind not in "iu":
            raise TypeError(f"ids: expected an integer array, got dtype {ids.dtype}")
        V = self.weight.shape[0]
        if ids.size and (ids.min() < 0 or ids.max() >= V):
            bad = ids[(ids < 0) | (ids >= V)].flat[0]
            raise ValueError(f"ids: {int(bad)} is out of range for {V} embeddings")
        self._ids.value = ids
        return self.weight[ids]

    def backward(self, dout):
        ids = self._ids.get()
        dout = np.asarray(dout)
        D = self.weight.shape[1]
        if dout.shape != ids.shape + (D,):
            raise ValueError(f"dout: expected shape {ids.shape + (D,)}, got {dout.shape}")
        g = self._grads["weight"]
        ops.embedding_backward(dout.astype(g.dtype, copy=False), ids, g)
        if self.padding_idx is not None:
            g[self.padding_idx] = 0
        return None


class Sequential(Module):
    """Layers applied in order; backward runs them in reverse. Submodules are named "0", "1",
    ... as in torch.nn.Sequential, so state-dict keys match."""

    def __init__(self, *layers):
        super().__init__()
        for i, layer in enumerate(layers):
            self.add_module(str(i), layer)

    def __len__(self):
        return len(self._modules)

    def __getitem__(self, i):
        return list(self._modules.values())[i]

    def forward(self, x):
        for m in self._modules.values():
            x = m.forward(x)
        return x

    def backward(self, dout):
        for m in reversed(list(self._modules.values())):
            dout = m.backward(dout)
        return dout


class Dropout(Module):
    """Inverted dropout (torch.nn.Dropout): in training mode each element is zeroed with
    probability p and the kept ones scaled by 1/(1-p); in eval mode the identity. Each forward
    draws a fresh mask from the layer's generator (seeded by `seed`)."""

    def __init__(self, p=0.5, seed=None):
        super().__init__()
        if not 0.0 <= float(p) < 1.0:
            raise ValueError(f"p: expected a probability in [0, 1), got {p}")
        self.p = float(p)
        self._rng = _rng(seed)
        self._mask = None

    def forward(self, x):
        if not self.training or self.p == 0.0:
            self._mask = None
            return np.asarray(x)
        y, self._mask = ops.dropout(x, self.p, int(self._rng.integers(2**63)))
        return y

    def backward(self, dout):
        if self._mask is None:
            return np.asarray(dout)
        return ops.dropout_backward(dout, self._mask, self.p)

    def extra_repr(self):
        return f"p={self.p}"


class BatchNorm1d(Module):
    """Batch normalization over (N, C) or (N, C, L) inputs (torch.nn.BatchNorm1d): training
    mode normalizes with the batch statistics and updates running_mean / running_var (unbiased)
    with `momentum`; eval mode uses the running statistics. Parameters weight (gamma) and bias
    (beta) of shape (C,) when affine; buffers running_mean, running_var and num_batches_tracked
    as in torch's state dict."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, dtype=np.float32):
        super().__init__()
        C = _positive_int(num_features, "num_features")
        dt = _dtype(dtype)
        self.num_features, self.eps, self.momentum, self.affine = C, float(eps), float(momentum), bool(affine)
        if self.affine:
            self.add_parameter("weight", np.ones(C, dt))
            self.add_parameter("bias", np.zeros(C, dt))
        self.add_buffer("running_mean", np.zeros(C, dt))
        self.add_buffer("running_var", np.ones(C, dt))
        self.add_buffer("num_batches_tracked", np.zeros((), np.int64))
        self._cache = None

    def forward(self, x):
        y, self._cache = ops.batchnorm_forward(
            x, self._params.get("weight"), self._params.get("bias"), self.running_mean, self.running_var,
            training=self.training, momentum=self.momentum, eps=self.eps)
        if self.training:
            self.num_batches_tracked[...] += 1
        return y

    def backward(self, dout):
        if self._cache is None:
            raise RuntimeError("BatchNorm1d.backward called before forward")
        dx, dgamma, dbeta = ops.batchnorm_backward(dout, self._cache)
        if self.affine:
            self._grads["weight"] += dgamma
            self._grads["bias"] += dbeta
        return dx

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"
