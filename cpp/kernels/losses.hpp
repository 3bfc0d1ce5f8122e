// Loss functions and their gradients with respect to the prediction, following PyTorch's
// torch.nn.functional definitions (https://pytorch.org/docs/stable/nn.functional.html#loss-functions).
//
// Elementwise losses take flat buffers of n elements (pred and target have the same shape).
// Forward kernels either write the per-element losses into `loss` (reduction "none") or, with
// loss == nullptr, return their sum accumulated in double. Sums are taken over fixed blocks
// combined in order, so a result does not depend on the number of threads.
// Backward kernels write d(loss)/d(pred) times `scale` (1 for "sum"/"none", 1/n for "mean").
#pragma once

#include "kernels/common.hpp"

namespace nnkern {

// What a loss kernel reports besides the losses it wrote.
struct LossResult {
  double sum = 0.0;       // sum of the losses, when they were not written out
  index_t count = 0;      // items that count towards a mean (cross_entropy: non-ignored rows)
  index_t bad_pred = -1;  // flat index of the first invalid pred value, -1 if none
  index_t bad_target = -1;  // flat index of the first invalid target value, -1 if none
};

// ---- regression losses; d = pred - target. pred, target, loss, dpred: (n,)

// loss = d^2;   dpred = 2 d
template <class T> LossResult mse_loss(const T* pred, const T* target, T* loss, index_t n);
template <class T> void mse_loss_backward(const T* pred, const T* target, T* dpred, index_t n, T scale);
// loss = |d|;   dpred = sign(d) (0 at d == 0, NaN stays NaN)
template <class T> LossResult mae_loss(const T* pred, const T* target, T* loss, index_t n);
template <class T> void mae_loss_backward(const T* pred, const T* target, T* dpred, index_t n, T scale);
// loss = |d| < delta ? d^2 / 2 : delta (|d| - delta / 2);   dpred = clip(d, -delta, delta)
template <class T> LossResult huber_loss(const T* pred, const T* target, T* loss, index_t n, T delta);
template <class T>
void huber_loss_backward(const T* pred, const T* target, T* dpred, index_t n, T scale, T delta);
// loss = log(cosh(d)) = |d| + log1p(exp(-2|d|)) - log(2);   dpred = tanh(d)
template <class T> LossResult log_cosh_loss(const T* pred, const T* target, T* loss, index_t n);
template <class T>
void log_cosh_loss_backward(const T* pred, const T* target, T* dpred, index_t n, T scale);

// ---- binary classification. pred, target, loss, dpred: (n,)

// Probabilities p: loss = -(t max(log p, -100) + (1 - t) max(log(1 - p), -100));
// dpred = (p - t) / max((1 - p) p, 1e-12f). A pred or target value outside [0, 1] is reported
// in bad_pred / bad_target (NaN is not reported: it propagates).
template <class T> LossResult binary_cross_entropy(const T* pred, const T* target, T* loss, index_t n);
template <class T>
LossResult binary_cross_entropy_backward(const T* pred, const T* target, T* dpred, index_t n, T scale);
// Logits x, viewed as (n / C, C) when pos_weight (C,) is given (nullptr: all ones);
// w = 1 + (pos_weight - 1) t:   loss = (1 - t) x + w softplus(-x);   dpred = w sigmoid(x) - pos_weight t.
// Without pos_weight this is max(x, 0) - x t + log1p(exp(-|x|)) and sigmoid(x) - t.
template <class T>
LossResult binary_cross_entropy_with_logits(const T* x, const T* target, const T* pos_weight,
                                            T* loss, index_t n, index_t C);
template <class T>
void binary_cross_entropy_with_logits_backward(const T* x, const T* target, const T* pos_weight,
                                               T* dx, index_t n, index_t C, T scale);

// ---- multi-class cross-entropy on logits (N, C), through a fused log-softmax per row:
// z = x - max(x), log p = z - log(sum(exp(z))); softmax is never stored in the forward.
// Labels y (N,): loss_n = (1 - eps) (-log p[y]) + eps / C * sum_c(-log p_c); rows with
// y == ignore_index give 0 and do not count; other labels outside [0, C) are reported in
// bad_target (nothing is computed then). count = number of non-ignored rows. loss: (N,) or nullptr.
template <class T>
LossResult cross_entropy(const T* logits, const index_t* labels, T* loss, index_t N, index_t C,
                         index_t ignore_index, T label_smoothing);
// dlogits = (softmax - q) * scale with q = (1 - eps) onehot(y) + eps / C; ignored rows get 0.
// scale = 1 / count when `mean`, else 1.
template <class T>
LossResult cross_entropy_backward(const T* logits, const index_t* labels, T* dlogits, index_t N,
                                  index_t C, index_t ignore_index, T label_smoothing, bool mean);
// Class probabilities t (N, C): q = (1 - eps) t + eps / C, loss_n = -sum_c q_c log p_c.
template <class T>
LossResult cross_entropy_probs(const T* logits, const T* target, T* loss, index_t N, index_t C,
                               T label_smoothing);
// dlogits = (softmax * sum_c(q_c) - q) * scale
template <class T>
void cross_entropy_probs_backward(const T* logits, const T* target, T* dlogits, index_t N, index_t C,
                                  T label_smoothing, T scale);

}  // namespace nnkern
