// Optimizer updates with torch.optim semantics, gradient norms and clipping, and the
// max-norm weight constraint. https://pytorch.org/docs/stable/optim.html
//
// An update works on a list of "segments": one segment is one parameter tensor of n elements
// with its gradient and state arrays, all flat (n,) and C-contiguous. A step over a list of
// tensors is ONE parallel pass over all their elements: the concatenated index range is split
// into one contiguous chunk per thread, and a chunk may span several segments. When the
// parameters live in one flat buffer (nnkern.optim keeps them so) the list has one segment.
//
// Every update multiplies the gradient by `grad_scale` as it loads it: global-norm clipping
// (scale = min(1, max_norm / (norm + 1e-6))) is folded into the update pass instead of being
// a separate read-modify-write pass over the gradients. The gradients are never written.
// Hyper-parameters arrive in double and are rounded to T once, as torch rounds a Python
// scalar to the tensor's dtype.
#pragma once

#include <vector>

#include "kernels/common.hpp"

namespace nnkern {

// One tensor of an update: p (n,) updated in place, g (n,) read, up to three state arrays
// (n,) updated in place (nullptr when an option does not use them).
template <class T>
struct Segment {
  T* p = nullptr;
  const T* g = nullptr;
  T* s0 = nullptr;
  T* s1 = nullptr;
  T* s2 = nullptr;
  index_t n = 0;
};

// torch.optim.SGD. s0 = momentum buffer (unused when momentum == 0).
//   d = g + wd p;  b = first ? d : momentum b + (1 - dampening) d;
//   d = nesterov ? d + momentum b : b (momentum > 0);  p -= lr d
struct SgdHyper {
  double lr = 0, momentum = 0, dampening = 0, weight_decay = 0;
  bool nesterov = false, first_step = false;
  double grad_scale = 1;
};
template <class T> void sgd_update(const std::vector<Segment<T>>& segs, const SgdHyper& h);

// torch.optim.Rprop. s0 = previous gradient, s1 = per-element step sizes.
//   q = g prev;  eta = q > 0 ? eta_plus : q < 0 ? eta_minus : 1;
//   step = clamp(step eta, step_min, step_max);  g = q < 0 ? 0 : g;  p -= sign(g) step;  prev = g
struct RpropHyper {
  double eta_minus = 0.5, eta_plus = 1.2, step_min = 1e-6, step_max = 50;
  double grad_scale = 1;
};
template <class T> void rprop_update(const std::vector<Segment<T>>& segs, const RpropHyper& h);

// torch.optim.RMSprop. s0 = square_avg, s1 = momentum buffer (momentum > 0), s2 = grad_avg
// (centered).
//   g += wd p;  sq = alpha sq + (1 - alpha) g^2;  ga = lerp(ga, g, 1 - alpha);
//   avg = sqrt(centered ? sq - ga^2 : sq) + eps;
//   momentum > 0: b = momentum b + g / avg, p -= lr b;   else p -= lr g / avg
struct RmspropHyper {
  double lr = 0.01, alpha = 0.99, eps = 1e-8, weight_decay = 0, momentum = 0;
  bool centered = false;
  double grad_scale = 1;
};
template <class T> void rmsprop_update(const std::vector<Segment<T>>& segs, const RmspropHyper& h);

// torch.optim.Adam / AdamW. s0 = exp_avg, s1 = exp_avg_sq, s2 = max_exp_avg_sq (amsgrad).
//   decoupled: p *= 1 - lr wd   else g += wd p
//   m = lerp(m, g, 1 - beta1);  v = beta2 v + (1 - beta2) g^2;  vmax = max(vmax, v)
//   p -= step_size m / (sqrt(amsgrad ? vmax : v) / bc2_sqrt + eps)
// with step_size = lr / (1 - beta1^t) and bc2_sqrt = sqrt(1 - beta2^t) computed by the caller.
struct AdamHyper {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
  bool decoupled = false, amsgrad = false;
  double step_size = 0, bc2_sqrt = 1;
  double grad_scale = 1;
};
template <class T> void adam_update(const std::vector<Segment<T>>& segs, const AdamHyper& h);

// ---- norms and clipping over a list of arrays xs[k] (ns[k],)

// The p-norm of all elements of all arrays together (p = 2, 1, any p > 0, or inf), summed in
// double over fixed blocks combined in order: the result does not depend on the thread
// count. NaN anywhere gives NaN.
template <class T>
double total_norm(const std::vector<const T*>& xs, const std::vector<index_t>& ns, double p);

// The first non-finite value (NaN or +-inf): {array k, flat index i}, or {-1, -1}.
struct FlatIndex {
  index_t array = -1, index = -1;
};
template <class T>
FlatIndex first_nonfinite(const std::vector<const T*>& xs, const std::vector<index_t>& ns);

// x *= s, every array.
template <class T> void scale_arrays(const std::vector<T*>& xs, const std::vector<index_t>& ns, T s);
// x = clamp(x, -c, c), every array (NaN stays NaN, as torch.clamp).
template <class T> void clip_arrays(const std::vector<T*>& xs, const std::vector<index_t>& ns, T c);

// W viewed as (outer, K, inner): every K-vector W[o, :, j] whose 2-norm exceeds max_norm is
// multiplied by max_norm / (norm + 1e-7), as torch.renorm; the others are left alone.
template <class T>
void max_norm_constraint(T* W, index_t outer, index_t K, index_t inner, double max_norm);

}  // namespace nnkern
