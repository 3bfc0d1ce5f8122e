// word2vec (Mikolov et al. 2013): skip-gram and CBOW, negative sampling and hierarchical
// softmax. The single-example updates below are the whole of the math; the training loop
// (w2v_train_job) only chooses which examples to feed them, as word2vec.c and gensim do.
//
// Shapes (glossary in common.hpp): syn0 (V, D) input vectors, syn1neg (V, D) output vectors
// for negative sampling, syn1 (V - 1, D) inner-node vectors of the Huffman tree for
// hierarchical softmax. Every row is contiguous, so an update touches D consecutive values.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>
#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

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

// sigmoid(f), and the log-loss -log sigmoid(+-f) of `label`, both from z = exp(-|f|).
template <class T>
inline T w2v_sigmoid(T f, T z) {
  return f >= 0 ? T(1) / (T(1) + z) : z / (T(1) + z);
}
// The log-loss softplus(-f) for label 1, softplus(f) for 0, as max(-+f, 0) + log1p(z);
// w2v_log_loss_linear is its max(-+f, 0) part.
template <class T>
inline T w2v_log_loss_linear(T f, T label) {
  return std::max(label > T(0.5) ? -f : f, T(0));
}
template <class T>
inline double w2v_log_loss(T f, T label, T z) {
  return double(w2v_log_loss_linear(f, label) + std::log1p(z));
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
  if (skip_saturated && std::abs(f) >= T(kW2VMaxExp)) return want_loss ? w2v_log_loss(f, label, z) : 0.0;
  const T g = alpha * (label - w2v_sigmoid(f, z));
#pragma omp simd
  for (index_t j = 0; j < D; ++j) {
    e[j] += g * out[j];
    out[j] += g * l1[j];
  }
  return want_loss ? w2v_log_loss(f, label, z) : 0.0;
}

// The same steps over n *distinct* rows, dots first: no row is written before every dot is
// read, so the result is bit-for-bit that of the n steps in sequence, but the n dot products
// (and the exps) are independent and overlap in the pipeline instead of forming one chain.
constexpr int kW2VBatch = 64;

#if defined(__AVX512F__)
// float on AVX-512 (below): a chunk of l1 and e held in registers.
inline double w2v_logistic_rows_avx512(const float* l1, float* const* rows, const float* labels, int n,
                                float* e, index_t D, float alpha, bool want_loss,
                                bool skip_saturated);
#endif

template <class T>
inline double w2v_logistic_rows(const T* l1, T* const* rows, const T* labels, int n, T* e,
                                index_t D, T alpha, bool want_loss, bool skip_saturated) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>)
    return w2v_logistic_rows_avx512(l1, rows, labels, n, e, D, alpha, want_loss, skip_saturated);
#endif
  T f[kW2VBatch];
  for (int r = 0; r < n; ++r) f[r] = w2v_dot(l1, rows[r], D);
  // The loss is the sum of w2v_log_loss over the rows, its log1p terms taken as the log of
  // the product of the (1 + z) (each in (1, 2], so n <= 64 of them stay far from overflow):
  // one log per call, where a scalar log1p per row cost 12% of a skip-gram run.
  double loss = 0.0, prod = 1.0;
  for (int r = 0; r < n; ++r) {
    const T a = std::abs(f[r]);
    if (skip_saturated && !want_loss && a >= T(kW2VMaxExp)) continue;
    const T z = std::exp(-a);
    if (want_loss) {
      loss += double(w2v_log_loss_linear(f[r], labels[r]));
      prod *= 1.0 + double(z);
    }
    if (skip_saturated && a >= T(kW2VMaxExp)) continue;
    const T g = alpha * (labels[r] - w2v_sigmoid(f[r], z));
    T* out = rows[r];
#pragma omp simd
    for (index_t j = 0; j < D; ++j) {
      e[j] += g * out[j];
      out[j] += g * l1[j];
    }
  }
  return want_loss ? loss + std::log(prod) : 0.0;
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

