// Dense (fully connected) layer, PyTorch's nn.Linear layout: W is (O, I).
#pragma once

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

}  // namespace nnkern
