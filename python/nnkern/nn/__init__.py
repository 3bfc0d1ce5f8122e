"""nnkern.nn: layers and models on nnkern.ops, with explicit forward and backward.

No autograd: ``out = layer.forward(x)`` keeps what ``dx = layer.backward(dout)`` needs, and
backward adds the parameter gradients into ``layer.grads``. State-dict keys and shapes are
PyTorch's, so weights move between the two libraries unchanged.
"""

from .layers import BatchNorm1d, Dense, Dropout, Embedding, LeakyReLU, ReLU, Sequential, Sigmoid, Softmax, Tanh
from .module import Module
from .recurrent import GRU, LSTM, RNN
from .attention import Attention
from .losses import BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, MAELoss, MSELoss
from .seq2seq import Autoencoder, CharRNN, Seq2Seq
from .diagnostics import hidden_gradient_norms
from .training import History, evaluate, fit

__all__ = ["Module", "Dense", "Dropout", "BatchNorm1d", "Sigmoid", "Tanh", "ReLU", "LeakyReLU", "Softmax", "Embedding",
           "Sequential", "RNN", "GRU", "LSTM", "Attention", "MSELoss", "MAELoss", "HuberLoss",
           "BCEWithLogitsLoss", "CrossEntropyLoss", "Seq2Seq", "Autoencoder", "CharRNN",
           "hidden_gradient_norms", "fit", "evaluate", "History"]