// Whether the L path nodes are distinct (the single-example updates take arbitrary points).
inline bool all_distinct(const std::int32_t* points, index_t L) {
  std::vector<std::int32_t> p(points, points + L);
  std::sort(p.begin(), p.end());
  return std::adjacent_find(p.begin(), p.end()) == p.end();
}

// Skip-gram with hierarchical softmax over one whole window. Every context row of the
// window predicts the same center word, so all C examples share that word's L path nodes
// (the sharing Ji et al. exploit for negative samples), and the window is a pair of small
// matrix products. Every dot product reads the rows as they were when the window started,
// and each node row and each context row is written once, instead of each node C times:
//   f[d][c] = syn0[ctx[c]] . syn1[p_d],   g[d][c] = alpha (1 - code_d - sigmoid(f[d][c]))
//   syn1[p_d]    += sum_c g[d][c] syn0[ctx[c]]   (context rows before this window's step)
//   syn0[ctx[c]] += sum_d g[d][c] syn1[p_d]      (node rows before this window's step)
// with g = 0 for saturated nodes (|f| >= 6), as in w2v_hs. The one-by-one loop differs in
// that a later context sees the nodes an earlier one moved: a difference of order alpha^2
// per window. A context word that occurs twice gets both steps. The path's nodes must be
// distinct (a tree path is). work: C * (kW2VChunk + L) values.
constexpr index_t kW2VChunk = 128;  // D is processed in chunks of this many values

// The window's two phases on columns [j0, j0 + n) of every row, n <= kW2VChunk: the dots'
// partial sums into F (L, C), and the updates with the gradients G (L, C) (E: C x n).
template <class T>
inline void w2v_window_dots(const T* syn0, const T* syn1, index_t D, index_t j0, index_t n,
                            const std::int64_t* ctx, index_t C, const std::int32_t* points,
                            index_t L, T* F) {
  for (index_t d = 0; d < L; ++d) {
    const T* node = syn1 + index_t(points[d]) * D + j0;
    for (index_t c = 0; c < C; ++c) F[d * C + c] += w2v_dot(syn0 + ctx[c] * D + j0, node, n);
  }
}

template <class T>
inline void w2v_window_update(T* syn0, T* syn1, index_t D, index_t j0, index_t n,
                              const std::int64_t* ctx, index_t C, const std::int32_t* points,
                              index_t L, const T* G, T* E) {
  std::fill(E, E + C * n, T(0));
  for (index_t d = 0; d < L; ++d) {
    T* node = syn1 + index_t(points[d]) * D + j0;
    const T* g = G + d * C;
    for (index_t c = 0; c < C; ++c) {  // E first: it needs the node as it was
      if (g[c] == T(0)) continue;
      T* e = E + c * n;
      const T gc = g[c];
#pragma omp simd
      for (index_t j = 0; j < n; ++j) e[j] += gc * node[j];
    }
    for (index_t c = 0; c < C; ++c) {
      if (g[c] == T(0)) continue;
      const T* x = syn0 + ctx[c] * D + j0;
      const T gc = g[c];
#pragma omp simd
      for (index_t j = 0; j < n; ++j) node[j] += gc * x[j];
    }
  }
  for (index_t c = 0; c < C; ++c) {
    T* x = syn0 + ctx[c] * D + j0;
    const T* e = E + c * n;
#pragma omp simd
    for (index_t j = 0; j < n; ++j) x[j] += e[j];
  }
}

