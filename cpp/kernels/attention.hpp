// Attention: scaled dot-product and additive (Bahdanau), forward and backward.
//
// Shapes (glossary of common.hpp, plus Tq / Tk query and key steps, Dv value features and A
// the additive attention's hidden size):
//   q (B, Tq, D)   k (B, Tk, D)   v (B, Tk, Dv)   out (B, Tq, Dv)   P (B, Tq, Tk)
//   mask: nullptr, or bytes (B, Tq, Tk) (mask_per_query) or (B, Tk); nonzero = may attend.
// A query with nothing to attend to gets a zero row of P (and so a zero output, zero grads).
// Outputs are overwritten, not accumulated. Results do not depend on the thread count.
#pragma once

#include <cstdint>

#include "kernels/common.hpp"

namespace nnkern {

struct AttnDims {
  index_t B, Tq, Tk, D, Dv;
};

// S = scale * q k^T, P = masked softmax over Tk, out = P v.
template <class T>
void sdpa_forward(AttnDims d, const T* q, const T* k, const T* v, const std::uint8_t* mask,
                  bool mask_per_query, T scale, T* out, T* P);

// dv = P^T dout, dS = P * (dP - rowsum(dP * P)) with dP = dout v^T,
// dq = scale * dS k, dk = scale * dS^T q.
template <class T>
void sdpa_backward(AttnDims d, const T* dout, const T* q, const T* k, const T* v, const T* P, T scale,
                   T* dq, T* dk, T* dv);

// Additive: q (B, Tq, Dq) k (B, Tk, Dk), W_q (A, Dq), W_k (A, Dk), w_v (A,).
//   hidden[b, i, j] = tanh(W_q q_i + W_k k_j)  (B, Tq, Tk, A),  S = hidden . w_v,
//   P = masked softmax over Tk of S,  out = P v.
// d.D is Dq; Dk is passed apart.
template <class T>
void additive_forward(AttnDims d, index_t Dk, index_t A, const T* q, const T* k, const T* v,
                      const T* W_q, const T* W_k, const T* w_v, const std::uint8_t* mask,
                      bool mask_per_query, T* out, T* P, T* hidden);

template <class T>
void additive_backward(AttnDims d, index_t Dk, index_t A, const T* dout, const T* q, const T* k,
                       const T* v, const T* W_q, const T* W_k, const T* w_v, const T* P,
                       const T* hidden, T* dq, T* dk, T* dv, T* dW_q, T* dW_k, T* dw_v);

}  // namespace nnkern
