#include "kernels/norm.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/reduce.hpp"
#include "kernels/stream.hpp"

namespace nnkern {

namespace {

// Rows are summed in fixed blocks of R rows, each block into its own partial sums, combined
// in block order: the same bits for any thread count. A block holds about kBlockElems values
// (it stays in L2 for channel_moments' second sweep) and the blocks are few, so combining the
// partial sums is cheap.
constexpr index_t kBlockElems = index_t(1) << 17;

inline index_t block_rows(index_t N, index_t C, index_t L) {
  return std::max<index_t>(1, std::min(N, kBlockElems / std::max<index_t>(1, C * L)));
}

// Rows of (N, C) data are summed in T over sub-blocks of at most kSubRows rows (vectors of
// T across the channels: twice the lanes of double, no conversions), and each sub-block's
// sums are added in double. A float sum of 256 terms is within about 256 ulps of exact,
// far inside what the statistics need.
constexpr index_t kSubRows = 256;

// Per-channel vectors (accumulators, means, scales) are walked in chunks of kChanChunk
// channels, each chunk over all rows of a block before the next: with thousands of channels
// the whole vectors would not stay in L1 beside the streaming rows (measured at C = 4096:
// 2x the time of C = 1024 for the same number of elements, before chunking).
constexpr index_t kChanChunk = 1024;

struct NoHook {
  void operator()(index_t) const {}
};

// a[c] = sum of f(x[n * ld + c], c) for c < C over the rows [r0, r1), in T (at most kSubRows
// rows); ld is the row stride (C for whole rows, more for a block of columns). row_hook(n)
// runs before row n is read (the column-block path prefetches with it).
template <class T, class F, class H = NoHook>
inline void column_sums(const T* x, index_t r0, index_t r1, index_t ld, index_t C,
                        T* __restrict a, F f, H row_hook = H()) {
  std::fill(a, a + C, T(0));
  for (index_t c0 = 0; c0 < C; c0 += kChanChunk) {
    const index_t c1 = std::min(C, c0 + kChanChunk);
    index_t n = r0;
    // four rows per visit of the accumulators: a quarter of their loads and stores
    for (; n + 4 <= r1; n += 4) {
      for (index_t j = 0; j < 4; ++j) row_hook(n + j);
      const T* __restrict x0 = x + n * ld;
      const T* __restrict x1 = x0 + ld;
      const T* __restrict x2 = x1 + ld;
      const T* __restrict x3 = x2 + ld;
#pragma omp simd
      for (index_t c = c0; c < c1; ++c)
        a[c] += (f(x0[c], c) + f(x1[c], c)) + (f(x2[c], c) + f(x3[c], c));
    }
    for (; n < r1; ++n) {
      row_hook(n);
      const T* __restrict xr = x + n * ld;
#pragma omp simd
      for (index_t c = c0; c < c1; ++c) a[c] += f(xr[c], c);
    }
  }
}

// p0[c] += sum dy, p1[c] += sum dy (x - mean[c]) over m rows of C channels; acc: 2C scratch.
template <class T>
inline void sub_block_sums(const T* dy, const T* x, const T* mean, index_t m, index_t C,
                           double* __restrict p0, double* __restrict p1, T* acc) {
  T* __restrict a0 = acc;
  T* __restrict a1 = acc + C;
  std::fill(a0, a0 + 2 * C, T(0));
  for (index_t c0 = 0; c0 < C; c0 += kChanChunk) {
    const index_t c1 = std::min(C, c0 + kChanChunk);
    index_t n = 0;
    for (; n + 4 <= m; n += 4) {  // four rows per visit of the accumulators
      const T* __restrict g0 = dy + n * C;
      const T* __restrict x0 = x + n * C;
#pragma omp simd
      for (index_t c = c0; c < c1; ++c) {
        const T mc = mean[c];
        a0[c] += (g0[c] + g0[c + C]) + (g0[c + 2 * C] + g0[c + 3 * C]);
        a1[c] += (g0[c] * (x0[c] - mc) + g0[c + C] * (x0[c + C] - mc)) +
                 (g0[c + 2 * C] * (x0[c + 2 * C] - mc) + g0[c + 3 * C] * (x0[c + 3 * C] - mc));
      }
    }
    for (; n < m; ++n) {
      const T* __restrict g = dy + n * C;
      const T* __restrict xr = x + n * C;
#pragma omp simd
      for (index_t c = c0; c < c1; ++c) {
        a0[c] += g[c];
        a1[c] += g[c] * (xr[c] - mean[c]);
      }
    }
  }
  for (index_t c = 0; c < C; ++c) {
    p0[c] += double(a0[c]);
    p1[c] += double(a1[c]);
  }
}

// sdy[c] = sum dy, sdyx[c] = sum dy (x - mean[c]) over n and l.
template <class T>
void backward_sums(const T* dy, const T* x, const T* mean, index_t N, index_t C, index_t L,
                   double* sdy, double* sdyx) {
  const index_t R = block_rows(N, C, L), nb = (N + R - 1) / R;
  std::vector<double> part(size_t(nb) * 2 * C, 0.0);
  parallel_rows(nb, N * C * L, [&](index_t b) {
    double* __restrict p0 = part.data() + b * 2 * C;
    double* __restrict p1 = p0 + C;
    const index_t n1 = std::min(N, (b + 1) * R);
    if (L == 1) {
      std::vector<T> acc(2 * C);
      for (index_t n = b * R; n < n1; n += kSubRows)
        sub_block_sums(dy + n * C, x + n * C, mean, std::min(n1, n + kSubRows) - n, C, p0, p1,
                       acc.data());
      return;
    }
    for (index_t n = b * R; n < n1; ++n)
      for (index_t c = 0; c < C; ++c) {
        const T* g = dy + (n * C + c) * L;
        const T* xr = x + (n * C + c) * L;
        const T mc = mean[c];
        double a0[4] = {0, 0, 0, 0}, a1[4] = {0, 0, 0, 0};
        index_t l = 0;
        for (; l + 4 <= L; l += 4)
          for (int j = 0; j < 4; ++j) {
            a0[j] += double(g[l + j]);
            a1[j] += double(g[l + j]) * double(xr[l + j] - mc);
          }
        for (; l < L; ++l) {
          a0[0] += double(g[l]);
          a1[0] += double(g[l]) * double(xr[l] - mc);
        }
        p0[c] += (a0[0] + a0[2]) + (a0[1] + a0[3]);
        p1[c] += (a1[0] + a1[2]) + (a1[1] + a1[3]);
      }
  });
  std::fill(sdy, sdy + C, 0.0);
  std::fill(sdyx, sdyx + C, 0.0);
  for (index_t b = 0; b < nb; ++b)
    for (index_t c = 0; c < C; ++c) {
      sdy[c] += part[b * 2 * C + c];
      sdyx[c] += part[b * 2 * C + C + c];
    }
}

// Means s and M2s (sums of squared deviations) of w columns of (rows, ld) data over the rows
// [n0, n1), in two sweeps: sums in T per kSubRows rows, added in double; then, the block still
// in L2, squared deviations from the mean as rounded to T (kept in mb), with M2 put back
// about the exact mean (M2 about m' is M2 + n (m - m')^2). a is T scratch of w; row_hook(n)
// runs before the first sweep reads row n.
template <class T, class H = NoHook>
void block_moments(const T* x, index_t n0, index_t n1, index_t ld, index_t w, T* __restrict a,
                   T* __restrict mb, double* __restrict s, double* __restrict m2, H row_hook = H()) {
  std::fill(s, s + w, 0.0);
  std::fill(m2, m2 + w, 0.0);
  for (index_t r0 = n0; r0 < n1; r0 += kSubRows) {
    column_sums(x, r0, std::min(n1, r0 + kSubRows), ld, w, a, [](T v, index_t) { return v; },
                row_hook);
    for (index_t c = 0; c < w; ++c) s[c] += double(a[c]);
  }
  const double inv = 1.0 / double(n1 - n0);
  for (index_t c = 0; c < w; ++c) {
    s[c] *= inv;
    mb[c] = T(s[c]);
  }
  for (index_t r0 = n0; r0 < n1; r0 += kSubRows) {
    column_sums(x, r0, std::min(n1, r0 + kSubRows), ld, w, a, [mb](T v, index_t c) {
      const T d = v - mb[c];
      return d * d;
    });
    for (index_t c = 0; c < w; ++c) m2[c] += double(a[c]);
  }
  const double n = double(n1 - n0);
  for (index_t c = 0; c < w; ++c) {
    const double d = s[c] - double(mb[c]);
    m2[c] = std::max(0.0, m2[c] - n * d * d);
  }
}

// Per-channel mean and biased variance of x (N, C, L) in ONE pass over memory, robust to any
// offset: each block of R rows (sized to stay in L2) is read once from memory for its sums,
// then again from cache for its squared deviations from its own mean; the blocks are merged
// with Chan et al.'s formula M2 = sum_b M2_b + n_b (mean_b - mean)^2, in block order.
template <class T>
void channel_moments(const T* x, index_t N, index_t C, index_t L, double* mean, double* var) {
  const index_t R = block_rows(N, C, L), nb = (N + R - 1) / R;
  std::vector<double> part(size_t(nb) * 2 * C, 0.0);
  parallel_rows(nb, N * C * L, [&](index_t b) {
    double* __restrict s = part.data() + b * 2 * C;  // block sums, then block means
    double* __restrict m2 = s + C;
    const index_t n0 = b * R, n1 = std::min(N, (b + 1) * R);
    const double inv = 1.0 / double((n1 - n0) * L);
    if (L == 1) {
      std::vector<T> acc(2 * C);
      block_moments(x, n0, n1, C, C, acc.data(), acc.data() + C, s, m2);
      return;
    }
    for (index_t n = n0; n < n1; ++n)
      for (index_t c = 0; c < C; ++c) {
        const T* xr = x + (n * C + c) * L;
        s[c] += block_sum(xr, L, [](double a) { return a; });
      }
    for (index_t c = 0; c < C; ++c) s[c] *= inv;
    for (index_t n = n0; n < n1; ++n)
      for (index_t c = 0; c < C; ++c) {
        const T* xr = x + (n * C + c) * L;
        const double mc = s[c];
        m2[c] += block_sum(xr, L, [mc](double a) { return (a - mc) * (a - mc); });
      }
  });
  const double K = double(N) * double(L);
  std::fill(mean, mean + C, 0.0);
  std::fill(var, var + C, 0.0);
  for (index_t b = 0; b < nb; ++b) {
    const double nbk = double((std::min(N, (b + 1) * R) - b * R) * L);
    for (index_t c = 0; c < C; ++c) mean[c] += part[b * 2 * C + c] * nbk;
  }
  for (index_t c = 0; c < C; ++c) mean[c] /= K;
  for (index_t b = 0; b < nb; ++b) {
    const double nbk = double((std::min(N, (b + 1) * R) - b * R) * L);
    for (index_t c = 0; c < C; ++c) {
      const double d = part[b * 2 * C + c] - mean[c];
      var[c] += part[b * 2 * C + C + c] + nbk * d * d;
    }
  }
  for (index_t c = 0; c < C; ++c) var[c] /= K;
}

// out[i] = f(i, c) for every element, blocks of rows shared out over the threads; within a
// block, channel chunk by channel chunk (see kChanChunk).
// Above kStreamBytes the output goes out through an L1 staging block with streaming stores
// (it would not stay in cache, and a plain store would first read every line).
template <class T, class F>
void channel_map(T* out, index_t N, index_t C, index_t L, F f) {
  const bool stream = index_t(sizeof(T)) * N * C * L > kStreamBytes;
  T* __restrict o = out;
  if (L == 1) {
    constexpr index_t kRows = 16;
    parallel_rows((N + kRows - 1) / kRows, N * C, [&](index_t b) {
      const index_t n0 = b * kRows, n1 = std::min(N, n0 + kRows);
      alignas(64) T stage[kChanChunk];
      for (index_t c0 = 0; c0 < C; c0 += kChanChunk) {
        const index_t m = std::min(kChanChunk, C - c0);
        for (index_t n = n0; n < n1; ++n) {
          const index_t base = n * C + c0;
          if (stream) {
#pragma omp simd
            for (index_t j = 0; j < m; ++j) stage[j] = f(base + j, c0 + j);
            stream_copy(o + base, stage, m);
          } else {
#pragma omp simd
            for (index_t j = 0; j < m; ++j) o[base + j] = f(base + j, c0 + j);
          }
        }
      }
      if (stream) stream_fence();
    });
    return;
  }
  parallel_rows(N, N * C * L, [&](index_t n) {
    for (index_t c = 0; c < C; ++c) {
      const index_t base = (n * C + c) * L;
#pragma omp simd
      for (index_t l = 0; l < L; ++l) o[base + l] = f(base + l, c);
    }
  });
}

// Training-mode forward of short, wide (N, C) data in column blocks: W channels over all N
// rows. A block holds whole channels, so its statistics are final once its rows have been
// read, and the same block, still in L2, is normalised right away: x crosses from L3 or
// memory once instead of twice. Rows of a block are a row stride apart, so the block's row
// segments must be long (kMinSegBytes) for the hardware prefetchers to keep up; tall batches
// keep the row-block path (measured at (4096, 1024), 64-byte segments: 4x slower than rows).
// At (256, 4096) float32 the forward took 0.18-0.22 ms against 0.22-0.29 ms by rows.
constexpr index_t kColBytes = index_t(512) << 10;  // a block: half of a 1 MiB L2
constexpr index_t kMinSegBytes = 1024;
// The first sweep over a block asks for the line kAhead rows ahead itself.
constexpr index_t kAhead = 8;

inline void prefetch_line(const void* p) {
#if defined(__SSE2__)
  _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T0);
#endif
}

// W for column blocks of (N, C) data: whole cache lines, at most kChanChunk, and blocks enough
// to give every thread two; 0 when the segments would be shorter than kMinSegBytes.
template <class T>
index_t column_block_width(index_t N, index_t C) {
  constexpr index_t line = 64 / index_t(sizeof(T));
  if (N < 1 || C < 1) return 0;
  const auto round = [](index_t v) { return (v + line - 1) / line * line; };
  const index_t fair = (C + 2 * get_num_threads() - 1) / (2 * get_num_threads());
  const index_t fit = kColBytes / (N * index_t(sizeof(T))) / line * line;
  const index_t W = std::min({fit, round(fair), kChanChunk});
  return W * index_t(sizeof(T)) >= kMinSegBytes ? W : 0;
}

// What every forward does with channel k once its mean and (biased) variance are known:
// the running-statistics update (training, unbiased variance, as torch), the saved mean and
// 1/std for backward, and y's scale gamma/std and shift beta.
template <class T>
struct ChannelFinish {
  const T *gamma, *beta;
  T *running_mean, *running_var, *save_mean, *save_invstd;
  bool update_running;
  double momentum, unbias, eps;

