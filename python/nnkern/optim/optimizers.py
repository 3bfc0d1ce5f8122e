"""Optimizer objects over the fused update kernels (nnkern._core.*_step).

State arrays live in one flat buffer per kind (exp_avg, exp_avg_sq, ...), so a step over
parameters that are views into one flat buffer (see flatten) is one kernel call over one
contiguous range per array kind. Hyper-parameters are attributes and may be changed between
steps (a learning-rate schedule sets ``opt.lr``).
"""

from __future__ import annotations

import math

import numpy as np

from .. import _core
from .. import _validate as v
from ..reference.optim import _adam_scalars, _norm_type, _pair
from ._flat import flat_buffer


class Optimizer:
    """Base class: parameters, per-parameter state, clipping, state_dict.

    params      list of float32/float64 C-contiguous arrays of one dtype, updated in place.
    clip_norm   None, or clip the gradients by their global norm (order norm_type) before
                each step, as torch.nn.utils.clip_grad_norm_(grads, clip_norm) would; the
                gradients themselves are not modified (the scale is applied as they are read).
    check_finite  raise ValueError on a NaN or inf gradient, with nothing modified (free when
                clipping: the norm pass sees it; otherwise one extra read of the gradients).
    """

    _state_names: tuple[str, ...] = ()

    def __init__(self, params, clip_norm=None, norm_type=2.0, check_finite=True):
        if isinstance(params, np.ndarray):
            params = [params]
        params = list(params)
        for k, p in enumerate(params):
            v.inplace_array(p, f"params[{k}]")
            if not p.flags.c_contiguous:
                raise ValueError(
                    f"params[{k}]: must be C-contiguous (it is updated in place); "
                    "nnkern.optim.flatten makes contiguous copies"
                )
            v.same_dtype(params[0], "params[0]", **{f"params[{k}]": p})
        self.params = params
        self.dtype = params[0].dtype if params else np.dtype(np.float32)
        self.clip_norm = None if clip_norm is None else v.real_scalar(clip_norm, "clip_norm", min_value=0.0)
        self.norm_type = _norm_type(norm_type)
        self.check_finite = v.bool_flag(check_finite, "check_finite")
        self.step_count = 0
        self._flat = flat_buffer(params)
        self._sizes = [p.size for p in params]
        self._total = sum(self._sizes)
        self._grads = None
        # one flat buffer per state kind; per-parameter views of it
        self._state_flat = {name: np.zeros(self._total, dtype=self.dtype) for name in self._state_names}
        self.state = [
            {name: buf[o:o + p.size].reshape(p.shape) for name, buf in self._state_flat.items()}
            for o, p in zip(self._offsets(), params)
        ]

    def _offsets(self):
        off = 0
        for n in self._sizes:
            yield off
            off += n

    # ---- gradients

    @property
    def grads(self) -> list:
        """Gradient arrays (zeros at first) as views into one flat buffer: write gradients into
        them and call step() with no argument, for a step over two flat ranges."""
        if self._grads is None:
            flat = np.zeros(self._total, dtype=self.dtype)
            self._grads = [flat[o:o + p.size].reshape(p.shape) for o, p in zip(self._offsets(), self.params)]
        return self._grads

    def zero_grad(self) -> None:
        for g in self.grads:
            g[...] = 0

    def _check_grads(self, grads):
        if grads is None:
            grads = self.grads
        if isinstance(grads, np.ndarray):
            grads = [grads]
        grads = list(grads)
        if len(grads) != len(self.params):
            raise ValueError(f"grads: expected {len(self.params)} arrays (one per parameter), got {len(grads)}")
        out = []
        for k, (g, p) in enumerate(zip(grads, self.params)):
            g = v.float_array(g, f"grads[{k}]")
            v.same_dtype(p, f"params[{k}]", **{f"grads[{k}]": g})
            v.same_shape(p, f"params[{k}]", **{f"grads[{k}]": g})
            out.append(g)
        return out

    # ---- the step

    def step(self, grads=None):
        """One update of every parameter, in place; grads: one array per parameter (default:
        self.grads). Returns the gradients' total norm when clip_norm is set, else None."""
        grads = self._check_grads(grads)
        self._check_hyper()
        gflat = flat_buffer(grads) if self._flat is not None else None
        glist = [gflat] if gflat is not None else grads
        scale, total = 1.0, None
        if self.clip_norm is not None:
            total = _core.total_norm(glist, self.norm_type) if self._total else 0.0
            if self.check_finite and not math.isfinite(total):
                raise v.NonFiniteError(f"grads: the total norm of the gradients is {total}; nothing was updated")
            coef = self.clip_norm / (total + 1e-6)
            scale = 1.0 if coef > 1.0 else coef
        elif self.check_finite and self._total:
            bad = _core.first_nonfinite(glist)
            if bad is not None:
                k, i = bad
                if gflat is not None:  # locate the element in its own gradient array
                    for k, n in enumerate(self._sizes):
                        if i < n:
                            break
                        i -= n
                raise v.nonfinite_error(f"grads[{k}]", grads[k], i)
        if self._total:
            self.step_count += 1
            if gflat is not None:
                plist = [self._flat]
                states = {name: [buf] for name, buf in self._state_flat.items()}
            else:
                plist = self.params
                states = {name: [s[name] for s in self.state] for name in self._state_names}
            self._update(plist, glist, states, scale)
        else:
            self.step_count += 1
        return None if total is None else self.dtype.type(total)

    def _update(self, params, grads, states, scale):  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_hyper(self):
        """Re-validate the hyper-parameters (they are public attributes) before a step."""
        for name in self._hyper_names:
            setattr(self, name, self._validate_hyper(name, getattr(self, name)))

    _hyper_names: tuple[str, ...] = ()

    def _validate_hyper(self, name, value):
        return v.real_scalar(value, name, min_value=0.0)

    # ---- state_dict, in torch's layout

    def state_dict(self) -> dict:
        """{"state": {i: {"step": n, NAME: array copy, ...}}, "param_groups": [{hyper..., "params": [0..]}]},
        torch.optim's layout (one group); arrays are copies."""
        state = {}
        if self.step_count:
            for i, s in enumerate(self.state):
                state[i] = {"step": self.step_count, **{name: a.copy() for name, a in s.items()}}
        group = {name: getattr(self, name) for name in self._hyper_names}
        group.update(self._extra_hyper())
        group["params"] = list(range(len(self.params)))
        return {"state": state, "param_groups": [group]}

    def _extra_hyper(self) -> dict:
        return {}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what state_dict() returned (arrays are copied into this optimizer's state)."""
        try:
            state, groups = state_dict["state"], state_dict["param_groups"]
        except (TypeError, KeyError):
            raise ValueError("state_dict: expected a dict with 'state' and 'param_groups'") from None
        if len(groups) != 1 or len(groups[0].get("params", ())) != len(self.params):
            raise ValueError(f"state_dict: expected one param group of {len(self.params)} parameters")
        steps = {int(s.get("step", 0)) for s in state.values()}
        if len(steps) > 1:
            raise ValueError("state_dict: parameters at different steps")
        new = {}
        for i, s in state.items():
            i = int(i)
            if not 0 <= i < len(self.params):
                raise ValueError(f"state_dict: state for parameter {i} of {len(self.params)}")
            extra = sorted(set(s) - set(self._state_names) - {"step"})
            if extra:
                raise ValueError(f"state_dict: state[{i}] holds {extra}, which this optimizer does not keep "
                                 "(it was made with other options)")
            for name in self._state_names:
                if name not in s:
                    raise ValueError(f"state_dict: state[{i}] lacks {name!r}")
                a = np.asarray(s[name])
                if a.shape != self.params[i].shape:
                    raise ValueError(f"state_dict: state[{i}][{name!r}] has shape {a.shape}, expected {self.params[i].shape}")
                new[i, name] = a
        hyper = {k: val for k, val in groups[0].items() if k != "params"}
        self._load_extra_hyper(hyper)
        for name in self._hyper_names:  # validate everything before changing anything
            if name in hyper:
                hyper[name] = self._validate_hyper(name, hyper[name])
        for name in self._hyper_names:
            if name in hyper:
                setattr(self, name, hyper[name])
        for buf in self._state_flat.values():
            buf[...] = 0
        for (i, name), a in new.items():
            self.state[i][name][...] = a
        self.step_count = steps.pop() if steps else 0

    def _load_extra_hyper(self, hyper: dict) -> None:
        pass


def _state_fixed(opt, name, needed):
    """The state kinds are chosen when an optimizer is made: momentum cannot be switched on later."""
    names = opt.__dict__.get("_state_names")
    if names is not None and needed and name not in names:
        raise ValueError(f"momentum: was 0 when the optimizer was made (no {name} state); make a new optimizer")


class SGD(Optimizer):
    """torch.optim.SGD: gradient descent, with optional momentum / Nesterov and weight decay."""

    _hyper_names = ("lr", "momentum", "dampening", "weight_decay")

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0,
                 clip_norm=None, norm_type=2.0, check_finite=True):
        self.lr, self.momentum, self.dampening, self.weight_decay = lr, momentum, dampening, weight_decay
        self.nesterov = v.bool_flag(nesterov, "nesterov")
        self._check_hyper()
        self._state_names = ("momentum_buffer",) if self.momentum != 0 else ()
        super().__init__(params, clip_norm, norm_type, check_finite)

    def _validate_hyper(self, name, value):
        if name == "dampening":
            return v.real_scalar(value, name)
        return super()._validate_hyper(name, value)

    def _check_hyper(self):
        super()._check_hyper()
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("nesterov: needs momentum > 0 and dampening = 0")
        _state_fixed(self, "momentum_buffer", self.momentum != 0)

    def _extra_hyper(self):
        return {"nesterov": self.nesterov}

    def _load_extra_hyper(self, hyper):
        if "nesterov" in hyper:
            self.nesterov = v.bool_flag(hyper["nesterov"], "nesterov")

    def _update(self, params, grads, states, scale):
        _core.sgd_step(params, grads, states.get("momentum_buffer"), self.lr, self.momentum, self.dampening,
                       self.nesterov, self.weight_decay, self.step_count == 1, scale)


