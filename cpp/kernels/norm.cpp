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

// a[c] = sum of f(x[n * C + c], c) over the rows [r0, r1), in T (at most kSubRows rows).
template <class T, class F>
inline void column_sums(const T* x, index_t r0, index_t r1, index_t C, T* __restrict a, F f) {
  std::fill(a, a + C, T(0));
  for (index_t c0 = 0; c0 < C; c0 += kChanChunk) {
    const index_t c1 = std::min(C, c0 + kChanChunk);
    for (index_t n = r0; n < r1; ++n) {
      const T* __restrict xr = x + n * C;
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
    for (index_t n = 0; n < m; ++n) {
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
      T* __restrict a = acc.data();
      T* __restrict mb = a + C;
      for (index_t r0 = n0; r0 < n1; r0 += kSubRows) {
        column_sums(x, r0, std::min(n1, r0 + kSubRows), C, a, [](T v, index_t) { return v; });
        for (index_t c = 0; c < C; ++c) s[c] += double(a[c]);
      }
      for (index_t c = 0; c < C; ++c) {
        s[c] *= inv;
        mb[c] = T(s[c]);
      }
      // squared deviations from the block mean as rounded to T: the block is still in L2
      for (index_t r0 = n0; r0 < n1; r0 += kSubRows) {
        column_sums(x, r0, std::min(n1, r0 + kSubRows), C, a, [mb](T v, index_t c) {
          const T d = v - mb[c];
          return d * d;
        });
        for (index_t c = 0; c < C; ++c) m2[c] += double(a[c]);
      }
      // M2 about the T-rounded mean m' is M2 + n (m - m')^2: put the block mean back exact
      const double nbk = double(n1 - n0);
      for (index_t c = 0; c < C; ++c) {
        const double d = s[c] - double(mb[c]);
        m2[c] = std::max(0.0, m2[c] - nbk * d * d);
      }
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

}  // namespace

template <class T>
void batchnorm_forward(const T* x, const T* gamma, const T* beta, T* running_mean, T* running_var,
                       T* y, T* save_mean, T* save_invstd, index_t N, index_t C, index_t L,
                       bool batch_stats, bool update_running, double momentum, double eps) {
  const double K = double(N) * double(L);
  std::vector<double> mean(C), var(C);
  if (batch_stats) {
    channel_moments(x, N, C, L, mean.data(), var.data());
    if (update_running) {
      const double unbias = K / (K - 1);
      for (index_t c = 0; c < C; ++c) {
        running_mean[c] = T((1 - momentum) * double(running_mean[c]) + momentum * mean[c]);
        running_var[c] = T((1 - momentum) * double(running_var[c]) + momentum * var[c] * unbias);
      }
    }
  } else {
    for (index_t c = 0; c < C; ++c) mean[c] = running_mean[c], var[c] = running_var[c];
  }
  std::vector<T> scale(C), shift(C);
  for (index_t c = 0; c < C; ++c) {
    const double invstd = 1.0 / std::sqrt(var[c] + eps);
    save_mean[c] = T(mean[c]);
    save_invstd[c] = T(invstd);
    scale[c] = T((gamma ? double(gamma[c]) : 1.0) * invstd);
    shift[c] = beta ? beta[c] : T(0);
  }
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
