// word2vec (Mikolov et al. 2013): skip-gram and CBOW, negative sampling and hierarchical
// softmax. The single-example updates below are the whole of the math; the training loop
// (w2v_train_job) only chooses which examples to feed them, as word2vec.c and gensim do.
//
// Shapes (glossary in common.hpp): syn0 (V, D) input vectors, syn1neg (V, D) output vectors
// for negative sampling, syn1 (V - 1, D) inner-node vectors of the Huffman tree for
// hierarchical softmax. Every row is contiguous, so an update touches D consecutive values.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/common.hpp"

namespace nnkern {

// ---------------------------------------------------------------------------------------
// Small vector helpers: D is ~100-300, so these are the whole hot loop. omp simd lets the
// compiler vectorise the reductions without -ffast-math.

// Eigen's vectorised reduction: full packets with two accumulators, then the tail, so the
// dot is neither one latency-bound FMA chain nor split into short, badly vectorised pieces.
template <class T>
inline T w2v_dot(const T* a, const T* b, index_t D) {
  using V = Eigen::Matrix<T, Eigen::Dynamic, 1>;
  return Eigen::Map<const V>(a, D).dot(Eigen::Map<const V>(b, D));
}

// One logistic-regression step of l1 against the output row `out` with label 0/1:
//   f = l1 . out,  g = alpha (label - sigmoid(f)),  e += g out,  out += g l1.
// Returns the log-loss -log sigmoid(+-f) when `want_loss`, computed stably from exp(-|f|).
// With skip_saturated (hierarchical softmax, as word2vec.c and gensim), a node with
// |f| >= kW2VMaxExp is left alone: its gradient is < 0.25% of alpha and the skip saves two
// thirds of the node's work. Its loss still counts.
constexpr double kW2VMaxExp = 6.0;

template <class T>
inline double w2v_logistic_step(const T* l1, T* out, T* e, index_t D, T label, T alpha,
                                bool want_loss, bool skip_saturated = false) {
  const T f = w2v_dot(l1, out, D);
  if (skip_saturated && !want_loss && std::abs(f) >= T(kW2VMaxExp)) return 0.0;
  const T z = std::exp(-std::abs(f));  // in (0, 1]: never overflows
  const T m = label > T(0.5) ? -f : f;
  if (skip_saturated && std::abs(f) >= T(kW2VMaxExp))
    return want_loss ? double(std::max(m, T(0)) + std::log1p(z)) : 0.0;
  const T sig = f >= 0 ? T(1) / (T(1) + z) : z / (T(1) + z);
  const T g = alpha * (label - sig);
#pragma omp simd
  for (index_t j = 0; j < D; ++j) {
    e[j] += g * out[j];
    out[j] += g * l1[j];
  }
  if (!want_loss) return 0.0;
  // -log sigmoid(f) if label 1, -log sigmoid(-f) if label 0: softplus(-+f).
  return double(std::max(m, T(0)) + std::log1p(z));
}

// The same steps over n *distinct* rows, dots first: no row is written before every dot is
// read, so the result is bit-for-bit that of the n steps in sequence, but the n dot products
// (and the exps) are independent and overlap in the pipeline instead of forming one chain.
constexpr int kW2VBatch = 64;

template <class T>
inline double w2v_logistic_rows(const T* l1, T* const* rows, const T* labels, int n, T* e,
                                index_t D, T alpha, bool want_loss, bool skip_saturated) {
  T f[kW2VBatch];
  for (int r = 0; r < n; ++r) f[r] = w2v_dot(l1, rows[r], D);
  double loss = 0.0;
  for (int r = 0; r < n; ++r) {
    const T a = std::abs(f[r]);
    if (skip_saturated && !want_loss && a >= T(kW2VMaxExp)) continue;
    const T z = std::exp(-a);
    if (want_loss) {
      const T m = labels[r] > T(0.5) ? -f[r] : f[r];
      loss += double(std::max(m, T(0)) + std::log1p(z));
    }
    if (skip_saturated && a >= T(kW2VMaxExp)) continue;
    const T sig = f[r] >= 0 ? T(1) / (T(1) + z) : z / (T(1) + z);
    const T g = alpha * (labels[r] - sig);
    T* out = rows[r];
#pragma omp simd
    for (index_t j = 0; j < D; ++j) {
      e[j] += g * out[j];
      out[j] += g * l1[j];
    }
  }
  return loss;
}

// Negative sampling for the prediction of `word` from l1: word with label 1, then each of the
// K negatives with label 0 (a negative equal to `word` is skipped, as in word2vec.c).
// e (D) accumulates the gradient step for l1; it is not cleared here. A repeated negative
// must see the row its first occurrence updated, so then the steps run one by one.
template <class T>
inline double w2v_ns(const T* l1, T* syn1neg, T* e, index_t D, std::int64_t word,
                     const std::int64_t* neg, index_t K, T alpha, bool want_loss) {
  if (K + 1 <= kW2VBatch) {
    T* rows[kW2VBatch];
    T labels[kW2VBatch];
    std::int64_t ids[kW2VBatch];
    int n = 0;
    bool distinct = true;
    ids[n] = word, rows[n] = syn1neg + word * D, labels[n++] = T(1);
    for (index_t k = 0; k < K; ++k) {
      if (neg[k] == word) continue;
      for (int r = 1; r < n; ++r) distinct &= ids[r] != neg[k];
      ids[n] = neg[k], rows[n] = syn1neg + neg[k] * D, labels[n++] = T(0);
    }
    if (distinct) return w2v_logistic_rows(l1, rows, labels, n, e, D, alpha, want_loss, false);
  }
  double loss = w2v_logistic_step(l1, syn1neg + word * D, e, D, T(1), alpha, want_loss);
  for (index_t k = 0; k < K; ++k) {
    if (neg[k] == word) continue;
    loss += w2v_logistic_step(l1, syn1neg + neg[k] * D, e, D, T(0), alpha, want_loss);
  }
  return loss;
}

// Hierarchical softmax: one logistic step per inner node on the word's Huffman path,
// label 1 - code (word2vec.c's convention: code 0 means "go left", predicted with sigmoid);
// saturated nodes (|f| >= 6) are not updated, as in word2vec.c. The nodes of a tree path are
// distinct (`distinct`), so they run in batches; arbitrary points run one by one.
template <class T>
inline double w2v_hs(const T* l1, T* syn1, T* e, index_t D, const std::int32_t* points,
                     const std::uint8_t* codes, index_t L, T alpha, bool want_loss,
                     bool distinct = true) {
  double loss = 0.0;
  if (!distinct) {
    for (index_t d = 0; d < L; ++d)
      loss += w2v_logistic_step(l1, syn1 + index_t(points[d]) * D, e, D, T(1) - T(codes[d]),
                                alpha, want_loss, true);
    return loss;
  }
  T* rows[kW2VBatch];
  T labels[kW2VBatch];
  for (index_t d0 = 0; d0 < L; d0 += kW2VBatch) {
    const int n = int(std::min<index_t>(kW2VBatch, L - d0));
    for (int r = 0; r < n; ++r) {
      rows[r] = syn1 + index_t(points[d0 + r]) * D;
      labels[r] = T(1) - T(codes[d0 + r]);
    }
    loss += w2v_logistic_rows(l1, rows, labels, n, e, D, alpha, want_loss, true);
  }
  return loss;
}

// ---------------------------------------------------------------------------------------
// The four single-example updates (in place), exposed as nnkern.ops.word2vec_*.
// work: 2*D scratch values. Return the example's log-loss.

// Skip-gram: the input row syn0[context] predicts `word`.
template <class T>
double word2vec_sg_ns(T* syn0, T* syn1neg, index_t D, std::int64_t word, std::int64_t context,
                      const std::int64_t* neg, index_t K, T alpha, T* work);
template <class T>
double word2vec_sg_hs(T* syn0, T* syn1, index_t D, std::int64_t context,
                      const std::int32_t* points, const std::uint8_t* codes, index_t L, T alpha,
                      T* work);
// CBOW: the mean (cbow_mean) or sum of syn0[ctx[0..C)] predicts `word`. With the mean each
// context row receives the whole gradient step, with the sum 1/C of it (gensim's convention).
template <class T>
double word2vec_cbow_ns(T* syn0, T* syn1neg, index_t D, std::int64_t word,
                        const std::int64_t* ctx, index_t C, const std::int64_t* neg, index_t K,
                        T alpha, bool cbow_mean, T* work);
template <class T>
double word2vec_cbow_hs(T* syn0, T* syn1, index_t D, const std::int64_t* ctx, index_t C,
                        const std::int32_t* points, const std::uint8_t* codes, index_t L,
                        T alpha, bool cbow_mean, T* work);

// ---------------------------------------------------------------------------------------
// Training on one job: a run of sentences of in-vocabulary token ids.

// What stays fixed during training: the weights and the sampling tables.
template <class T>
struct W2VModel {
  T* syn0 = nullptr;        // (V, D)
  T* syn1neg = nullptr;     // (V, D) or nullptr when negative == 0
  T* syn1 = nullptr;        // (V - 1, D) or nullptr when !hs
  index_t V = 0, D = 0;
  // Subsampling: word w is kept when a uniform 32-bit draw is < keep[w] (keep[w] = 2^32 means
  // always; stored as uint64 so that "always" is exact).
  const std::uint64_t* keep = nullptr;  // (V,)
  // Alias table of the noise distribution: draw i uniform in [0, V), keep i when a 32-bit
  // draw is < alias_prob[i], else take alias_idx[i]. Two draws, O(1).
  const std::uint32_t* alias_prob = nullptr;  // (V,)
  const std::int32_t* alias_idx = nullptr;    // (V,)
  // Huffman paths in CSR form: word w's nodes are points[code_off[w] .. code_off[w + 1]).
  const std::int64_t* code_off = nullptr;  // (V + 1,)
  const std::int32_t* points = nullptr;
  const std::uint8_t* codes = nullptr;
  int window = 5;
  int negative = 5;
  bool sg = false, hs = false, cbow_mean = true, compute_loss = true;
};

// One job: tokens (n,) split into S sentences at sent_off (S + 1,). The first `lead` tokens
// of the first sentence and the last `trail` of the last are context only (they belong to a
// neighbouring job of the same long sentence), so a sentence of any length can be split over
// jobs without losing any window. alpha falls linearly from alpha0 to alpha1 over the job's
// center tokens. Randomness (subsampling, window reduction, negatives) comes from `seed`.
struct W2VJob {
  const std::int32_t* tokens = nullptr;
  index_t n = 0;
  const std::int64_t* sent_off = nullptr;
  index_t S = 0;
  index_t lead = 0, trail = 0;
  double alpha0 = 0.025, alpha1 = 0.025;
  std::uint64_t seed = 1;
};

struct W2VResult {
  double loss = 0.0;          // summed log-loss over all examples
  std::int64_t examples = 0;  // predictions made (pairs for SG, windows for CBOW)
  std::int64_t words = 0;     // center tokens kept after subsampling
};

template <class T>
W2VResult w2v_train_job(const W2VModel<T>& m, const W2VJob& job);

// n draws from the alias table exactly as training draws negatives (seeded like a job), so
// tests can check the sampled distribution itself.
void w2v_draw_negatives(const std::uint32_t* alias_prob, const std::int32_t* alias_idx, index_t V,
                        std::uint64_t seed, std::int64_t* out, index_t n);

}  // namespace nnkern
