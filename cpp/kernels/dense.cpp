#include "kernels/dense.hpp"

#include <algorithm>

namespace nnkern {

// Rows [r0, r1) of y = x @ W^T + b.
template <class T>
static void dense_rows(const T* x, const T* W, const T* b, T* y, index_t r0, index_t r1, index_t I,
                       index_t O) {
  const index_t n = r1 - r0;
  MapMat<T> Y(y + r0 * O, n, O);
  CMapMat<T> X(x + r0 * I, n, I), Wm(W, O, I);
  if (I == 0) {  // empty contraction: y = b (or 0)
    if (b) Y.rowwise() = CMapRowVec<T>(b, O);
    else Y.setZero();
    return;
  }
  if (b) {
    // Start from the bias and let the GEMM accumulate: saves a pass over y.
    Y.rowwise() = CMapRowVec<T>(b, O);
    Y.noalias() += X * Wm.transpose();
  } else {
    Y.noalias() = X * Wm.transpose();
  }
}

template <class T>
void dense_forward(const T* x, const T* W, const T* b, T* y, index_t N, index_t I, index_t O) {
  if (N == 0 || O == 0) return;
  const int nt = get_num_threads();
  // Split the batch into one row block per thread, each a single-threaded GEMM: measured
  // faster here than Eigen's own parallel GEMM, which synchronises its threads around
  // shared packed panels. Each thread packs W itself, which costs O(O*I) against the
  // O(N*I*O / threads) of its product.
  if (nt > 1 && N >= 2 * 32 && N * I * O >= (index_t(1) << 21)) {
#pragma omp parallel num_threads(nt)
    {
      const int t = omp_get_thread_num(), team = omp_get_num_threads();
      // row blocks in multiples of 16 so the GEMM micro-kernels see full panels
      const index_t chunk = ((N + team - 1) / team + 15) / 16 * 16;
      const index_t r0 = std::min<index_t>(N, t * chunk), r1 = std::min<index_t>(N, r0 + chunk);
      if (r0 < r1) dense_rows(x, W, b, y, r0, r1, I, O);
    }
    return;
  }
  dense_rows(x, W, b, y, 0, N, I, O);
}

// Rows [r0, r1) of dx = dy @ W.
template <class T>
static void dense_dx_rows(const T* dy, const T* W, T* dx, index_t r0, index_t r1, index_t I, index_t O) {
  MapMat<T> DX(dx + r0 * I, r1 - r0, I);
  if (O == 0) DX.setZero();
  else DX.noalias() = CMapMat<T>(dy + r0 * O, r1 - r0, O) * CMapMat<T>(W, O, I);
}

// Rows [o0, o1) of dW = dy^T @ x and of db = column sums of dy.
template <class T>
static void dense_dW_rows(const T* dy, const T* x, T* dW, T* db, index_t o0, index_t o1, index_t N,
                          index_t I, index_t O) {
  CMapMat<T> G(dy, N, O);
  const index_t n = o1 - o0;
  if (dW) {
    MapMat<T> DW(dW + o0 * I, n, I);
    if (N == 0) DW.setZero();
    else DW.noalias() = G.middleCols(o0, n).transpose() * CMapMat<T>(x, N, I);
  }
  if (db) {
    MapRowVec<T> DB(db + o0, n);
    if (N == 0) DB.setZero();
    else DB = G.middleCols(o0, n).colwise().sum();
  }
}

// f(t, team) on every thread of the team when the product is worth splitting, else f(0, 1).
template <class F>
static void split_rows(index_t rows, index_t flops, F&& f) {
  const int nt = get_num_threads();
  if (nt > 1 && rows >= 2 * 32 && flops >= (index_t(1) << 21)) {
#pragma omp parallel num_threads(nt)
    f(omp_get_thread_num(), omp_get_num_threads());
  } else {
    f(0, 1);
  }
}

// [r0, r1) of thread t: contiguous blocks in multiples of 16 rows, so the GEMM micro-kernels
// see full panels.
inline void row_block(index_t rows, int t, int team, index_t& r0, index_t& r1) {
  const index_t chunk = ((rows + team - 1) / team + 15) / 16 * 16;
  r0 = std::min<index_t>(rows, t * chunk);
  r1 = std::min<index_t>(rows, r0 + chunk);
}

template <class T>
void dense_backward(const T* dy, const T* x, const T* W, T* dx, T* dW, T* db, index_t N, index_t I,
                    index_t O) {
  // Each product is split into one row block per thread, each a single-threaded GEMM, as in
  // the forward (measured faster than Eigen's own threading, and than running dx and dW
  // side by side, one per thread: the forward's block shape keeps the packed panels in L2).
  if (dx)
    split_rows(N, N * I * O, [&](int t, int team) {
      index_t r0, r1;
      row_block(N, t, team, r0, r1);
      if (r0 < r1) dense_dx_rows(dy, W, dx, r0, r1, I, O);
    });
  split_rows(O, N * I * O, [&](int t, int team) {
    index_t o0, o1;
    row_block(O, t, team, o0, o1);
    if (o0 < o1) dense_dW_rows(dy, x, dW, db, o0, o1, N, I, O);
  });
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
