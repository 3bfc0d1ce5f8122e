// Dense (fully connected) layer, PyTorch's nn.Linear layout: W is (O, I).
#pragma once

#include <cstdint>

#include "kernels/common.hpp"

namespace nnkern {

// y = x @ W^T + b.   x: (N, I)  W: (O, I)  b: (O,) or nullptr  y: (N, O)
template <class T>
void dense_forward(const T* x, const T* W, const T* b, T* y, index_t N, index_t I, index_t O);

// From y = x @ W^T + b:
//   dx = dy @ W        (N, O) x (O, I)
//   dW = dy^T @ x      (O, N) x (N, I)
//   db = sum_N dy      (O,)
// Outputs are overwritten, not accumulated. Any output pointer may be nullptr to skip it.
template <class T>
void dense_backward(const T* dy, const T* x, const T* W, T* dx, T* dW, T* db, index_t N, index_t I,
                    index_t O);

// The backward of an embedding lookup (rows of W picked by ids): dW[ids[i]] += dout[i] for
// i < n, each row D values, accumulated in place in i order (a repeated id sums its rows).
// ids must lie in [0, V): the caller checks. Threads split the D columns, so the order of
// additions, and the result, do not depend on the thread count.
template <class T>
void embedding_backward(const T* dout, const std::int64_t* ids, index_t n, T* dW, index_t V,
                        index_t D);

}  // namespace nnkern
