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

template <class T>
static void dense_dx(const T* dy, const T* W, T* dx, index_t N, index_t I, index_t O) {
  MapMat<T> DX(dx, N, I);
  if (O == 0) DX.setZero();
  else DX.noalias() = CMapMat<T>(dy, N, O) * CMapMat<T>(W, O, I);
}

template <class T>
static void dense_dW_db(const T* dy, const T* x, T* dW, T* db, index_t N, index_t I, index_t O) {
  CMapMat<T> G(dy, N, O);
  if (dW) {
    MapMat<T> DW(dW, O, I);
    if (N == 0) DW.setZero();
    else DW.noalias() = G.transpose() * CMapMat<T>(x, N, I);
  }
  if (db) {
    MapRowVec<T> DB(db, O);
    if (N == 0) DB.setZero();
    else DB = G.colwise().sum();
  }
}

template <class T>
void dense_backward(const T* dy, const T* x, const T* W, T* dx, T* dW, T* db, index_t N, index_t I,
                    index_t O) {
  // With two threads, the two independent products (dx and dW) run side by side, one per
  // thread, instead of one after the other with each split across both threads: no
  // synchronisation inside either GEMM, and each thread packs its own operands once.
  // (Eigen runs a GEMM single-threaded when called inside a parallel region.)
  if (dx && dW && get_num_threads() == 2 && N * I * O >= (index_t(1) << 18)) {
#pragma omp parallel sections num_threads(2)
    {
#pragma omp section
      dense_dx(dy, W, dx, N, I, O);
#pragma omp section
      dense_dW_db(dy, x, dW, db, N, I, O);
    }
    return;
  }
  if (dx) dense_dx(dy, W, dx, N, I, O);
  dense_dW_db(dy, x, dW, db, N, I, O);
}

template void dense_forward<float>(const float*, const float*, const float*, float*, index_t, index_t,
                                   index_t);
template void dense_forward<double>(const double*, const double*, const double*, double*, index_t,
                                    index_t, index_t);
template void dense_backward<float>(const float*, const float*, const float*, float*, float*, float*,
                                    index_t, index_t, index_t);
template void dense_backward<double>(const double*, const double*, const double*, double*, double*,
                                     double*, index_t, index_t, index_t);

}  // namespace nnkern