#if defined(__AVX512F__)
// float on AVX-512: a chunk's node row stays in NK registers (the last one masked) while it
// meets every context row, so each row is loaded once per product and no loop has a
// remainder. About twice the speed of the generic loops above (measured in cache).
namespace w2v_avx512 {
template <int NK>
struct Rows {
  __mmask16 tail;
  explicit Rows(index_t n) : tail(__mmask16((1u << (n - (NK - 1) * 16)) - 1)) {}
  __m512 load(const float* p, int k) const {
    return k == NK - 1 ? _mm512_maskz_loadu_ps(tail, p + k * 16) : _mm512_loadu_ps(p + k * 16);
  }
  void store(float* p, int k, __m512 v) const {
    if (k == NK - 1) _mm512_mask_storeu_ps(p + k * 16, tail, v);
    else _mm512_storeu_ps(p + k * 16, v);
  }
};

// The dot of a chunk of row o with NK registers v, in two accumulators.
template <int NK>
inline float dot_regs(const Rows<NK>& r, const float* o, const __m512* v) {
  __m512 a0 = _mm512_mul_ps(r.load(o, 0), v[0]), a1 = _mm512_setzero_ps();
#pragma GCC unroll 8
  for (int k = 1; k < NK; ++k) {
    if (k & 1) a1 = _mm512_fmadd_ps(r.load(o, k), v[k], a1);
    else a0 = _mm512_fmadd_ps(r.load(o, k), v[k], a0);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

template <int NK>
inline void dots(const float* syn0, const float* syn1, index_t D, index_t j0, index_t n,
                 const std::int64_t* ctx, index_t C, const std::int32_t* points, index_t L,
                 float* F) {
  const Rows<NK> r(n);
  for (index_t d = 0; d < L; ++d) {
    const float* node = syn1 + index_t(points[d]) * D + j0;
    __m512 v[NK];
#pragma GCC unroll 8
    for (int k = 0; k < NK; ++k) v[k] = r.load(node, k);
    for (index_t c = 0; c < C; ++c) F[d * C + c] += dot_regs(r, syn0 + ctx[c] * D + j0, v);
  }
}

template <int NK>
inline void update(float* syn0, float* syn1, index_t D, index_t j0, index_t n,
                   const std::int64_t* ctx, index_t C, const std::int32_t* points, index_t L,
                   const float* G, float* E) {
  const Rows<NK> r(n);
  for (index_t i = 0; i < C * NK * 16; i += 16) _mm512_storeu_ps(E + i, _mm512_setzero_ps());
  for (index_t d = 0; d < L; ++d) {
    float* node = syn1 + index_t(points[d]) * D + j0;
    const float* g = G + d * C;
    __m512 v[NK], w[NK];
#pragma GCC unroll 8
    for (int k = 0; k < NK; ++k) w[k] = v[k] = r.load(node, k);
    for (index_t c = 0; c < C; ++c) {
      if (g[c] == 0.0f) continue;
      const __m512 gc = _mm512_set1_ps(g[c]);
      const float* x = syn0 + ctx[c] * D + j0;
      float* e = E + c * NK * 16;
#pragma GCC unroll 8
      for (int k = 0; k < NK; ++k) {
        _mm512_storeu_ps(e + k * 16, _mm512_fmadd_ps(gc, v[k], _mm512_loadu_ps(e + k * 16)));
        w[k] = _mm512_fmadd_ps(gc, r.load(x, k), w[k]);
      }
    }
#pragma GCC unroll 8
    for (int k = 0; k < NK; ++k) r.store(node, k, w[k]);
  }
  for (index_t c = 0; c < C; ++c) {
    float* x = syn0 + ctx[c] * D + j0;
    const float* e = E + c * NK * 16;
#pragma GCC unroll 8
    for (int k = 0; k < NK; ++k) r.store(x, k, _mm512_add_ps(r.load(x, k), _mm512_loadu_ps(e + k * 16)));
  }
}

// The gradient scales alpha (label - sigmoid(f)) of the `lanes` of 16 dots f, with sigmoid
// taken stably from z = exp(-|f|), and zero where |f| >= kW2VMaxExp when skip_saturated
// (`ok` has the lanes that were not). With want_loss, the lanes' log-losses softplus(-+f):
// their max(-+f, 0) parts are added to `linear`, and the product of their (1 + z), each in
// (1, 2], is returned in `log_arg` (its log is the log1p parts: one log per call).
inline __m512 scales16(__m512 f, __m512 lab, float alpha, __mmask16 lanes, bool skip_saturated,
                       bool want_loss, double& linear, double& log_arg, __mmask16& ok) {
  namespace ei = Eigen::internal;
  const __m512 one = _mm512_set1_ps(1.0f), zero = _mm512_setzero_ps();
  const __m512 a = _mm512_abs_ps(f);
  ok = _mm512_mask_cmp_ps_mask(lanes, a, _mm512_set1_ps(float(kW2VMaxExp)), _CMP_LT_OQ);
  const __m512 z = ei::pexp(_mm512_sub_ps(zero, a));  // in (0, 1]
  const __m512 q = _mm512_div_ps(one, _mm512_add_ps(one, z));
  const __m512 sig = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(f, zero, _CMP_GE_OQ), _mm512_mul_ps(z, q), q);
  const __m512 g = _mm512_mul_ps(_mm512_set1_ps(alpha), _mm512_sub_ps(lab, sig));
  if (want_loss) {  // softplus(-f) for label 1, softplus(f) for label 0
    const __m512 m = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(lab, _mm512_set1_ps(0.5f), _CMP_GT_OQ),
                                          f, _mm512_sub_ps(zero, f));
    linear += double(_mm512_mask_reduce_add_ps(lanes, _mm512_max_ps(m, zero)));
    log_arg = double(_mm512_reduce_mul_ps(_mm512_mask_blend_ps(lanes, one, _mm512_add_ps(one, z))));
  }
  return _mm512_maskz_mov_ps(skip_saturated ? ok : lanes, g);
}

// The gradient scales of one node's row of C dots, 16 at a time (the scalar loop in
// w2v_sg_hs_window does the same per value); returns how many it did (all of them).
inline index_t grads(float* g, index_t C, float label, float alpha, bool want_loss, double& loss,
                     bool& any) {
  const __m512 lab = _mm512_set1_ps(label);
  for (index_t c0 = 0; c0 < C; c0 += 16) {
    const __mmask16 lanes = __mmask16((1u << std::min<index_t>(16, C - c0)) - 1);
    double log_arg = 1.0;
    __mmask16 ok;
    const __m512 gv = scales16(_mm512_maskz_loadu_ps(lanes, g + c0), lab, alpha, lanes, true,
                               want_loss, loss, log_arg, ok);
    _mm512_mask_storeu_ps(g + c0, lanes, gv);
    any |= ok != 0;
    if (want_loss) loss += std::log(log_arg);
  }
  return C;
}

// f<NK>() for the chunk's NK = ceil(n / 16) in [1, 8].
template <class F>
inline void with_nk(index_t n, F&& f) {
  switch ((n + 15) / 16) {
    case 1: f(std::integral_constant<int, 1>{}); break;
    case 2: f(std::integral_constant<int, 2>{}); break;
    case 3: f(std::integral_constant<int, 3>{}); break;
    case 4: f(std::integral_constant<int, 4>{}); break;
    case 5: f(std::integral_constant<int, 5>{}); break;
    case 6: f(std::integral_constant<int, 6>{}); break;
    case 7: f(std::integral_constant<int, 7>{}); break;
    default: f(std::integral_constant<int, 8>{}); break;
  }
}

// One example's logistic steps over n distinct rows (w2v_logistic_rows), a chunk of 128
// columns at a time. In a chunk's dots its part of l1 stays in NK registers while it meets
// every row; in its updates the same part of l1 and of the gradient step e stay there while
// every row moves. Each output row is loaded twice (for its dot, then for its update) and
// stored once, where the generic loops also reload l1 and load and store e once per row.
// The n gradient scales are computed 16 at a time (exp as Eigen's pexp) instead of one
// scalar exp per row.
template <int NK>
inline void rows_dots(const float* l1, float* const* rows, int n, index_t j0, index_t m, float* f) {
  const Rows<NK> r(m);
  __m512 x[NK];
#pragma GCC unroll 8
  for (int k = 0; k < NK; ++k) x[k] = r.load(l1 + j0, k);
  for (int i = 0; i < n; ++i) f[i] += dot_regs(r, rows[i] + j0, x);
}

template <int NK>
inline void rows_update(const float* l1, float* const* rows, int n, index_t j0, index_t m,
                        const float* g, float* e) {
  const Rows<NK> r(m);
  __m512 x[NK], acc[NK];
#pragma GCC unroll 8
  for (int k = 0; k < NK; ++k) {
    x[k] = r.load(l1 + j0, k);
    acc[k] = r.load(e + j0, k);
  }
  for (int i = 0; i < n; ++i) {
    if (g[i] == 0.0f) continue;  // a saturated node (or a step too small to move anything)
    const __m512 gi = _mm512_set1_ps(g[i]);
    float* o = rows[i] + j0;
#pragma GCC unroll 8
    for (int k = 0; k < NK; ++k) {
      const __m512 v = r.load(o, k);
      acc[k] = _mm512_fmadd_ps(gi, v, acc[k]);
      r.store(o, k, _mm512_fmadd_ps(gi, x[k], v));
    }
  }
#pragma GCC unroll 8
  for (int k = 0; k < NK; ++k) r.store(e + j0, k, acc[k]);
}
}  // namespace w2v_avx512

