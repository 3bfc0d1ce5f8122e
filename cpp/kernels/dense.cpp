#include "kernels/dense.hpp"

#include <algorithm>
#include <numeric>
#include <vector>

#include "kernels/microkernel.hpp"

namespace nnkern {

// All three products run on the micro-kernel of microkernel.hpp, with B packed once per
// call (Eigen's GEMM reached 124-139 GFLOP/s on two Zen 4 cores and ~210 on Zen 5, where the
// same micro-kernel runs the LSTM rows at ~180 and 340-400).

template <class T>
void dense_forward(const T* x, const T* W, const T* b, T* y, index_t N, index_t I, index_t O) {
  // y = x @ W^T + b: W (O, I) is op(B) transposed
  mk::gemm_rows<T>(N, O, I, x, I, W, I, true, y, O, b);
}

template <class T>
void dense_backward(const T* dy, const T* x, const T* W, T* dx, T* dW, T* db, index_t N, index_t I,
                    index_t O) {
  if (dx) mk::gemm_rows<T>(N, I, O, dy, O, W, I, false, dx, I, nullptr);  // dx = dy @ W
  if (dW) {
    // dW = dy^T @ x over all N rows, db = dy's column sums taken while dy is packed
    std::vector<index_t> all(size_t(std::max<index_t>(N, 0)));
    std::iota(all.begin(), all.end(), index_t(0));
    mk::gemm_tn<T>(O, N, dy, O, all.data(), db, {mk::TnOut<T>{x, I, all.data(), I, dW, I, O}});
  } else if (db) {
    std::fill(db, db + O, T(0));
    for (index_t n = 0; n < N; ++n)
      for (index_t o = 0; o < O; ++o) db[o] += dy[n * O + o];
  }
}

template <class T>
void embedding_backward(const T* dout, const std::int64_t* ids, index_t n, T* dW, index_t V,
                        index_t D) {
  (void)V;
  auto columns = [&](index_t j0, index_t j1) {
    for (index_t i = 0; i < n; ++i) {
      T* __restrict row = dW + ids[i] * D;
      const T* __restrict g = dout + i * D;
#pragma omp simd
      for (index_t j = j0; j < j1; ++j) row[j] += g[j];
    }
  };
  const int nt = get_num_threads();
  if (nt <= 1 || n * D < kParallelGrain || D < 32) {
    columns(0, D);
    return;
  }
  // one block of columns per thread, in whole cache lines (16 floats / 8 doubles)
  const index_t line = 64 / index_t(sizeof(T)), lines = (D + line - 1) / line;
#pragma omp parallel num_threads(nt)
  {
    const index_t t = omp_get_thread_num(), team = omp_get_num_threads();
    const index_t j0 = std::min(D, lines * t / team * line), j1 = std::min(D, lines * (t + 1) / team * line);
    if (j0 < j1) columns(j0, j1);
  }
}

template void embedding_backward<float>(const float*, const std::int64_t*, index_t, float*, index_t,
                                        index_t);
template void embedding_backward<double>(const double*, const std::int64_t*, index_t, double*,
                                         index_t, index_t);
template void dense_forward<float>(const float*, const float*, const float*, float*, index_t, index_t,
                                   index_t);
template void dense_forward<double>(const double*, const double*, const double*, double*, index_t,
                                    index_t, index_t);
template void dense_backward<float>(const float*, const float*, const float*, float*, float*, float*,
                                    index_t, index_t, index_t);
template void dense_backward<double>(const double*, const double*, const double*, double*, double*,
                                     double*, index_t, index_t, index_t);

}  // namespace nnkern
