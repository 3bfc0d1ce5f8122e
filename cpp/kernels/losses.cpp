#include "kernels/losses.hpp"
#include "kernels/packet_math.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace nnkern {

namespace ei = Eigen::internal;

namespace {

constexpr index_t kTile = 256;          // elements evaluated into a stack buffer at a time
constexpr index_t kBlock = 64 * kTile;  // elements behind one partial sum

// Sum of m values in double. Eight independent accumulators let the compiler vectorize the
// float -> double conversion and adds without reassociating anything.
template <class T>
double sum_double(const T* x, index_t m) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  index_t i = 0;
  for (; i + 8 <= m; i += 8)
    for (int j = 0; j < 8; ++j) acc[j] += double(x[i + j]);
  for (; i < m; ++i) acc[0] += double(x[i]);
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

// Per-block results combined in block order: the sum is added up in a fixed order and the
// first invalid index kept is the first in the whole array, whatever the thread count.
LossResult combine(const std::vector<LossResult>& part) {
  LossResult r;
  for (const LossResult& p : part) {
    r.sum += p.sum;
    r.count += p.count;
    if (r.bad_pred < 0) r.bad_pred = p.bad_pred;
    if (r.bad_target < 0) r.bad_target = p.bad_target;
  }
  return r;
}

// Run f(s, m, dst, res) over tiles [s, s + m) of [0, n), in blocks of kBlock elements spread
// over the threads. dst is out + s when the per-element values are wanted (reduce == false),
// else a scratch tile that is summed into res.sum afterwards.
template <class T, class F>
LossResult tiled(index_t n, T* out, bool reduce, F&& f) {
  const index_t nb = (n + kBlock - 1) / kBlock;
  std::vector<LossResult> part(nb);
  parallel_rows(nb, n, [&](index_t b) {
    alignas(64) T tmp[kTile];
    LossResult r;
    const index_t end = std::min(n, (b + 1) * kBlock);
    for (index_t s = b * kBlock; s < end; s += kTile) {
      const index_t m = std::min(kTile, end - s);
      T* dst = reduce ? tmp : out + s;
      f(s, m, dst, r);
      if (reduce) r.sum += sum_double(dst, m);
    }
    part[b] = r;
  });
  return combine(part);
}

// A forward elementwise loss: loss(s, m, dst) writes the losses of [s, s + m) to dst.
template <class T, class F>
LossResult elementwise_loss(index_t n, T* loss, F&& f) {
  return tiled<T>(n, loss, loss == nullptr,
                  [&](index_t s, index_t m, T* dst, LossResult&) { f(s, m, dst); });
}

// Index of the first x[s..s+m) outside [0, 1], or -1. NaN is neither and passes.
template <class T>
index_t first_outside_unit(const T* x, index_t s, index_t m) {
  int any = 0;  // branch-free scan first (an int flag vectorizes, a bool does not)
  for (index_t i = s; i < s + m; ++i) any |= int(x[i] < T(0)) | int(x[i] > T(1));
  if (!any) return -1;
  for (index_t i = s; i < s + m; ++i)
    if (x[i] < T(0) || x[i] > T(1)) return i;
  return -1;
}

template <class T>
constexpr T kLn2 = T(0.693147180559945309417232121458176568L);

}  // namespace

// ---------------------------------------------------------------------------------------
// regression losses

template <class T>
LossResult mse_loss(const T* pred, const T* target, T* loss, index_t n) {
  return elementwise_loss(n, loss, [&](index_t s, index_t m, T* dst) {
    const CMapArr<T> p(pred + s, m), t(target + s, m);
    MapArr<T>(dst, m) = (p - t).square();
  });
}

template <class T>
void mse_loss_backward(const T* pred, const T* target, T* dpred, index_t n, T scale) {
  parallel_chunks(n, [&](index_t b, index_t e) {
    const CMapArr<T> p(pred + b, e - b), t(target + b, e - b);
    // d/dp (p - t)^2 = 2 (p - t)
    MapArr<T>(dpred + b, e - b) = (T(2) * (p - t)) * scale;
  });
}

