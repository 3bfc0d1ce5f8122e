"""nnkern.optim: optimizers over lists of NumPy parameter arrays, and early stopping.

Each optimizer follows the torch.optim class of the same meaning (same hyper-parameters, same
trajectory) and updates the parameter arrays in place, one fused pass over all of them per
step::

    params = optim.flatten([W1, b1, W2, b2])   # views into one contiguous buffer
    opt = optim.Adam(params, lr=1e-3, clip_norm=1.0)
    for batch in data:
        grads = model_backward(params, batch)  # any arrays of the params' shapes
        opt.step(grads)                        # clip by global norm + Adam, two passes

Parameters kept as views into one flat buffer (``flatten``) make a step one pass over one
contiguous range; separate arrays work too (the kernel walks them in the same single parallel
pass). Gradient clipping by global norm reads the gradients once for the norm and folds the
scale into the update, instead of torch's norm pass + scaling pass + update pass.
"""

from ._flat import flat_buffer, flatten
from .early_stopping import EarlyStopping
from .optimizers import SGD, Adam, AdamW, Momentum, Optimizer, RMSProp, RProp

__all__ = [
    "Optimizer", "SGD", "Momentum", "RProp", "RMSProp", "Adam", "AdamW",
    "EarlyStopping", "flatten", "flat_buffer",
]
