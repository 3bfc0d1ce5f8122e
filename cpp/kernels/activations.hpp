// Activations and their derivatives.
//
// Elementwise kernels take flat buffers of n elements. softmax/log_softmax view x as
// (outer, K, inner) with the reduced axis K in the middle: inner == 1 is the usual
// row-wise case (axis=-1), inner > 1 is a reduction over a leading axis.
#pragma once

#include "kernels/common.hpp"

namespace nnkern {

// y = 1 / (1 + exp(-x)), stable for any finite x. x, y: (n,)
template <class T> void sigmoid(const T* x, T* y, index_t n);
// dx = dy * y * (1 - y), y the forward output. dy, y, dx: (n,)
template <class T> void sigmoid_backward(const T* dy, const T* y, T* dx, index_t n);
// y = tanh(x). x, y: (n,)
template <class T> void tanh_forward(const T* x, T* y, index_t n);
// dx = dy * (1 - y^2), y the forward output. dy, y, dx: (n,)
template <class T> void tanh_backward(const T* dy, const T* y, T* dx, index_t n);
// y = x > 0 ? x : alpha * x (alpha = 0 is ReLU; NaN propagates). x, y: (n,)
template <class T> void leaky_relu(const T* x, T* y, index_t n, T alpha);
// dx = x > 0 ? dy : alpha * dy (PyTorch's convention at x == 0). dy, x, dx: (n,)
template <class T> void leaky_relu_backward(const T* dy, const T* x, T* dx, index_t n, T alpha);

// y = exp(x - max) / sum(exp(x - max)) along K; with log: y = x - max - log(sum(...)).
// x, y: (outer, K, inner)
template <class T> void softmax(const T* x, T* y, index_t outer, index_t K, index_t inner, bool log);
// softmax:     dx = y * (dy - sum_K(dy * y))
// log_softmax: dx = dy - exp(y) * sum_K(dy)
// dy, y, dx: (outer, K, inner)
template <class T>
void softmax_backward(const T* dy, const T* y, T* dx, index_t outer, index_t K, index_t inner, bool log);

}  // namespace nnkern