template <class T>
LossResult mae_loss(const T* pred, const T* target, T* loss, index_t n) {
  return elementwise_loss(n, loss, [&](index_t s, index_t m, T* dst) {
    const CMapArr<T> p(pred + s, m), t(target + s, m);
    MapArr<T>(dst, m) = (p - t).abs();
  });
}

template <class T>
void mae_loss_backward(const T* pred, const T* target, T* dpred, index_t n, T scale) {
  using P = pm::Packet<T>;
  const P zero = ei::pset1<P>(T(0)), vs = ei::pset1<P>(scale);
  parallel_chunks(n, [&](index_t b, index_t e) {
    // sign(d) with sign(0) = 0; d * 0 keeps a NaN a NaN (Eigen's sign() would give 0).
    pm::map2(pred + b, target + b, dpred + b, e - b, [&](const P& p, const P& t) {
      const P d = ei::psub(p, t);
      return ei::pselect(ei::pcmp_lt(zero, d), vs,
                         ei::pselect(ei::pcmp_lt(d, zero), ei::pnegate(vs), ei::pmul(d, zero)));
    });
  });
}

template <class T>
LossResult huber_loss(const T* pred, const T* target, T* loss, index_t n, T delta) {
  using P = pm::Packet<T>;
  const P vd = ei::pset1<P>(delta), half = ei::pset1<P>(T(0.5)), hd = ei::pset1<P>(T(0.5) * delta);
  return elementwise_loss(n, loss, [&](index_t s, index_t m, T* dst) {
    // quadratic inside [-delta, delta], linear outside; NaN fails the test and stays NaN
    pm::map2(pred + s, target + s, dst, m, [&](const P& p, const P& t) {
      const P d = ei::psub(p, t), a = ei::pabs(d);
      return ei::pselect(ei::pcmp_lt(a, vd), ei::pmul(half, ei::pmul(d, d)), ei::pmul(vd, ei::psub(a, hd)));
    });
  });
}

template <class T>
void huber_loss_backward(const T* pred, const T* target, T* dpred, index_t n, T scale, T delta) {
  using P = pm::Packet<T>;
  const P vd = ei::pset1<P>(delta), vs = ei::pset1<P>(scale);
  parallel_chunks(n, [&](index_t b, index_t e) {
    // clip(d, -delta, delta) written with selects so that NaN passes through
    pm::map2(pred + b, target + b, dpred + b, e - b, [&](const P& p, const P& t) {
      const P d = ei::psub(p, t), nd = ei::pnegate(vd);
      return ei::pmul(ei::pselect(ei::pcmp_lt(vd, d), vd, ei::pselect(ei::pcmp_lt(d, nd), nd, d)), vs);
    });
  });
}

template <class T>
LossResult log_cosh_loss(const T* pred, const T* target, T* loss, index_t n) {
  return elementwise_loss(n, loss, [&](index_t s, index_t m, T* dst) {
    const CMapArr<T> p(pred + s, m), t(target + s, m);
    const auto a = (p - t).abs();
    // cosh(d) = e^|d| (1 + e^-2|d|) / 2: never forms e^|d|, so |d| of 1e4 and beyond is fine.
    MapArr<T>(dst, m) = a + (T(-2) * a).exp().log1p() - kLn2<T>;
  });
}

template <class T>
void log_cosh_loss_backward(const T* pred, const T* target, T* dpred, index_t n, T scale) {
  parallel_chunks(n, [&](index_t b, index_t e) {
    const CMapArr<T> p(pred + b, e - b), t(target + b, e - b);
    MapArr<T>(dpred + b, e - b) = (p - t).tanh() * scale;
  });
}

// ---------------------------------------------------------------------------------------
// binary cross-entropy