  void operator()(index_t k, double mean, double var, T& scale, T& shift) const {
    if (update_running) {
      running_mean[k] = T((1 - momentum) * double(running_mean[k]) + momentum * mean);
      running_var[k] = T((1 - momentum) * double(running_var[k]) + momentum * var * unbias);
    }
    const double invstd = 1.0 / std::sqrt(var + eps);
    save_mean[k] = T(mean);
    save_invstd[k] = T(invstd);
    scale = T((gamma ? double(gamma[k]) : 1.0) * invstd);
    shift = beta ? beta[k] : T(0);
  }
};

template <class T>
void forward_columns(const T* x, T* y, index_t N, index_t C, index_t W,
                     const ChannelFinish<T>& finish) {
  const bool stream = index_t(sizeof(T)) * N * C > kStreamBytes;
  const double inv = 1.0 / double(N);
  parallel_rows((C + W - 1) / W, N * C, [&](index_t b) {
    const index_t c0 = b * W, w = std::min(W, C - c0);
    const T* xb = x + c0;
    alignas(64) T a[kChanChunk], mb[kChanChunk], sc[kChanChunk], sh[kChanChunk], stage[kChanChunk];
    double s[kChanChunk], m2[kChanChunk];
    block_moments(xb, 0, N, C, w, a, mb, s, m2, [&](index_t n) {
      if (n + kAhead < N) prefetch_line(xb + (n + kAhead) * C);
    });
    for (index_t c = 0; c < w; ++c) finish(c0 + c, s[c], m2[c] * inv, sc[c], sh[c]);
    T* yb = y + c0;
    for (index_t n = 0; n < N; ++n) {
      const T* __restrict xr = xb + n * C;
      T* __restrict out = stream ? stage : yb + n * C;
#pragma omp simd
      for (index_t c = 0; c < w; ++c) out[c] = (xr[c] - mb[c]) * sc[c] + sh[c];
      if (stream) stream_copy(yb + n * C, stage, w);
    }
    if (stream) stream_fence();
  });
}

}  // namespace

