"""nnkern.ops: the public kernel API, computed by the compiled C++ (Eigen) kernels.

Every function has a NumPy twin of the same name and signature in :mod:`nnkern.reference`.
Arguments are validated here (clear TypeError / ValueError naming the argument); the
compiled code runs with the GIL released and uses :func:`nnkern.set_num_threads` threads.
"""

from .activations import *  # noqa: F401,F403
from .activations import __all__ as _act
from .dense import *  # noqa: F401,F403
from .dense import __all__ as _dense
from .losses import *  # noqa: F401,F403
from .losses import __all__ as _loss
from .recurrent import *  # noqa: F401,F403
from .recurrent import __all__ as _rec
from .attention import *  # noqa: F401,F403
from .attention import __all__ as _attn
from .word2vec import *  # noqa: F401,F403
from .word2vec import __all__ as _w2v
from .glove import *  # noqa: F401,F403
from .glove import __all__ as _glove
from .optim import *  # noqa: F401,F403
from .optim import __all__ as _optim
from .norm import *  # noqa: F401,F403
from .norm import __all__ as _norm
from .dropout import *  # noqa: F401,F403
from .dropout import __all__ as _dropout
from .init import *  # noqa: F401,F403
from .init import __all__ as _init

__all__ = [*_act, *_loss, *_dense, *_rec, *_attn, *_w2v, *_glove, *_optim, *_norm, *_dropout, *_init]