class Momentum(SGD):
    """SGD with momentum (torch.optim.SGD(momentum=0.9) by default)."""

    def __init__(self, params, lr=1e-3, momentum=0.9, dampening=0.0, nesterov=False, weight_decay=0.0,
                 clip_norm=None, norm_type=2.0, check_finite=True):
        v.real_scalar(momentum, "momentum", min_value=0.0, strict_min=True)
        super().__init__(params, lr, momentum, dampening, nesterov, weight_decay, clip_norm, norm_type,
                         check_finite)


class RProp(Optimizer):
    """torch.optim.Rprop: per-weight steps adapted from gradient signs (full-batch training;
    see nnkern.ops.rprop_step for why it does not suit mini-batches)."""

    _state_names = ("prev", "step_size")
    _hyper_names = ("lr",)

    def __init__(self, params, lr=0.01, etas=(0.5, 1.2), step_sizes=(1e-6, 50.0), clip_norm=None,
                 norm_type=2.0, check_finite=True):
        self.lr = lr
        self.etas, self.step_sizes = etas, step_sizes
        self._check_hyper()
        super().__init__(params, clip_norm, norm_type, check_finite)

    def _check_hyper(self):
        super()._check_hyper()
        em, ep = _pair(self.etas, "etas")
        if not 0.0 < em < 1.0 < ep:
            raise ValueError(f"etas: expected 0 < etaminus < 1 < etaplus, got ({em}, {ep})")
        smin, smax = _pair(self.step_sizes, "step_sizes")
        if not 0.0 <= smin <= smax:
            raise ValueError(f"step_sizes: expected 0 <= min <= max, got ({smin}, {smax})")
        self.etas, self.step_sizes = (em, ep), (smin, smax)

    def _extra_hyper(self):
        return {"etas": self.etas, "step_sizes": self.step_sizes}

    def _load_extra_hyper(self, hyper):
        self.etas = tuple(hyper.get("etas", self.etas))
        self.step_sizes = tuple(hyper.get("step_sizes", self.step_sizes))

    def _update(self, params, grads, states, scale):
        if self.step_count == 1:  # torch fills the step sizes with lr on the first step
            self._state_flat["step_size"][...] = self.lr
            self._state_flat["prev"][...] = 0
        (em, ep), (smin, smax) = self.etas, self.step_sizes
        _core.rprop_step(params, grads, states["prev"], states["step_size"], em, ep, smin, smax, scale)