template <class T>
void batchnorm_forward(const T* x, const T* gamma, const T* beta, T* running_mean, T* running_var,
                       T* y, T* save_mean, T* save_invstd, index_t N, index_t C, index_t L,
                       bool batch_stats, bool update_running, double momentum, double eps) {
  const double K = double(N) * double(L);
  const ChannelFinish<T> finish{gamma,       beta,      running_mean,
                                running_var, save_mean, save_invstd,
                                batch_stats && update_running, momentum, K / (K - 1), eps};
  if (batch_stats && L == 1 && N > 1) {
    if (const index_t W = column_block_width<T>(N, C)) {
      forward_columns(x, y, N, C, W, finish);
      return;
    }
  }
  std::vector<double> mean(C), var(C);
  if (batch_stats) {
    channel_moments(x, N, C, L, mean.data(), var.data());
  } else {
    for (index_t c = 0; c < C; ++c) mean[c] = running_mean[c], var[c] = running_var[c];
  }
  std::vector<T> scale(C), shift(C);
  for (index_t c = 0; c < C; ++c) finish(c, mean[c], var[c], scale[c], shift[c]);
  const T* sm = save_mean;
  const T* sc = scale.data();
  const T* sh = shift.data();
  // y = (x - mean) * (gamma invstd) + beta
  channel_map(y, N, C, L, [&](index_t i, index_t c) { return (x[i] - sm[c]) * sc[c] + sh[c]; });
}

