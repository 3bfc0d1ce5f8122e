#include "kernels/dense.hpp"

namespace nnkern {

template <class T>
void dense_forward(const T* x, const T* W, const T* b, T* y, index_t N, index_t I, index_t O) {
  if (N == 0 || O == 0) return;
  MapMat<T> Y(y, N, O);
  CMapMat<T> X(x, N, I), Wm(W, O, I);
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
