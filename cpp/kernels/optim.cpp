#include "kernels/optim.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/reduce.hpp"

namespace nnkern {

namespace {

// Run f(seg, lo, hi) over the concatenation of all segments, split into one contiguous chunk
// of the total length per thread: a chunk covers the tail of one segment and the head of the
// next, so many small tensors cost no more than one large one.
template <class T, class F>
void for_each_chunk(const std::vector<Segment<T>>& segs, F&& f) {
  index_t total = 0;
  for (const auto& s : segs) total += s.n;
  parallel_chunks(total, [&](index_t b, index_t e) {
    index_t off = 0;
    for (const auto& s : segs) {
      const index_t lo = std::max(b, off), hi = std::min(e, off + s.n);
      if (lo < hi) f(s, lo - off, hi - off);
      off += s.n;
      if (off >= e) break;
    }
  });
}

// torch.lerp's formula for a scalar weight w: a + w (b - a) for w < 0.5, else
// b - (b - a)(1 - w), so that w = 1 gives b exactly; w_rest = 1 - w in T.
template <class T>
inline T lerp(T a, T b, T w, T w_rest, bool low) {
  return low ? a + w * (b - a) : b - (b - a) * w_rest;
}

// ---- the per-segment loops; __restrict lets the compiler vectorize them

template <class T, bool Momentum>
void sgd_range(T* __restrict p, const T* __restrict g, T* __restrict b, index_t lo, index_t hi,
               const SgdHyper& h) {
  const T lr = T(h.lr), mom = T(h.momentum), damp = T(1.0 - h.dampening), wd = T(h.weight_decay),
          gs = T(h.grad_scale);
  const bool first = h.first_step, nesterov = h.nesterov;
#pragma omp simd
  for (index_t i = lo; i < hi; ++i) {
    T d = g[i] * gs + wd * p[i];
    if constexpr (Momentum) {
      const T bi = first ? d : mom * b[i] + damp * d;
      b[i] = bi;
      d = nesterov ? d + mom * bi : bi;
    }
    p[i] = p[i] - lr * d;
  }
}

template <class T>
void rprop_range(T* __restrict p, const T* __restrict g, T* __restrict prev, T* __restrict step,
                 index_t lo, index_t hi, const RpropHyper& h) {
  // Packets with explicit selects: written as ternaries, the loop stays scalar and branchy
  // on AVX2 (5.9 GB/s on Zen 3, a quarter of Adam's pass over as many arrays). The tail goes
  // through the same packet code on padded copies.
  namespace ei = Eigen::internal;
  using P = typename ei::packet_traits<T>::type;
  constexpr index_t L = ei::unpacket_traits<P>::size;
  const P vem = ei::pset1<P>(T(h.eta_minus)), vep = ei::pset1<P>(T(h.eta_plus)),
          vmin = ei::pset1<P>(T(h.step_min)), vmax = ei::pset1<P>(T(h.step_max)),
          vgs = ei::pset1<P>(T(h.grad_scale)), one = ei::pset1<P>(T(1)), mone = ei::pset1<P>(T(-1)),
          zero = ei::pset1<P>(T(0));
  const auto body = [&](T* pp, const T* gg, T* pv, T* sp) {
    P gi = ei::pmul(ei::ploadu<P>(gg), vgs);
    const P q = ei::pmul(gi, ei::ploadu<P>(pv));
    const P neg = ei::pcmp_lt(q, zero);
    const P eta = ei::pselect(ei::pcmp_lt(zero, q), vep, ei::pselect(neg, vem, one));
    P st = ei::pmul(ei::ploadu<P>(sp), eta);
    st = ei::pselect(ei::pcmp_lt(st, vmin), vmin, ei::pselect(ei::pcmp_lt(vmax, st), vmax, st));
    ei::pstoreu(sp, st);
    gi = ei::pselect(neg, zero, gi);  // a sign change: no move now, and no sign test next step
    const P sg = ei::pselect(ei::pcmp_lt(zero, gi), one, ei::pselect(ei::pcmp_lt(gi, zero), mone, zero));
    ei::pstoreu(pp, ei::psub(ei::ploadu<P>(pp), ei::pmul(sg, st)));
    ei::pstoreu(pv, gi);
  };
  index_t i = lo;
  for (; i + L <= hi; i += L) body(p + i, g + i, prev + i, step + i);
  if (i < hi) {
    const index_t n = hi - i;
    alignas(64) T bp[L] = {}, bg[L] = {}, bv[L] = {}, bs[L] = {};
    std::copy_n(p + i, n, bp);
    std::copy_n(g + i, n, bg);
    std::copy_n(prev + i, n, bv);
    std::copy_n(step + i, n, bs);
    body(bp, bg, bv, bs);
    std::copy_n(bp, n, p + i);
    std::copy_n(bv, n, prev + i);
    std::copy_n(bs, n, step + i);
  }
}

template <class T, bool Centered, bool Momentum>
void rmsprop_range(T* __restrict p, const T* __restrict g, T* __restrict sq, T* __restrict buf,
                   T* __restrict ga, index_t lo, index_t hi, const RmspropHyper& h) {
  const T lr = T(h.lr), a = T(h.alpha), w = T(1.0 - h.alpha), eps = T(h.eps),
          wd = T(h.weight_decay), mom = T(h.momentum), gs = T(h.grad_scale);
  const bool low = (1.0 - h.alpha) < 0.5;
  const T a_rest = T(1) - w;
#pragma omp simd
  for (index_t i = lo; i < hi; ++i) {
    const T gi = g[i] * gs + wd * p[i];
    const T s = a * sq[i] + w * gi * gi;
    sq[i] = s;
    T avg;
    if constexpr (Centered) {
      const T m = lerp(ga[i], gi, w, a_rest, low);
      ga[i] = m;
      avg = std::sqrt(s - m * m) + eps;
    } else {
      avg = std::sqrt(s) + eps;
    }
    if constexpr (Momentum) {
      const T bi = mom * buf[i] + gi / avg;
      buf[i] = bi;
      p[i] = p[i] - lr * bi;
    } else {
      p[i] = p[i] - lr * (gi / avg);
    }
  }
}

template <class T, bool Amsgrad>
void adam_range(T* __restrict p, const T* __restrict g, T* __restrict m, T* __restrict v,
                T* __restrict vmax, index_t lo, index_t hi, const AdamHyper& h) {
  // Coupled decay adds wd p to the gradient; decoupled (AdamW) shrinks p first. Both are
  // always applied (one with a zero coefficient, one with a unit factor): a memory-bound
  // loop pays nothing for the extra multiply and needs no extra variant.
  const T wd = h.decoupled ? T(0) : T(h.weight_decay);
  const T shrink = h.decoupled ? T(1.0 - h.lr * h.weight_decay) : T(1);
  const T w1 = T(1.0 - h.beta1), b2 = T(h.beta2), w2 = T(1.0 - h.beta2), eps = T(h.eps),
          step_size = T(h.step_size), bc2 = T(h.bc2_sqrt), gs = T(h.grad_scale);
  const bool low = (1.0 - h.beta1) < 0.5;
  const T w1_rest = T(1) - w1;
#pragma omp simd
  for (index_t i = lo; i < hi; ++i) {
    const T pi = p[i] * shrink;
    const T gi = g[i] * gs + wd * pi;
    const T mi = lerp(m[i], gi, w1, w1_rest, low);
    const T vi = b2 * v[i] + w2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    T vh = vi;
    if constexpr (Amsgrad) {
      vh = vmax[i] > vi ? vmax[i] : vi;
      vmax[i] = vh;
    }
    p[i] = pi - step_size * (mi / (std::sqrt(vh) / bc2 + eps));
  }
}

// ---- reductions over lists of arrays: fixed blocks, combined in order

constexpr index_t kRedBlock = index_t(1) << 16;

struct Block {
  index_t array, begin, end;
};

inline std::vector<Block> blocks_of(const std::vector<index_t>& ns) {
  std::vector<Block> bl;
  for (index_t k = 0; k < index_t(ns.size()); ++k)
    for (index_t b = 0; b < ns[k]; b += kRedBlock) bl.push_back({k, b, std::min(ns[k], b + kRedBlock)});
  return bl;
}

inline index_t total_of(const std::vector<index_t>& ns) {
  index_t t = 0;
  for (index_t n : ns) t += n;
  return t;
}

template <class T>
double block_max_abs(const T* x, index_t n) {
  // max|x| in eight lanes; NaN is counted separately (a comparison would drop it) and wins.
  T mx[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int nan = 0;
  index_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) {
      const T a = std::abs(x[i + j]);
      mx[j] = a > mx[j] ? a : mx[j];
      nan |= int(a != a);
    }
  for (; i < n; ++i) {
    const T a = std::abs(x[i]);
    mx[0] = a > mx[0] ? a : mx[0];
    nan |= int(a != a);
  }
  T m = 0;
  for (T v : mx) m = v > m ? v : m;
  return nan ? std::numeric_limits<double>::quiet_NaN() : double(m);
}

}  // namespace

// ---------------------------------------------------------------------------------------
// updates

template <class T>
void sgd_update(const std::vector<Segment<T>>& segs, const SgdHyper& h) {
  for_each_chunk(segs, [&](const Segment<T>& s, index_t lo, index_t hi) {
    if (h.momentum != 0)
      sgd_range<T, true>(s.p, s.g, s.s0, lo, hi, h);
    else
      sgd_range<T, false>(s.p, s.g, s.s0, lo, hi, h);
  });
}

template <class T>
void rprop_update(const std::vector<Segment<T>>& segs, const RpropHyper& h) {
  for_each_chunk(segs, [&](const Segment<T>& s, index_t lo, index_t hi) {
    rprop_range<T>(s.p, s.g, s.s0, s.s1, lo, hi, h);
  });
}

template <class T>
void rmsprop_update(const std::vector<Segment<T>>& segs, const RmspropHyper& h) {
  const bool mom = h.momentum > 0;
  for_each_chunk(segs, [&](const Segment<T>& s, index_t lo, index_t hi) {
    if (h.centered && mom)
      rmsprop_range<T, true, true>(s.p, s.g, s.s0, s.s1, s.s2, lo, hi, h);
    else if (h.centered)
      rmsprop_range<T, true, false>(s.p, s.g, s.s0, s.s1, s.s2, lo, hi, h);
    else if (mom)
      rmsprop_range<T, false, true>(s.p, s.g, s.s0, s.s1, s.s2, lo, hi, h);
    else
      rmsprop_range<T, false, false>(s.p, s.g, s.s0, s.s1, s.s2, lo, hi, h);
  });
}

template <class T>
void adam_update(const std::vector<Segment<T>>& segs, const AdamHyper& h) {
  for_each_chunk(segs, [&](const Segment<T>& s, index_t lo, index_t hi) {
    if (h.amsgrad)
      adam_range<T, true>(s.p, s.g, s.s0, s.s1, s.s2, lo, hi, h);
    else
      adam_range<T, false>(s.p, s.g, s.s0, s.s1, s.s2, lo, hi, h);
  });
}

// ---------------------------------------------------------------------------------------
// norms and clipping

template <class T>
double total_norm(const std::vector<const T*>& xs, const std::vector<index_t>& ns, double p) {
  const std::vector<Block> bl = blocks_of(ns);
  std::vector<double> part(bl.size());
  const bool inf = std::isinf(p);
  parallel_rows(index_t(bl.size()), total_of(ns), [&](index_t b) {
    const T* x = xs[bl[b].array] + bl[b].begin;
    const index_t m = bl[b].end - bl[b].begin;
    if (inf)
      part[b] = block_max_abs(x, m);
    else if (p == 2)
      part[b] = block_sum(x, m, [](double a) { return a * a; });
    else if (p == 1)
      part[b] = block_sum(x, m, [](double a) { return std::abs(a); });
    else
      part[b] = block_sum(x, m, [p](double a) { return std::pow(std::abs(a), p); });
  });
  double r = 0;
  if (inf) {
    for (double v : part) r = (v > r || v != v) ? v : r;
    return r;
  }
  for (double v : part) r += v;
  if (p == 2) return std::sqrt(r);
  if (p == 1) return r;
  return std::pow(r, 1.0 / p);
}

template <class T>
FlatIndex first_nonfinite(const std::vector<const T*>& xs, const std::vector<index_t>& ns) {
  const std::vector<Block> bl = blocks_of(ns);
  std::vector<index_t> first(bl.size(), -1);
  parallel_rows(index_t(bl.size()), total_of(ns), [&](index_t b) {
    const T* x = xs[bl[b].array];
    int any = 0;  // branch-free scan first: x - x is 0 for finite x, NaN otherwise
    // a line at a time, asking for the line 1 KiB ahead. The scan runs after an update has
    // left its writes in cache (every step but the first), and then ran at 2/3 of its speed
    // on clean memory. A checked Adam step over 16M floats (Xeon, 2 threads) took 11.0-11.2 ms
    // at best without the prefetch, 10.6-10.8 ms with it.
    constexpr index_t LN = 64 / sizeof(T), AHEAD = 1024 / sizeof(T);
    index_t i = bl[b].begin;
    for (; i + LN <= bl[b].end; i += LN) {
      __builtin_prefetch(x + i + AHEAD, 0, 0);
#pragma omp simd reduction(|:any)
      for (index_t e = 0; e < LN; ++e) any |= int(x[i + e] - x[i + e] != T(0));
    }
    for (; i < bl[b].end; ++i) any |= int(x[i] - x[i] != T(0));
    if (!any) return;
    for (index_t i = bl[b].begin; i < bl[b].end; ++i)
      if (!std::isfinite(x[i])) {
        first[b] = i;
        return;
      }
  });
  for (size_t b = 0; b < bl.size(); ++b)
    if (first[b] >= 0) return {bl[b].array, first[b]};
  return {};
}

namespace {
// x[i] = f(x[i]) over every array, one parallel pass.
template <class T, class F>
void map_arrays(const std::vector<T*>& xs, const std::vector<index_t>& ns, F f) {
  std::vector<Segment<T>> segs(xs.size());
  for (size_t k = 0; k < xs.size(); ++k) segs[k].p = xs[k], segs[k].n = ns[k];
  for_each_chunk(segs, [f](const Segment<T>& g, index_t lo, index_t hi) {
    T* __restrict x = g.p;
    for (index_t i = lo; i < hi; ++i) x[i] = f(x[i]);
  });
}
}  // namespace

template <class T>
void scale_arrays(const std::vector<T*>& xs, const std::vector<index_t>& ns, T s) {
  map_arrays(xs, ns, [s](T x) { return x * s; });
}

template <class T>
void clip_arrays(const std::vector<T*>& xs, const std::vector<index_t>& ns, T c) {
  // comparisons that are false for NaN, so NaN passes through
  map_arrays(xs, ns, [c](T x) { return x > c ? c : (x < -c ? -c : x); });
}

template <class T>
void max_norm_constraint(T* W, index_t outer, index_t K, index_t inner, double max_norm) {
  auto scale_of = [max_norm](double sumsq) {
    const double norm = std::sqrt(sumsq);
    return norm > max_norm ? T(max_norm / (norm + 1e-7)) : T(1);
  };
  if (inner == 1) {  // contiguous K-vectors (rows): one row per task
    parallel_rows(outer, outer * K, [&](index_t o) {
      T* x = W + o * K;
      const T s = scale_of(block_sum(x, K, [](double a) { return a * a; }));
      if (s != T(1))
        for (index_t k = 0; k < K; ++k) x[k] *= s;
    });
    return;
  }
  // strided K-vectors (columns): tiles of up to 256 neighbouring vectors walked row by row
  constexpr index_t kTileW = 256;
  const index_t tiles = (inner + kTileW - 1) / kTileW;
  parallel_rows(outer * tiles, outer * K * inner, [&](index_t t) {
    const index_t o = t / tiles, j0 = (t % tiles) * kTileW, w = std::min(kTileW, inner - j0);
    T* base = W + o * K * inner + j0;
    double acc[kTileW] = {};
    for (index_t k = 0; k < K; ++k)
      for (index_t j = 0; j < w; ++j) {
        const double a = base[k * inner + j];
        acc[j] += a * a;
      }
    T s[kTileW];
    bool any = false;
    for (index_t j = 0; j < w; ++j) any |= (s[j] = scale_of(acc[j])) != T(1);
    if (!any) return;
    for (index_t k = 0; k < K; ++k)
      for (index_t j = 0; j < w; ++j) base[k * inner + j] *= s[j];
  });
}

#define NNKERN_OPTIM(T)                                                                        \
  template void sgd_update<T>(const std::vector<Segment<T>>&, const SgdHyper&);                \
  template void rprop_update<T>(const std::vector<Segment<T>>&, const RpropHyper&);            \
  template void rmsprop_update<T>(const std::vector<Segment<T>>&, const RmspropHyper&);        \
  template void adam_update<T>(const std::vector<Segment<T>>&, const AdamHyper&);              \
  template double total_norm<T>(const std::vector<const T*>&, const std::vector<index_t>&,     \
                                double);                                                       \
  template FlatIndex first_nonfinite<T>(const std::vector<const T*>&,                          \
                                        const std::vector<index_t>&);                          \
  template void scale_arrays<T>(const std::vector<T*>&, const std::vector<index_t>&, T);       \
  template void clip_arrays<T>(const std::vector<T*>&, const std::vector<index_t>&, T);        \
  template void max_norm_constraint<T>(T*, index_t, index_t, index_t, double);
NNKERN_OPTIM(float)
NNKERN_OPTIM(double)
#undef NNKERN_OPTIM

}  // namespace nnkern