template <class T>
void batchnorm_backward(const T* dy, const T* x, const T* mean, const T* invstd, const T* gamma,
                        T* dx, T* dgamma, T* dbeta, index_t N, index_t C, index_t L, bool batch_stats) {
  const double K = double(N) * double(L);
  std::vector<double> sdy(C), sdyx(C);
  backward_sums(dy, x, mean, N, C, L, sdy.data(), sdyx.data());
  // dx = dy * A + (x - mean) * B + D
  std::vector<T> A(C), B(C), D(C);
  for (index_t c = 0; c < C; ++c) {
    const double is = invstd[c], g = gamma ? double(gamma[c]) : 1.0;
    dgamma[c] = T(sdyx[c] * is);
    dbeta[c] = T(sdy[c]);
    A[c] = T(g * is);
    B[c] = batch_stats && K > 0 ? T(-g * is * is * is * sdyx[c] / K) : T(0);
    D[c] = batch_stats && K > 0 ? T(-g * is * sdy[c] / K) : T(0);
  }
  const T *pa = A.data(), *pb = B.data(), *pd = D.data();
  channel_map(dx, N, C, L, [&](index_t i, index_t c) {
    return dy[i] * pa[c] + ((x[i] - mean[c]) * pb[c] + pd[c]);
  });
}

#define NNKERN_NORM(T)                                                                          \
  template void batchnorm_forward<T>(const T*, const T*, const T*, T*, T*, T*, T*, T*, index_t,  \
                                     index_t, index_t, bool, bool, double, double);              \
  template void batchnorm_backward<T>(const T*, const T*, const T*, const T*, const T*, T*, T*,  \
                                      T*, index_t, index_t, index_t, bool);
NNKERN_NORM(float)
NNKERN_NORM(double)
#undef NNKERN_NORM

}  // namespace nnkern
