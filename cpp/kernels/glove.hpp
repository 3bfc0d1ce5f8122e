// GloVe (Pennington, Socher and Manning 2014): co-occurrence counting and AdaGrad training,
// following the reference implementation (glove.c / cooccur.c).
//
// Shapes: W, C (V, D) word and context vectors; bw, bc (V,) their biases; gW, gC, gbw, gbc the
// AdaGrad sums of squared gradients, same shapes, starting at 1 as in glove.c.
// The co-occurrence matrix X (V, V) is sparse: nnz triplets (row, col, val) sorted by
// (row, col), never a dense V x V array.
#pragma once

#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "kernels/common.hpp"

namespace nnkern {

// One AdaGrad step on the pair (i, j) with count x (> 0):
//   diff = W_i . C_j + bw_i + bc_j - log x,   f = min(1, (x / x_max)^alpha)
//   loss = 0.5 f diff^2;  gradients  f diff C_j,  f diff W_i,  f diff (both biases)
// with AdaGrad exactly as the reference glove.c applies it (its current master), which is
// not textbook AdaGrad: a vector component takes the step u = lr clip(g), p -= u / sqrt(G_p),
// then G_p += u^2 (the accumulator sums squared *steps*, so lr also sets how fast the
// steps shrink); a bias takes p -= g / sqrt(G_p), then G_p += g^2, with no lr at all.
// Vector gradient components are clipped to [-kGloveClip, kGloveClip] (glove.c's
// grad_clip_value) and a non-finite diff skips the update, so no corpus produces NaN.
// Returns the loss (0 when skipped).
constexpr double kGloveClip = 100.0;

template <class T>
inline double glove_step(T* Wi, T* Cj, T* bwi, T* bcj, T* gWi, T* gCj, T* gbwi, T* gbcj,
                         index_t D, T x, T lr, T x_max, T alpha) {
  T dot = 0;
#pragma omp simd reduction(+ : dot)
  for (index_t d = 0; d < D; ++d) dot += Wi[d] * Cj[d];
  const T diff = dot + *bwi + *bcj - std::log(x);
  if (!std::isfinite(diff)) return 0.0;
  const T f = x > x_max ? T(1) : std::pow(x / x_max, alpha);
  const T fdiff = f * diff;
  const T clip = T(kGloveClip);
#pragma omp simd
  for (index_t d = 0; d < D; ++d) {
    const T u1 = lr * std::min(clip, std::max(-clip, fdiff * Cj[d]));
    const T u2 = lr * std::min(clip, std::max(-clip, fdiff * Wi[d]));
    Wi[d] -= u1 / std::sqrt(gWi[d]);
    Cj[d] -= u2 / std::sqrt(gCj[d]);
    gWi[d] += u1 * u1;
    gCj[d] += u2 * u2;
  }
  *bwi -= fdiff / std::sqrt(*gbwi);
  *bcj -= fdiff / std::sqrt(*gbcj);
  *gbwi += fdiff * fdiff;
  *gbcj += fdiff * fdiff;
  return 0.5 * double(f) * double(diff) * double(diff);
}

// Exposed as nnkern.ops.glove_update: one step in place. Returns the loss.
template <class T>
double glove_update(T* W, T* C, T* bw, T* bc, T* gW, T* gC, T* gbw, T* gbc, index_t D,
                    std::int64_t i, std::int64_t j, T x, T lr, T x_max, T alpha);

// One epoch over the nnz pairs in the order given (the caller shuffles the triplets
// themselves, so they are read sequentially), split into `threads` contiguous ranges trained
// concurrently without locks (Hogwild, as glove.c). Returns the summed loss (double, summed
// per thread and then in thread order).
double glove_epoch(float* W, float* C, float* bw, float* bc, float* gW, float* gC, float* gbw,
                   float* gbc, index_t D, const std::int32_t* rows, const std::int32_t* cols,
                   const float* vals, index_t nnz, float lr, float x_max, float alpha, int threads);

// Co-occurrence counting. Each worker slot owns its accumulator (no sharing, no locks):
// pairs of two frequent words (both ids < F) go to a dense F x F block, the rest to a buffer
// that is sorted and merged into a sorted, reduced (key, value) list when full.
class Cooccur {
 public:
  Cooccur(index_t V, int window, bool symmetric, int slots, index_t dense_words,
          std::size_t buffer_pairs);
  // Count one job of sentences (tokens split at sent_off) into `slot`. Each pair at
  // distance d <= window adds 1/d to X[center, left context] (and X[left, center] when
  // symmetric), as cooccur.c. The first `lead` tokens of the first sentence and the last
  // `trail` of the last are context only (a long sentence split over jobs, see
  // nnkern/embeddings/_corpus.py), so every pair is counted exactly once.
  void add(int slot, const std::int32_t* tokens, const std::int64_t* sent_off, index_t S,
           index_t lead, index_t trail);
  // Merge every slot into sorted triplets; the accumulators are released.
  void finish(std::vector<std::int32_t>& rows, std::vector<std::int32_t>& cols,
              std::vector<float>& vals);

 private:
  struct Slot {
    std::vector<float> dense;
    std::vector<std::pair<std::uint64_t, float>> buf;
    std::vector<std::uint64_t> keys;
    std::vector<float> vals;
  };
  void flush(Slot& s);
  inline void put(Slot& s, std::int32_t a, std::int32_t b, float w) {
    if (a < F_ && b < F_) {
      s.dense[std::size_t(a) * F_ + b] += w;
    } else {
      s.buf.emplace_back(std::uint64_t(a) * std::uint64_t(V_) + std::uint64_t(b), w);
      if (s.buf.size() >= cap_) flush(s);
    }
  }
  index_t V_, F_;
  int window_;
  bool symmetric_;
  std::size_t cap_;
  std::vector<Slot> slots_;
};

}  // namespace nnkern