template <class T>
LossResult binary_cross_entropy(const T* pred, const T* target, T* loss, index_t n) {
  return tiled<T>(n, loss, loss == nullptr, [&](index_t s, index_t m, T* dst, LossResult& r) {
    if (r.bad_pred < 0) r.bad_pred = first_outside_unit(pred, s, m);
    if (r.bad_target < 0) r.bad_target = first_outside_unit(target, s, m);
    const CMapArr<T> p(pred + s, m), t(target + s, m);
    MapArr<T> logp(dst, m);
    alignas(64) T buf[kTile];
    MapArr<T> log1mp(buf, m);
    // PyTorch clamps each log at -100 so that p = 0 or 1 gives a finite loss (and 0 * log 0
    // gives 0, not NaN). The selects keep NaN a NaN.
    using P = pm::Packet<T>;
    const P lo = ei::pset1<P>(T(-100));
    const auto clamp = [&](const P& v) { return ei::pselect(ei::pcmp_lt(v, lo), lo, v); };
    logp = p.log();
    pm::map(dst, dst, m, clamp);
    log1mp = (-p).log1p();
    pm::map(buf, buf, m, clamp);
    logp = (t - T(1)) * log1mp - t * logp;
  });
}

template <class T>
LossResult binary_cross_entropy_backward(const T* pred, const T* target, T* dpred, index_t n, T scale) {
  return tiled<T>(n, dpred, false, [&](index_t s, index_t m, T* dst, LossResult& r) {
    if (r.bad_pred < 0) r.bad_pred = first_outside_unit(pred, s, m);
    if (r.bad_target < 0) r.bad_target = first_outside_unit(target, s, m);
    const CMapArr<T> p(pred + s, m), t(target + s, m);
    MapArr<T> g(dst, m);
    // d/dp = (p - t) / (p (1 - p)); PyTorch bounds the denominator below by 1e-12, a float
    // constant for both dtypes (so 9.99999996e-13 in double too).
    constexpr T eps = T(1e-12f);
    using P = pm::Packet<T>;
    const P ve = ei::pset1<P>(eps);
    g = (T(1) - p) * p;
    pm::map(dst, dst, m, [&](const P& v) { return ei::pselect(ei::pcmp_lt(v, ve), ve, v); });
    g = (p - t) / g * scale;
  });
}

namespace {
// pos_weight of the elements [s, s + m) of an (n / C, C) array: w[j] = pos_weight[(s + j) % C]
template <class T>
void gather_pos_weight(const T* pos_weight, index_t C, index_t s, index_t m, T* w) {
  index_t c = s % C;
  for (index_t j = 0; j < m; ++j) {
    w[j] = pos_weight[c];
    if (++c == C) c = 0;
  }
}
}  // namespace

template <class T>
LossResult binary_cross_entropy_with_logits(const T* x, const T* target, const T* pos_weight,
                                            T* loss, index_t n, index_t C) {
  return elementwise_loss(n, loss, [&](index_t s, index_t m, T* dst) {
    const CMapArr<T> xx(x + s, m), t(target + s, m);
    // softplus(-x) = log(1 + e^-x) = max(-x, 0) + log1p(e^-|x|): exp never overflows.
    const auto log1p_exp = (-xx.abs()).exp().log1p();
    if (pos_weight == nullptr) {
      MapArr<T>(dst, m) = xx.max(T(0)) - xx * t + log1p_exp;
    } else {
      alignas(64) T wbuf[kTile];
      gather_pos_weight(pos_weight, C, s, m, wbuf);
      const CMapArr<T> w(wbuf, m);
      // PyTorch: (1 - t) x - (1 + (pos_weight - 1) t) log_sigmoid(x)
      MapArr<T>(dst, m) = (T(1) - t) * xx + (T(1) + (w - T(1)) * t) * ((-xx).max(T(0)) + log1p_exp);
    }
  });
}

template <class T>
void binary_cross_entropy_with_logits_backward(const T* x, const T* target, const T* pos_weight,
                                               T* dx, index_t n, index_t C, T scale) {
  parallel_chunks(n, [&](index_t b, index_t e) {
    if (pos_weight == nullptr) {
      const CMapArr<T> xx(x + b, e - b), t(target + b, e - b);
      MapArr<T>(dx + b, e - b) = (xx.logistic() - t) * scale;
      return;
    }
    alignas(64) T wbuf[kTile];
    for (index_t s = b; s < e; s += kTile) {
      const index_t m = std::min(kTile, e - s);
      gather_pos_weight(pos_weight, C, s, m, wbuf);
      const CMapArr<T> xx(x + s, m), t(target + s, m), w(wbuf, m);
      // PyTorch: (pos_weight t + 1 - t) sigmoid(x) - pos_weight t
      MapArr<T>(dx + s, m) = ((w * t + T(1) - t) * xx.logistic() - w * t) * scale;
    }
  });
}

