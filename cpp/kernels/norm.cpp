#include "kernels/norm.hpp"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

namespace nnkern {

namespace {

// s0[c], s1[c] = sums over n, l of f(i, c) -> (a, b), i = (n C + c) L + l the flat index.
// Rows are summed in fixed blocks of R rows (enough work per block to share out), each block
// into its own partial sums, combined in block order: the same bits for any thread count.
template <class F>
void channel_sums(index_t N, index_t C, index_t L, double* s0, double* s1, F f) {
  const index_t row = std::max<index_t>(1, C * L);
  const index_t R = std::max<index_t>(1, kParallelGrain / row);
  const index_t nb = (N + R - 1) / R;
  std::vector<double> part(size_t(nb) * 2 * C, 0.0);
  parallel_rows(nb, N * row, [&](index_t b) {
    double* __restrict p0 = part.data() + b * 2 * C;
    double* __restrict p1 = p0 + C;
    const index_t n1 = std::min(N, (b + 1) * R);
    for (index_t n = b * R; n < n1; ++n) {
      if (L == 1) {
        const index_t base = n * C;
        for (index_t c = 0; c < C; ++c) {
          const auto [a, bb] = f(base + c, c);
          p0[c] += a;
          p1[c] += bb;
        }
      } else {
        for (index_t c = 0; c < C; ++c) {
          const index_t base = (n * C + c) * L;
          double a0[4] = {0, 0, 0, 0}, a1[4] = {0, 0, 0, 0};
          index_t l = 0;
          for (; l + 4 <= L; l += 4)
            for (int j = 0; j < 4; ++j) {
              const auto [a, bb] = f(base + l + j, c);
              a0[j] += a;
              a1[j] += bb;
            }
          for (; l < L; ++l) {
            const auto [a, bb] = f(base + l, c);
            a0[0] += a;
            a1[0] += bb;
          }
          p0[c] += (a0[0] + a0[2]) + (a0[1] + a0[3]);
          p1[c] += (a1[0] + a1[2]) + (a1[1] + a1[3]);
        }
      }
    }
  });
  std::fill(s0, s0 + C, 0.0);
  std::fill(s1, s1 + C, 0.0);
  for (index_t b = 0; b < nb; ++b)
    for (index_t c = 0; c < C; ++c) {
      s0[c] += part[b * 2 * C + c];
      s1[c] += part[b * 2 * C + C + c];
    }
}

// out[i] = f(i, c) for every element, rows n shared out over the threads.
template <class T, class F>
void channel_map(T* out, index_t N, index_t C, index_t L, F f) {
  parallel_rows(N, N * C * L, [&](index_t n) {
    T* __restrict o = out;
    if (L == 1) {
      const index_t base = n * C;
#pragma omp simd
      for (index_t c = 0; c < C; ++c) o[base + c] = f(base + c, c);
    } else {
      for (index_t c = 0; c < C; ++c) {
        const index_t base = (n * C + c) * L;
#pragma omp simd
        for (index_t l = 0; l < L; ++l) o[base + l] = f(base + l, c);
      }
    }
  });
}

}  // namespace

template <class T>
void batchnorm_forward(const T* x, const T* gamma, const T* beta, T* running_mean, T* running_var,
                       T* y, T* save_mean, T* save_invstd, index_t N, index_t C, index_t L,
                       bool batch_stats, bool update_running, double momentum, double eps) {
  const double K = double(N) * double(L);
  std::vector<double> mean(C), var(C), unused(C);
  if (batch_stats) {
    // two passes (mean, then squared deviations): no cancellation whatever the offset
    channel_sums(N, C, L, mean.data(), unused.data(),
                 [&](index_t i, index_t) { return std::pair<double, double>(double(x[i]), 0.0); });
    for (index_t c = 0; c < C; ++c) mean[c] /= K;
    channel_sums(N, C, L, var.data(), unused.data(), [&](index_t i, index_t c) {
      const double d = double(x[i]) - mean[c];
      return std::pair<double, double>(d * d, 0.0);
    });
    for (index_t c = 0; c < C; ++c) var[c] /= K;
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
  std::vector<double> m(mean, mean + C);
  channel_sums(N, C, L, sdy.data(), sdyx.data(), [&](index_t i, index_t c) {
    const double g = dy[i];
    return std::pair<double, double>(g, g * (double(x[i]) - m[c]));
  });
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