inline double w2v_logistic_rows_avx512(const float* l1, float* const* rows, const float* labels,
                                       int n, float* e, index_t D, float alpha, bool want_loss,
                                       bool skip_saturated) {
  namespace w = w2v_avx512;
  alignas(64) float g[kW2VBatch] = {};
  for (index_t j0 = 0; j0 < D; j0 += kW2VChunk) {
    const index_t m = std::min(kW2VChunk, D - j0);
    w::with_nk(m, [&](auto nk) { w::rows_dots<decltype(nk)::value>(l1, rows, n, j0, m, g); });
  }
  double loss = 0.0, prod = 1.0;  // n <= 64 factors of (1, 2]: no overflow
  for (int i0 = 0; i0 < n; i0 += 16) {  // the dots in g become the gradient scales
    const __mmask16 lanes = __mmask16((1u << std::min(16, n - i0)) - 1);
    double log_arg = 1.0;
    __mmask16 ok;
    const __m512 gv = w::scales16(_mm512_maskz_loadu_ps(lanes, g + i0),
                                  _mm512_maskz_loadu_ps(lanes, labels + i0), alpha, lanes,
                                  skip_saturated, want_loss, loss, log_arg, ok);
    _mm512_mask_storeu_ps(g + i0, lanes, gv);
    prod *= log_arg;
  }
  for (index_t j0 = 0; j0 < D; j0 += kW2VChunk) {
    const index_t m = std::min(kW2VChunk, D - j0);
    w::with_nk(m, [&](auto nk) { w::rows_update<decltype(nk)::value>(l1, rows, n, j0, m, g, e); });
  }
  return want_loss ? loss + std::log(prod) : 0.0;
}

