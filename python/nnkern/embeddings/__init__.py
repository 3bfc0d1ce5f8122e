"""Word embeddings: Word2Vec, GloVe and KeyedVectors, gensim's API over C++ training loops."""

from ._corpus import TokenIds
from .glove import GloVe
from .keyedvectors import KeyedVectors
from .word2vec import Word2Vec

__all__ = ["Word2Vec", "KeyedVectors", "GloVe", "TokenIds"]