class RMSProp(Optimizer):
    """torch.optim.RMSprop, with optional momentum and the centered variant."""

    _hyper_names = ("lr", "alpha", "eps", "weight_decay", "momentum")

    def __init__(self, params, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False,
                 clip_norm=None, norm_type=2.0, check_finite=True):
        self.lr, self.alpha, self.eps, self.weight_decay, self.momentum = lr, alpha, eps, weight_decay, momentum
        self.centered = v.bool_flag(centered, "centered")
        self._check_hyper()
        self._state_names = ("square_avg",) + (("momentum_buffer",) if self.momentum > 0 else ()) + \
            (("grad_avg",) if self.centered else ())
        super().__init__(params, clip_norm, norm_type, check_finite)

    def _validate_hyper(self, name, value):
        if name == "alpha":
            return v.unit_scalar(value, name, closed=True)
        return super()._validate_hyper(name, value)

    def _check_hyper(self):
        super()._check_hyper()
        _state_fixed(self, "momentum_buffer", self.momentum > 0)

    def _extra_hyper(self):
        return {"centered": self.centered}

    def _update(self, params, grads, states, scale):
        _core.rmsprop_step(params, grads, states["square_avg"], states.get("momentum_buffer"),
                           states.get("grad_avg"), self.lr, self.alpha, self.eps, self.weight_decay,
                           self.momentum if "momentum_buffer" in states else 0.0, self.centered, scale)