template <>
inline void w2v_window_dots<float>(const float* syn0, const float* syn1, index_t D, index_t j0,
                                   index_t n, const std::int64_t* ctx, index_t C,
                                   const std::int32_t* points, index_t L, float* F) {
  w2v_avx512::with_nk(n, [&](auto nk) {
    w2v_avx512::dots<decltype(nk)::value>(syn0, syn1, D, j0, n, ctx, C, points, L, F);
  });
}

template <>
inline void w2v_window_update<float>(float* syn0, float* syn1, index_t D, index_t j0, index_t n,
                                     const std::int64_t* ctx, index_t C,
                                     const std::int32_t* points, index_t L, const float* G,
                                     float* E) {
  w2v_avx512::with_nk(n, [&](auto nk) {
    w2v_avx512::update<decltype(nk)::value>(syn0, syn1, D, j0, n, ctx, C, points, L, G, E);
  });
}
#endif

#if !defined(__AVX512F__) && defined(__AVX2__) && defined(__FMA__)
// float on AVX2: the same scheme as the AVX-512 code above with 8 lanes, over sub-chunks of
// at most 64 columns so that a node row's NK <= 8 vectors stay in registers beside the
// accumulators (16 registers). The gradient scales are vectorised too (8 at a time, exp as
// Eigen's pexp; the scalar loop takes the rest): with scalar exp they cost several times the
// window's dot products on one Zen 3 core.
namespace w2v_avx2 {
template <int NK>
struct Rows {
  __m256i tail;
  explicit Rows(index_t n) {
    const int m = int(n - (NK - 1) * 8);  // 1..8 lanes in the last vector
    alignas(32) std::int32_t b[8];
    for (int i = 0; i < 8; ++i) b[i] = i < m ? -1 : 0;
    tail = _mm256_load_si256(reinterpret_cast<const __m256i*>(b));
  }
  __m256 load(const float* p, int k) const {
    return k == NK - 1 ? _mm256_maskload_ps(p + k * 8, tail) : _mm256_loadu_ps(p + k * 8);
  }
  void store(float* p, int k, __m256 v) const {
    if (k == NK - 1) _mm256_maskstore_ps(p + k * 8, tail, v);
    else _mm256_storeu_ps(p + k * 8, v);
  }
};

inline float hsum(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

template <int NK>
inline void dots(const float* syn0, const float* syn1, index_t D, index_t j0, index_t n,
                 const std::int64_t* ctx, index_t C, const std::int32_t* points, index_t L,
                 float* F) {
  const Rows<NK> r(n);
  for (index_t d = 0; d < L; ++d) {
    const float* node = syn1 + index_t(points[d]) * D + j0;
    __m256 v[NK];
#pragma GCC unroll 8
    for (int k = 0; k < NK; ++k) v[k] = r.load(node, k);
    for (index_t c = 0; c < C; ++c) {
      const float* x = syn0 + ctx[c] * D + j0;
      __m256 a0 = _mm256_mul_ps(r.load(x, 0), v[0]), a1 = _mm256_setzero_ps();
#pragma GCC unroll 8
      for (int k = 1; k < NK; ++k) {
        if (k & 1) a1 = _mm256_fmadd_ps(r.load(x, k), v[k], a1);
        else a0 = _mm256_fmadd_ps(r.load(x, k), v[k], a0);
      }
      F[d * C + c] += hsum(_mm256_add_ps(a0, a1));
    }
  }
}

template <int NK>
inline void update(float* syn0, float* syn1, index_t D, index_t j0, index_t n,
                   const std::int64_t* ctx, index_t C, const std::int32_t* points, index_t L,
                   const float* G, float* E) {
  const Rows<NK> r(n);
  for (index_t i = 0; i < C * NK * 8; i += 8) _mm256_storeu_ps(E + i, _mm256_setzero_ps());
  for (index_t d = 0; d < L; ++d) {
    float* node = syn1 + index_t(points[d]) * D + j0;
    const float* g = G + d * C;
    __m256 v[NK], w[NK];
#pragma GCC unroll 8
    for (int k = 0; k < NK; ++k) w[k] = v[k] = r.load(node, k);
    for (index_t c = 0; c < C; ++c) {
      if (g[c] == 0.0f) continue;
      const __m256 gc = _mm256_set1_ps(g[c]);
      const float* x = syn0 + ctx[c] * D + j0;
      float* e = E + c * NK * 8;
#pragma GCC unroll 8
      for (int k = 0; k < NK; ++k) {
        _mm256_storeu_ps(e + k * 8, _mm256_fmadd_ps(gc, v[k], _mm256_loadu_ps(e + k * 8)));
        w[k] = _mm256_fmadd_ps(gc, r.load(x, k), w[k]);
      }
    }
#pragma GCC unroll 8
    for (int k = 0; k < NK; ++k) r.store(node, k, w[k]);
  }
  for (index_t c = 0; c < C; ++c) {
    float* x = syn0 + ctx[c] * D + j0;
    const float* e = E + c * NK * 8;
#pragma GCC unroll 8
    for (int k = 0; k < NK; ++k) r.store(x, k, _mm256_add_ps(r.load(x, k), _mm256_loadu_ps(e + k * 8)));
  }
}

// The gradient scales of one node's row of C dots, 8 at a time; returns how many it did
// (the whole vectors), the caller's scalar loop does the rest the same way.
inline index_t grads(float* g, index_t C, float label, float alpha, bool want_loss, double& loss,
                     bool& any) {
  namespace ei = Eigen::internal;
  const __m256 one = _mm256_set1_ps(1.0f), lim = _mm256_set1_ps(float(kW2VMaxExp));
  const __m256 lab = _mm256_set1_ps(label), al = _mm256_set1_ps(alpha), zero = _mm256_setzero_ps();
  const __m256 sign = _mm256_set1_ps(-0.0f);
  index_t c0 = 0;
  for (; c0 + 8 <= C; c0 += 8) {
    const __m256 f = _mm256_loadu_ps(g + c0);
    const __m256 a = _mm256_andnot_ps(sign, f);
    const __m256 ok = _mm256_cmp_ps(a, lim, _CMP_LT_OQ);
    const __m256 z = ei::pexp(_mm256_sub_ps(zero, a));  // in (0, 1]
    const __m256 r = _mm256_div_ps(one, _mm256_add_ps(one, z));
    const __m256 sig = _mm256_blendv_ps(r, _mm256_mul_ps(z, r), _mm256_cmp_ps(f, zero, _CMP_LT_OQ));
    _mm256_storeu_ps(g + c0, _mm256_and_ps(ok, _mm256_mul_ps(al, _mm256_sub_ps(lab, sig))));
    any |= _mm256_movemask_ps(ok) != 0;
    if (want_loss) {  // softplus(-f) for label 1, softplus(f) for label 0
      const __m256 m = label > 0.5f ? _mm256_sub_ps(zero, f) : f;
      loss += double(hsum(_mm256_add_ps(_mm256_max_ps(m, zero), ei::plog1p(z))));
    }
  }
  return c0;
}

// f<NK>(m) over sub-chunks of at most 64 columns of [0, n): m columns, NK = ceil(m / 8).
template <class F>
inline void by_subchunks(index_t n, F&& f) {
  for (index_t s = 0; s < n; s += 64) {
    const index_t m = std::min<index_t>(64, n - s);
    switch ((m + 7) / 8) {
      case 1: f(std::integral_constant<int, 1>{}, s, m); break;
      case 2: f(std::integral_constant<int, 2>{}, s, m); break;
      case 3: f(std::integral_constant<int, 3>{}, s, m); break;
      case 4: f(std::integral_constant<int, 4>{}, s, m); break;
      case 5: f(std::integral_constant<int, 5>{}, s, m); break;
      case 6: f(std::integral_constant<int, 6>{}, s, m); break;
      case 7: f(std::integral_constant<int, 7>{}, s, m); break;
      default: f(std::integral_constant<int, 8>{}, s, m); break;
    }
  }
}
}  // namespace w2v_avx2

template <>
inline void w2v_window_dots<float>(const float* syn0, const float* syn1, index_t D, index_t j0,
                                   index_t n, const std::int64_t* ctx, index_t C,
                                   const std::int32_t* points, index_t L, float* F) {
  w2v_avx2::by_subchunks(n, [&](auto nk, index_t s, index_t m) {
    w2v_avx2::dots<decltype(nk)::value>(syn0, syn1, D, j0 + s, m, ctx, C, points, L, F);
  });
}

template <>
inline void w2v_window_update<float>(float* syn0, float* syn1, index_t D, index_t j0, index_t n,
                                     const std::int64_t* ctx, index_t C,
                                     const std::int32_t* points, index_t L, const float* G,
                                     float* E) {
  w2v_avx2::by_subchunks(n, [&](auto nk, index_t s, index_t m) {
    w2v_avx2::update<decltype(nk)::value>(syn0, syn1, D, j0 + s, m, ctx, C, points, L, G, E);
  });
}
#endif

template <class T>
inline double w2v_sg_hs_window(T* syn0, T* syn1, index_t D, const std::int64_t* ctx, index_t C,
                               const std::int32_t* points, const std::uint8_t* codes, index_t L,
                               T alpha, bool want_loss, T* work) {
  if (C == 0 || L == 0) return 0.0;
  T* G = work;          // (L, C): the dots, then the gradient scales
  T* E = work + L * C;  // (C, chunk): the context rows' steps
  std::fill(G, G + L * C, T(0));
  for (index_t j0 = 0; j0 < D; j0 += kW2VChunk)
    w2v_window_dots<T>(syn0, syn1, D, j0, std::min(kW2VChunk, D - j0), ctx, C, points, L, G);
  double loss = 0.0;
  bool any = false;
  for (index_t d = 0; d < L; ++d) {
    const T label = T(1) - T(codes[d]);
    index_t c = 0;
#if defined(__AVX512F__)
    if constexpr (std::is_same_v<T, float>) c = w2v_avx512::grads(G + d * C, C, label, alpha, want_loss, loss, any);
#elif defined(__AVX2__) && defined(__FMA__)
    if constexpr (std::is_same_v<T, float>) c = w2v_avx2::grads(G + d * C, C, label, alpha, want_loss, loss, any);
#endif
    for (; c < C; ++c) {
      T& g = G[d * C + c];
      const T f = g, a = std::abs(f);
      g = T(0);
      if (!want_loss && a >= T(kW2VMaxExp)) continue;
      const T z = std::exp(-a);
      if (want_loss) loss += w2v_log_loss(f, label, z);
      if (a >= T(kW2VMaxExp)) continue;
      g = alpha * (label - w2v_sigmoid(f, z));
      any = true;
    }
  }
  if (any)
    for (index_t j0 = 0; j0 < D; j0 += kW2VChunk)
      w2v_window_update<T>(syn0, syn1, D, j0, std::min(kW2VChunk, D - j0), ctx, C, points, L, G, E);
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

// One slot of the noise distribution's alias table. The two halves sit together because a
// draw reads both at a random slot: as two arrays they were two cache misses per negative.
struct W2VAlias {
  std::uint32_t prob;
  std::int32_t idx;
};

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
  // draw is < alias[i].prob, else take alias[i].idx. Two draws, O(1), and one cache line.
  const W2VAlias* alias = nullptr;  // (V,)
  // Huffman paths in CSR form: word w's nodes are points[code_off[w] .. code_off[w + 1]).
  const std::int64_t* code_off = nullptr;  // (V + 1,)
  const std::int32_t* points = nullptr;
  const std::uint8_t* codes = nullptr;
  int window = 5;
  int negative = 5;
  bool sg = false, hs = false, cbow_mean = true, compute_loss = true;
  index_t longest_path = 0;  // the longest Huffman path (max over w of its code length)
  // Skip-gram with hierarchical softmax alone: each window as one batch (w2v_sg_hs_window).
  bool window_batch = false;
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
void w2v_draw_negatives(const W2VAlias* alias, index_t V,
                        std::uint64_t seed, std::int64_t* out, index_t n);

}  // namespace nnkern
