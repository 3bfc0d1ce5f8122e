"""Word embeddings: Word2Vec (and KeyedVectors), with gensim's API over C++ training loops."""

from .keyedvectors import KeyedVectors
from .word2vec import Word2Vec

__all__ = ["Word2Vec", "KeyedVectors"]