// ---------------------------------------------------------------------------------------
// cross-entropy over rows of logits (N, C)

namespace {

// Rows behind one partial sum: about kBlock elements, at least one row.
inline index_t rows_per_block(index_t C) { return std::max<index_t>(1, kBlock / std::max<index_t>(C, 1)); }

// row_loss(i) for every row i, written to loss (N,) or, with loss == nullptr, summed in
// double over fixed blocks of rows combined in order.
template <class T, class F>
double over_rows(index_t N, index_t C, T* loss, F&& row_loss) {
  const index_t rows = rows_per_block(C);
  const index_t nb = (N + rows - 1) / rows;
  std::vector<double> part(nb, 0.0);
  parallel_rows(nb, N * C, [&](index_t b) {
    double acc = 0.0;
    const index_t end = std::min(N, (b + 1) * rows);
    for (index_t i = b * rows; i < end; ++i) {
      const T li = row_loss(i);
      if (loss)
        loss[i] = li;
      else
        acc += double(li);
    }
    part[b] = acc;
  });
  double s = 0.0;
  for (double p : part) s += p;
  return s;
}

// The row's maximum m and log(sum(exp(x - m))): then log p_c = (x_c - m) - logs. Taking
// x_c - m first keeps log p accurate when |x| is large (1e4) and p is not small.
template <class T>
inline void row_logsumexp(const CMapArr<T>& x, T& m, T& logs) {
  m = x.maxCoeff();
  logs = std::log((x - m).exp().sum());
}

// Counts the non-ignored labels; the first label outside [0, C) that is not ignore_index
// goes to bad_target. One pass over N integers, negligible next to the N x C rows.
LossResult check_labels(const index_t* labels, index_t N, index_t C, index_t ignore_index) {
  LossResult r;
  for (index_t i = 0; i < N; ++i) {
    const index_t y = labels[i];
    if (y == ignore_index) continue;
    if (y < 0 || y >= C) {
      r.bad_target = i;
      return r;
    }
    ++r.count;
  }
  return r;
}

}  // namespace

template <class T>
LossResult cross_entropy(const T* logits, const index_t* labels, T* loss, index_t N, index_t C,
                         index_t ignore_index, T label_smoothing) {
  LossResult r = check_labels(labels, N, C, ignore_index);
  if (r.bad_target >= 0) return r;
  const T eps = label_smoothing;
  r.sum = over_rows(N, C, loss, [&](index_t i) -> T {
    const index_t y = labels[i];
    if (y == ignore_index) return T(0);  // C >= 1 from here: a label in [0, C) exists
    const CMapArr<T> x(logits + i * C, C);
    T m, logs;
    row_logsumexp(x, m, logs);
    const T nll = logs - (x[y] - m);  // -log p_y
    if (eps == T(0)) return nll;
    const T smooth = (logs - (x - m)).sum();  // sum_c -log p_c
    return (T(1) - eps) * nll + eps / T(C) * smooth;
  });
  return r;
}

template <class T>
LossResult cross_entropy_backward(const T* logits, const index_t* labels, T* dlogits, index_t N,
                                  index_t C, index_t ignore_index, T label_smoothing, bool mean) {
  LossResult r = check_labels(labels, N, C, ignore_index);
  if (r.bad_target >= 0) return r;
  const T eps = label_smoothing;
  // With every row ignored nothing contributes: the gradient is 0, as in PyTorch.
  const T scale = !mean ? T(1) : r.count > 0 ? T(1) / T(r.count) : T(0);
  parallel_rows(N, N * C, [&](index_t i) {
    MapArr<T> g(dlogits + i * C, C);
    const index_t y = labels[i];
    if (y == ignore_index) {
      g.setZero();
      return;
    }
    const CMapArr<T> x(logits + i * C, C);
    // softmax - q in one pass over the row, q = (1 - eps) onehot(y) + eps / C
    const T m = x.maxCoeff();
    g = (x - m).exp();
    const T a = scale / g.sum();
    if (eps == T(0))
      g *= a;
    else
      g = g * a - scale * eps / T(C);
    g[y] -= scale * (T(1) - eps);
  });
  return r;
}