class Adam(Optimizer):
    """torch.optim.Adam (with amsgrad), and AdamW when decoupled (the AdamW class)."""

    _hyper_names = ("lr", "eps", "weight_decay")
    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
                 clip_norm=None, norm_type=2.0, check_finite=True):
        self.lr, self.eps, self.weight_decay = lr, eps, weight_decay
        self.betas = betas
        self.amsgrad = v.bool_flag(amsgrad, "amsgrad")
        self._check_hyper()
        self._state_names = ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if self.amsgrad else ())
        super().__init__(params, clip_norm, norm_type, check_finite)

    def _check_hyper(self):
        super()._check_hyper()
        b1, b2 = _pair(self.betas, "betas")
        for name, b in (("betas[0]", b1), ("betas[1]", b2)):
            v.unit_scalar(b, name)
        self.betas = (b1, b2)

    def _extra_hyper(self):
        return {"betas": self.betas, "amsgrad": self.amsgrad}

    def _load_extra_hyper(self, hyper):
        self.betas = tuple(hyper.get("betas", self.betas))

    def _update(self, params, grads, states, scale):
        b1, b2 = self.betas
        step_size, bc2_sqrt = _adam_scalars(self.step_count, self.lr, b1, b2)
        _core.adam_step(params, grads, states["exp_avg"], states["exp_avg_sq"], states.get("max_exp_avg_sq"),
                        self.lr, b1, b2, self.eps, self.weight_decay, self._decoupled, self.amsgrad,
                        step_size, bc2_sqrt, scale)


class AdamW(Adam):
    """torch.optim.AdamW: Adam with decoupled weight decay (param *= 1 - lr * weight_decay)."""

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False,
                 clip_norm=None, norm_type=2.0, check_finite=True):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, clip_norm, norm_type, check_finite)
