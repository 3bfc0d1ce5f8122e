#include "kernels/word2vec.hpp"

#include <algorithm>
#include <vector>

namespace nnkern {

namespace {

// word2vec.c's generator is a 64-bit LCG; we take the same multiplier family but return the
// high 32 bits only (the low bits of an LCG have short periods).
struct Lcg {
  std::uint64_t s;
  explicit Lcg(std::uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ULL + 0x632BE59BD9B4E019ULL) {}
  inline std::uint32_t next() {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    return std::uint32_t(s >> 32);
  }
  // Uniform in [0, n) by multiply-shift (n < 2^32).
  inline std::uint32_t below(std::uint32_t n) {
    return std::uint32_t((std::uint64_t(next()) * n) >> 32);
  }
};

// The noise draw of negative sampling: a uniform slot, then the slot's word or its alias.
inline std::int64_t alias_draw(Lcg& rng, const W2VAlias* alias, std::uint32_t V) {
  const std::uint32_t i = rng.below(V);
  const W2VAlias a = alias[i];
  return rng.next() < a.prob ? std::int64_t(i) : std::int64_t(a.idx);
}

template <class T>
inline void zero(T* e, index_t D) {
  std::fill(e, e + D, T(0));
}

template <class T>
inline void add_into(T* dst, const T* src, index_t D) {
#pragma omp simd
  for (index_t j = 0; j < D; ++j) dst[j] += src[j];
}

// CBOW's input: the mean or sum of the context rows into h (D).
template <class T>
inline void cbow_input(const T* syn0, index_t D, const std::int64_t* ctx, index_t C, bool mean,
                       T* h) {
  zero(h, D);
  for (index_t c = 0; c < C; ++c) add_into(h, syn0 + ctx[c] * D, D);
  if (mean) {
    const T inv = T(1) / T(C);
#pragma omp simd
    for (index_t j = 0; j < D; ++j) h[j] *= inv;
  }
}

// CBOW's backward: with the sum, each context row receives 1/C of the step (gensim).
template <class T>
inline void cbow_apply(T* syn0, index_t D, const std::int64_t* ctx, index_t C, bool mean, T* e) {
  if (!mean) {
    const T inv = T(1) / T(C);
#pragma omp simd
    for (index_t j = 0; j < D; ++j) e[j] *= inv;
  }
  for (index_t c = 0; c < C; ++c) add_into(syn0 + ctx[c] * D, e, D);
}

}  // namespace

// One example of either architecture around an objective(h, e) -> loss that adds its
// gradient step for h into e: skip-gram's h is the row syn0[context] itself, CBOW's the
// mean or sum of the context rows.
template <class T, class Objective>
double sg_example(T* syn0, index_t D, std::int64_t context, T* work, Objective&& objective) {
  T* l1 = syn0 + context * D;
  zero(work, D);
  const double loss = objective(l1, work);
  add_into(l1, work, D);
  return loss;
}

template <class T, class Objective>
double cbow_example(T* syn0, index_t D, const std::int64_t* ctx, index_t C, bool cbow_mean,
                    T* work, Objective&& objective) {
  if (C == 0) return 0.0;
  T* h = work;
  T* e = work + D;
  cbow_input(syn0, D, ctx, C, cbow_mean, h);
  zero(e, D);
  const double loss = objective(h, e);
  cbow_apply(syn0, D, ctx, C, cbow_mean, e);
  return loss;
}

template <class T>
double word2vec_sg_ns(T* syn0, T* syn1neg, index_t D, std::int64_t word, std::int64_t context,
                      const std::int64_t* neg, index_t K, T alpha, T* work) {
  return sg_example(syn0, D, context, work, [&](const T* h, T* e) {
    return w2v_ns<T>(h, syn1neg, e, D, word, neg, K, alpha, true);
  });
}

template <class T>
double word2vec_sg_hs(T* syn0, T* syn1, index_t D, std::int64_t context,
                      const std::int32_t* points, const std::uint8_t* codes, index_t L, T alpha,
                      T* work) {
  const bool distinct = all_distinct(points, L);
  return sg_example(syn0, D, context, work, [&](const T* h, T* e) {
    return w2v_hs<T>(h, syn1, e, D, points, codes, L, alpha, true, distinct);
  });
}

template <class T>
double word2vec_cbow_ns(T* syn0, T* syn1neg, index_t D, std::int64_t word,
                        const std::int64_t* ctx, index_t C, const std::int64_t* neg, index_t K,
                        T alpha, bool cbow_mean, T* work) {
  return cbow_example(syn0, D, ctx, C, cbow_mean, work, [&](const T* h, T* e) {
    return w2v_ns<T>(h, syn1neg, e, D, word, neg, K, alpha, true);
  });
}

template <class T>
double word2vec_cbow_hs(T* syn0, T* syn1, index_t D, const std::int64_t* ctx, index_t C,
                        const std::int32_t* points, const std::uint8_t* codes, index_t L,
                        T alpha, bool cbow_mean, T* work) {
  const bool distinct = all_distinct(points, L);
  return cbow_example(syn0, D, ctx, C, cbow_mean, work, [&](const T* h, T* e) {
    return w2v_hs<T>(h, syn1, e, D, points, codes, L, alpha, true, distinct);
  });
}

template <class T>
W2VResult w2v_train_job(const W2VModel<T>& m, const W2VJob& job) {
  const index_t D = m.D;
  const int K = m.negative;
  const bool want_loss = m.compute_loss;
  W2VResult res;
  Lcg rng(job.seed);

  // Scratch, allocated once per job: the kept tokens of one sentence (with a flag for
  // context-only tokens), the CBOW context list, the negatives and two D-vectors.
  const index_t longest = [&] {
    index_t l = 0;
    for (index_t s = 0; s < job.S; ++s) l = std::max(l, job.sent_off[s + 1] - job.sent_off[s]);
    return l;
  }();
  std::vector<std::int64_t> kept(longest);
  std::vector<std::int64_t> kept_pos(longest);  // raw center index, or -1 for context-only
  std::vector<std::int64_t> ctx(2 * std::max(m.window, 1));
  std::vector<std::int64_t> neg(std::max(K, 1));
  std::vector<T> work(2 * D);
  T* h = work.data();
  T* e = work.data() + D;
  // Skip-gram with hierarchical softmax alone trains whole windows (w2v_sg_hs_window), in
  // C * (kW2VChunk + L) values for the widest window and the longest path.
  const bool batch_windows = m.sg && m.hs && K == 0 && m.window_batch;
  std::vector<T> win(batch_windows ? 2 * m.window * (kW2VChunk + m.longest_path) : 0);

  const index_t n_centers = job.n - job.lead - job.trail;
  const double a0 = job.alpha0, da = n_centers > 0 ? (job.alpha1 - job.alpha0) / n_centers : 0.0;
  index_t center_idx = 0;  // raw (pre-subsampling) center tokens seen so far
  constexpr std::uint64_t kAlways = std::uint64_t(1) << 32;

  auto draw_negatives = [&]() {
    // Noise rows are random in a table far larger than the cache: ask for all of them
    // before the first is needed, so their misses overlap.
    for (int k = 0; k < K; ++k) {
      neg[k] = alias_draw(rng, m.alias, std::uint32_t(m.V));
      const char* row = reinterpret_cast<const char*>(m.syn1neg + neg[k] * D);
      for (index_t b = 0; b < index_t(D * sizeof(T)); b += 64) __builtin_prefetch(row + b, 1);
    }
  };
  // Both objectives add into e when both are on (word2vec.c allows hs=1 with negative>0).
  auto predict = [&](const T* l1, std::int64_t word, T alpha) {
    double loss = 0.0;
    if (m.hs) {
      const index_t o = m.code_off[word], L = m.code_off[word + 1] - o;
      loss += w2v_hs<T>(l1, m.syn1, e, D, m.points + o, m.codes + o, L, alpha, want_loss);
    }
    if (K > 0) {
      draw_negatives();
      loss += w2v_ns<T>(l1, m.syn1neg, e, D, word, neg.data(), K, alpha, want_loss);
    }
    return loss;
  };

  for (index_t s = 0; s < job.S; ++s) {
    const index_t b = job.sent_off[s], end = job.sent_off[s + 1];
    const index_t c_lo = s == 0 ? b + job.lead : b;
    const index_t c_hi = s == job.S - 1 ? end - job.trail : end;
    // Frequent-word subsampling (Mikolov et al. 2013, eq. 5 as implemented in word2vec.c).
    index_t n = 0;
    for (index_t p = b; p < end; ++p) {
      const std::int32_t w = job.tokens[p];
      const bool center = p >= c_lo && p < c_hi;
      const index_t raw = center ? center_idx++ : -1;
      if (m.keep[w] < kAlways && rng.next() >= m.keep[w]) continue;
      kept[n] = w;
      kept_pos[n] = raw;
      ++n;
    }
    for (index_t i = 0; i < n; ++i) {
      if (kept_pos[i] < 0) continue;
      ++res.words;
      const T alpha = T(a0 + da * double(kept_pos[i]));
      // Reduced window: a width drawn uniformly from 1..window (word2vec.c's `b`).
      const index_t w = m.window - index_t(rng.below(std::uint32_t(m.window)));
      const index_t lo = std::max<index_t>(0, i - w), hi = std::min<index_t>(n, i + w + 1);
      const std::int64_t word = kept[i];
      if (m.hs) {
        // The center word's path serves every example of this window: ask for its rows once
        // (as for the noise rows, so that the misses overlap).
        const index_t o = m.code_off[word], L = m.code_off[word + 1] - o;
        for (index_t d = 0; d < L; ++d) {
          const char* row = reinterpret_cast<const char*>(m.syn1 + index_t(m.points[o + d]) * D);
          for (index_t b = 0; b < index_t(D * sizeof(T)); b += 64) __builtin_prefetch(row + b, 1);
        }
      }
      auto gather_context = [&] {  // the window's words but the center, into ctx
        index_t C = 0;
        for (index_t j = lo; j < hi; ++j)
          if (j != i) ctx[C++] = kept[j];
        return C;
      };
      if (batch_windows) {
        const index_t C = gather_context();
        const index_t o = m.code_off[word], L = m.code_off[word + 1] - o;
        res.loss += w2v_sg_hs_window<T>(m.syn0, m.syn1, D, ctx.data(), C, m.points + o,
                                        m.codes + o, L, alpha, want_loss, win.data());
        res.examples += C;
      } else if (m.sg) {
        for (index_t j = lo; j < hi; ++j) {
          if (j == i) continue;
          T* l1 = m.syn0 + kept[j] * D;
          zero(e, D);
          res.loss += predict(l1, word, alpha);
          add_into(l1, e, D);
          ++res.examples;
        }
      } else {
        const index_t C = gather_context();
        if (C == 0) continue;
        cbow_input(m.syn0, D, ctx.data(), C, m.cbow_mean, h);
        zero(e, D);
        res.loss += predict(h, word, alpha);
        cbow_apply(m.syn0, D, ctx.data(), C, m.cbow_mean, e);
        ++res.examples;
      }
    }
  }
  return res;
}

void w2v_draw_negatives(const W2VAlias* alias, index_t V, std::uint64_t seed, std::int64_t* out,
                        index_t n) {
  Lcg rng(seed);
  for (index_t i = 0; i < n; ++i) out[i] = alias_draw(rng, alias, std::uint32_t(V));
}

#define NNKERN_W2V(T)                                                                           \
  template double word2vec_sg_ns<T>(T*, T*, index_t, std::int64_t, std::int64_t,                \
                                    const std::int64_t*, index_t, T, T*);                       \
  template double word2vec_sg_hs<T>(T*, T*, index_t, std::int64_t, const std::int32_t*,         \
                                    const std::uint8_t*, index_t, T, T*);                       \
  template double word2vec_cbow_ns<T>(T*, T*, index_t, std::int64_t, const std::int64_t*,       \
                                      index_t, const std::int64_t*, index_t, T, bool, T*);      \
  template double word2vec_cbow_hs<T>(T*, T*, index_t, const std::int64_t*, index_t,            \
                                      const std::int32_t*, const std::uint8_t*, index_t, T,     \
                                      bool, T*);                                                \
  template W2VResult w2v_train_job<T>(const W2VModel<T>&, const W2VJob&);
NNKERN_W2V(float)
NNKERN_W2V(double)
#undef NNKERN_W2V

}  // namespace nnkern