template <class T>
LossResult cross_entropy_probs(const T* logits, const T* target, T* loss, index_t N, index_t C,
                               T label_smoothing) {
  LossResult r;
  r.count = N;
  if (C == 0) {  // each row sums over no classes
    if (loss) std::fill(loss, loss + N, T(0));
    return r;
  }
  const T eps = label_smoothing;
  r.sum = over_rows(N, C, loss, [&](index_t i) -> T {
    const CMapArr<T> x(logits + i * C, C), t(target + i * C, C);
    T m, logs;
    row_logsumexp(x, m, logs);
    // -sum_c q_c log p_c, with log p_c = (x_c - m) - logs
    if (eps == T(0)) return -(((x - m) - logs) * t).sum();
    return -(((x - m) - logs) * (t * (T(1) - eps) + eps / T(C))).sum();
  });
  return r;
}

template <class T>
void cross_entropy_probs_backward(const T* logits, const T* target, T* dlogits, index_t N, index_t C,
                                  T label_smoothing, T scale) {
  if (C == 0) return;
  const T eps = label_smoothing;
  parallel_rows(N, N * C, [&](index_t i) {
    const CMapArr<T> x(logits + i * C, C), t(target + i * C, C);
    MapArr<T> g(dlogits + i * C, C);
    // d/dx of -sum_c q_c log softmax(x)_c = softmax * sum_c q_c - q (q need not sum to 1)
    const T m = x.maxCoeff();
    g = (x - m).exp();
    const T inv = T(1) / g.sum();
    if (eps == T(0)) {
      g = (g * (inv * t.sum()) - t) * scale;
    } else {
      const auto q = t * (T(1) - eps) + eps / T(C);
      g = (g * (inv * q.sum()) - q) * scale;
    }
  });
}

#define NNKERN_INSTANTIATE(T)                                                                      \
  template LossResult mse_loss<T>(const T*, const T*, T*, index_t);                                \
  template void mse_loss_backward<T>(const T*, const T*, T*, index_t, T);                          \
  template LossResult mae_loss<T>(const T*, const T*, T*, index_t);                                \
  template void mae_loss_backward<T>(const T*, const T*, T*, index_t, T);                          \
  template LossResult huber_loss<T>(const T*, const T*, T*, index_t, T);                           \
  template void huber_loss_backward<T>(const T*, const T*, T*, index_t, T, T);                     \
  template LossResult log_cosh_loss<T>(const T*, const T*, T*, index_t);                           \
  template void log_cosh_loss_backward<T>(const T*, const T*, T*, index_t, T);                     \
  template LossResult binary_cross_entropy<T>(const T*, const T*, T*, index_t);                    \
  template LossResult binary_cross_entropy_backward<T>(const T*, const T*, T*, index_t, T);        \
  template LossResult binary_cross_entropy_with_logits<T>(const T*, const T*, const T*, T*, index_t, \
                                                          index_t);                                \
  template void binary_cross_entropy_with_logits_backward<T>(const T*, const T*, const T*, T*,     \
                                                             index_t, index_t, T);                 \
  template LossResult cross_entropy<T>(const T*, const index_t*, T*, index_t, index_t, index_t, T); \
  template LossResult cross_entropy_backward<T>(const T*, const index_t*, T*, index_t, index_t,    \
                                                index_t, T, bool);                                 \
  template LossResult cross_entropy_probs<T>(const T*, const T*, T*, index_t, index_t, T);         \
  template void cross_entropy_probs_backward<T>(const T*, const T*, T*, index_t, index_t, T, T);
NNKERN_INSTANTIATE(float)
NNKERN_INSTANTIATE(double)
#undef NNKERN_INSTANTIATE

}  // namespace nnkern
