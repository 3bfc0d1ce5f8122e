"""Module: the base of every nnkern layer and model.

There is no autograd. A module's ``forward`` saves what its ``backward`` needs; ``backward``
takes the gradient of the loss with respect to the forward's output, returns the gradient
with respect to its input, and *adds* the parameter gradients into ``module.grads`` (call
``zero_grad`` between steps). Parameters, gradients and buffers are plain NumPy arrays held
by name, with the names and shapes PyTorch's equivalent module uses in its state_dict.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

__all__ = ["Module"]


class Module:
    """Parameters and gradients by name, submodules, train/eval mode and state dicts.

    Subclasses create parameters with :meth:`add_parameter` (a gradient array of the same
    shape is made with it), buffers (saved state that is not trained, like running means)
    with :meth:`add_buffer`, and submodules with :meth:`add_module`, then implement
    ``forward`` and ``backward``.
    """

    def __init__(self):
        self._params: OrderedDict[str, np.ndarray] = OrderedDict()
        self._grads: OrderedDict[str, np.ndarray] = OrderedDict()
        self._buffers: OrderedDict[str, np.ndarray] = OrderedDict()
        self._modules: OrderedDict[str, Module] = OrderedDict()
        self.training = True

    # -- registration -----------------------------------------------------------------
    def add_parameter(self, name: str, value: np.ndarray) -> np.ndarray:
        value = np.ascontiguousarray(value)
        self._params[name] = value
        self._grads[name] = np.zeros_like(value)
        return value

    def add_buffer(self, name: str, value: np.ndarray) -> np.ndarray:
        self._buffers[name] = np.ascontiguousarray(value)
        return self._buffers[name]

    def add_module(self, name: str, module: Module) -> Module:
        if not isinstance(module, Module):
            raise TypeError(f"{name}: expected a Module, got {type(module).__name__}")
        self._modules[name] = module
        return module

    def __getattr__(self, name):
        # parameters, buffers and submodules read as attributes (module.weight, seq.fc1)
        for store in ("_params", "_buffers", "_modules"):
            d = self.__dict__.get(store)
            if d is not None and name in d:
                return d[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    # -- traversal ----------------------------------------------------------------------
    def named_modules(self, prefix: str = ""):
        yield prefix, self
        for name, m in self._modules.items():
            yield from m.named_modules(f"{prefix}{name}.")

    def named_parameters(self):
        """(dotted name, array) for every parameter, in registration order."""
        for prefix, m in self.named_modules():
            for name, p in m._params.items():
                yield prefix + name, p

    def named_grads(self):
        for prefix, m in self.named_modules():
            for name, g in m._grads.items():
                yield prefix + name, g

    def parameters(self) -> list[np.ndarray]:
        return [p for _, p in self.named_parameters()]

    def gradients(self) -> list[np.ndarray]:
        """The gradient arrays, in the order of :meth:`parameters` (for an optimizer)."""
        return [g for _, g in self.named_grads()]

    @property
    def params(self) -> dict:
        return dict(self.named_parameters())

    @property
    def grads(self) -> dict:
        return dict(self.named_grads())

    def flatten_parameters(self) -> Module:
        """Move every parameter (and its gradient) into one contiguous buffer, the arrays
        becoming views of it in :meth:`parameters` order, values unchanged. An nnkern.optim
        optimizer over such parameters updates them all in one pass over one range. Call it
        before building the optimizer (it replaces the arrays the optimizer would hold)."""
        for store in ("_params", "_grads"):
            items = [(m, name, a) for _, m in self.named_modules() for name, a in getattr(m, store).items()]
            if not items:
                continue
            dtypes = {a.dtype for _, _, a in items}
            if len(dtypes) != 1:
                raise TypeError(f"parameters: mixed dtypes {sorted(map(str, dtypes))} cannot share one buffer")
            buf = np.empty(sum(a.size for _, _, a in items), dtype=dtypes.pop())
            off = 0
            for m, name, a in items:
                view = buf[off:off + a.size].reshape(a.shape)
                view[...] = a
                getattr(m, store)[name] = view
                off += a.size
        return self

    def zero_grad(self) -> None:
        for _, g in self.named_grads():
            g[...] = 0

    def train(self, mode: bool = True) -> Module:
        for _, m in self.named_modules():
            m.training = bool(mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    # -- running ------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError

    def backward(self, *args, **kwargs):
        raise NotImplementedError

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # -- state --------------------------------------------------------------------------
    def state_dict(self) -> OrderedDict:
        """Copies of every parameter and buffer by dotted name (PyTorch's keys)."""
        sd = OrderedDict()
        for prefix, m in self.named_modules():
            for name, p in m._params.items():
                sd[prefix + name] = p.copy()
            for name, b in m._buffers.items():
                sd[prefix + name] = b.copy()
        return sd

    def load_state_dict(self, state: dict, strict: bool = True) -> None:
        """Copy values in from `state` (NumPy arrays, or anything np.asarray takes, such as
        CPU torch tensors). Every key and shape is checked before anything is written, so a
        failed load leaves the module unchanged. strict=False ignores missing and extra keys
        (shapes are still checked)."""
        targets = {}
        for prefix, m in self.named_modules():
            for store in (m._params, m._buffers):
                for name, arr in store.items():
                    targets[prefix + name] = arr
        missing = [k for k in targets if k not in state]
        extra = [k for k in state if k not in targets]
        if strict and (missing or extra):
            parts = []
            if missing:
                parts.append(f"missing keys {missing}")
            if extra:
                parts.append(f"unexpected keys {extra}")
            raise KeyError("state_dict: " + "; ".join(parts))
        new = {}
        for key, arr in targets.items():
            if key not in state:
                continue
            val = state[key]
            if hasattr(val, "detach"):  # a torch tensor
                val = val.detach().cpu().numpy()
            val = np.asarray(val)
            if val.shape != arr.shape:
                raise ValueError(f"state_dict[{key!r}]: expected shape {arr.shape}, got {val.shape}")
            if not np.issubdtype(val.dtype, np.number) and val.dtype != np.bool_:
                raise TypeError(f"state_dict[{key!r}]: expected a numeric array, got dtype {val.dtype}")
            new[key] = val
        for key, val in new.items():
            targets[key][...] = val

    def save(self, path) -> None:
        """Write the state dict to an .npz file."""
        np.savez(path, **self.state_dict())

    def load(self, path, strict: bool = True) -> None:
        """Read a state dict written by :meth:`save` (the module is unchanged on error)."""
        with np.load(path, allow_pickle=False) as f:
            self.load_state_dict({k: f[k] for k in f.files}, strict=strict)

    def __repr__(self) -> str:
        extra = self.extra_repr()
        if not self._modules:
            return f"{type(self).__name__}({extra})"
        lines = [f"{type(self).__name__}({extra}"]
        for name, m in self._modules.items():
            lines.append(f"  ({name}): " + repr(m).replace("\n", "\n  "))
        return "\n".join(lines) + "\n)"

    def extra_repr(self) -> str:
        return ""
