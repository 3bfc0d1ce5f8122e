#include "kernels/activations.hpp"
#include "kernels/packet_math.hpp"
#include "kernels/stream.hpp"

#include <algorithm>

#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

namespace nnkern {

namespace ei = Eigen::internal;

template <class T>
void sigmoid(const T* x, T* y, index_t n) {
  using P = pm::Packet<T>;
  const ei::scalar_logistic_op<T> op;  // the stable form: it never forms exp(+large)
  // float: below Eigen's exp clamp (-88.376) its logistic returns exp(-88.376), a constant
  // subnormal (on AVX2; AVX-512 happens to flush it); the true value there is a subnormal
  // at most that size or 0, so give 0, as 1 / (1 + exp(-x)) rounds to for x <= -104.
  const P lo = ei::pset1<P>(std::is_same_v<T, float> ? T(-88.3762626647949) : T(-745.2)),
          zero = ei::pset1<P>(T(0));
  elementwise(y, n, [&](index_t b, index_t e, T* dst) {
    pm::map(x + b, dst, e - b,
            [&](const P& v) { return ei::pselect(ei::pcmp_lt(v, lo), zero, op.packetOp(v)); });
  });
}

template <class T>
void sigmoid_backward(const T* dy, const T* y, T* dx, index_t n) {
  elementwise(dx, n, [&](index_t b, index_t e, T* dst) {
    auto yy = CMapArr<T>(y + b, e - b);
    MapArr<T>(dst, e - b) = CMapArr<T>(dy + b, e - b) * yy * (T(1) - yy);
  });
}

template <class T>
void tanh_forward(const T* x, T* y, index_t n) {
  elementwise(y, n, [&](index_t b, index_t e, T* dst) {
    MapArr<T>(dst, e - b) = CMapArr<T>(x + b, e - b).tanh();
  });
}

template <class T>
void tanh_backward(const T* dy, const T* y, T* dx, index_t n) {
  elementwise(dx, n, [&](index_t b, index_t e, T* dst) {
    auto yy = CMapArr<T>(y + b, e - b);
    MapArr<T>(dst, e - b) = CMapArr<T>(dy + b, e - b) * (T(1) - yy * yy);
  });
}

template <class T>
void leaky_relu(const T* x, T* y, index_t n, T alpha) {
  using P = pm::Packet<T>;
  const P zero = ei::pset1<P>(T(0)), va = ei::pset1<P>(alpha);
  elementwise(y, n, [&](index_t b, index_t e, T* dst) {
    // (x < 0) is false for NaN, so NaN passes through as NumPy's maximum does.
    if (alpha == T(0))
      pm::map(x + b, dst, e - b, [&](const P& v) { return ei::pselect(ei::pcmp_lt(v, zero), zero, v); });
    else
      pm::map(x + b, dst, e - b,
              [&](const P& v) { return ei::pselect(ei::pcmp_lt(v, zero), ei::pmul(v, va), v); });
  });
}

template <class T>
void leaky_relu_backward(const T* dy, const T* x, T* dx, index_t n, T alpha) {
  using P = pm::Packet<T>;
  const P zero = ei::pset1<P>(T(0)), va = ei::pset1<P>(alpha);
  elementwise(dx, n, [&](index_t b, index_t e, T* dst) {
    pm::map2(x + b, dy + b, dst, e - b, [&](const P& v, const P& g) {
      return ei::pselect(ei::pcmp_lt(zero, v), g, ei::pmul(g, va));
    });
  });
}

// ---------------------------------------------------------------------------------------
// softmax / log_softmax

// exp(x) for x <= 0 (a logit minus its row maximum), on a packet.
// float: the Cephes reduction and degree-5 polynomial that Eigen's pexp uses, so the same
// accuracy (~1 ulp), without its general-purpose parts: inputs here are never positive, so
// 2^m is a normal float built with one shift and one multiply instead of Eigen's
// overflow-safe three-way ldexp. Below -87.3 the result (< FLT_MIN) is flushed to exactly 0,
// as the true value rounds there too; NaN stays NaN. double: Eigen's pexp.
template <class T, class P>
EIGEN_STRONG_INLINE P exp_nonpos(const P& x) {
  if constexpr (std::is_same_v<T, float>) {
    using PI = typename ei::unpacket_traits<P>::integer_packet;
    const P lo = ei::pset1<P>(-87.3f);
    const P xc = ei::pmax(x, lo);  // Eigen's pmax keeps a NaN in its first argument
    const P m = ei::pfloor(ei::pmadd(xc, ei::pset1<P>(1.44269504088896341f), ei::pset1<P>(0.5f)));
    P r = ei::pmadd(m, ei::pset1<P>(-0.693359375f), xc);
    r = ei::pmadd(m, ei::pset1<P>(2.12194440e-4f), r);
    const P r2 = ei::pmul(r, r), r3 = ei::pmul(r2, r);
    P y = ei::pmadd(ei::pset1<P>(1.9875691500E-4f), r, ei::pset1<P>(1.3981999507E-3f));
    P y1 = ei::pmadd(ei::pset1<P>(4.1665795894E-2f), r, ei::pset1<P>(1.6666665459E-1f));
    const P y2 = ei::padd(r, ei::pset1<P>(1.0f));
    y = ei::pmadd(y, r, ei::pset1<P>(8.3334519073E-3f));
    y1 = ei::pmadd(y1, r, ei::pset1<P>(5.0000001201E-1f));
    y = ei::pmadd(y, r3, y1);
    y = ei::pmadd(y, r2, y2);
    const PI e = ei::plogical_shift_left<23>(ei::padd(ei::pcast<P, PI>(m), ei::pset1<PI>(127)));
    y = ei::pmul(y, ei::preinterpret<P>(e));
    return ei::pselect(ei::pcmp_lt(x, lo), ei::pzero(x), y);
  } else {
    return ei::pexp(x);
  }
}

#if defined(__AVX512F__)
// exp(d) for d <= 0 on 16 floats, in 14 vector instructions: the Cephes reduction
// d = n ln2 + r (n = round(d / ln2), ln2 split in two so r is exact to a few ulp), the
// Cephes degree-7 polynomial in Horner form, and 2^n applied with vscalefps. Lanes below
// -87.3 (where the result would be subnormal) are zeroed by the scalef's mask, so -inf
// gives exactly 0; NaN compares unordered, stays unmasked and propagates. Accuracy is that
// of Eigen's pexp (~1 ulp); about 40% fewer instructions than exp_nonpos above.
EIGEN_STRONG_INLINE __m512 exp_nonpos16(__m512 d) {
  const __mmask16 keep = _mm512_cmp_ps_mask(d, _mm512_set1_ps(-87.3f), _CMP_NLT_UQ);
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(d, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fmadd_ps(n, _mm512_set1_ps(-0.693359375f), d);
  r = _mm512_fmadd_ps(n, _mm512_set1_ps(2.12194440e-4f), r);
  // exp(r) = 1 + r (1 + r (1/2 + r (1/6 + ...)))
  __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(1.9875691500E-4f), r, _mm512_set1_ps(1.3981999507E-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073E-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894E-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459E-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201E-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_maskz_scalef_ps(keep, p, n);
}

// The output pass of one block of an earlier row, dst[j] = (src[j] - a) * s - c for j < len
// (softmax: a = c = 0; log_softmax: s = 1), done piecewise so that it can ride along with
// the next row's exp pass: memory then takes the reads and the streaming writes at the same
// time, instead of reads while exp runs and writes while the output pass runs. The body is
// streamed in aligned vectors; the unaligned head and the tail use masked normal stores of
// the same vector arithmetic, so the values never depend on alignment.
struct OutJob {
  const float* src;
  float* dst;
  index_t len, head, nvec, done = 0;  // head elements, then nvec aligned vectors, then a tail
  __m512 va, vs, vc;
  OutJob(const float* src_, float* dst_, index_t len_, float a, float s, float c)
      : src(src_), dst(dst_), len(len_), va(_mm512_set1_ps(a)), vs(_mm512_set1_ps(s)), vc(_mm512_set1_ps(c)) {
    head = std::min<index_t>(len, ((64 - (reinterpret_cast<std::uintptr_t>(dst) & 63)) & 63) / 4);
    nvec = (len - head) / 16;
  }
  __m512 value(__m512 v) const { return _mm512_sub_ps(_mm512_mul_ps(_mm512_sub_ps(v, va), vs), vc); }
  void masked(index_t j, index_t n) const {  // [j, j + n), n < 16 (or 0), normal stores
    if (n <= 0) return;
    const __mmask16 mk = static_cast<__mmask16>((1u << n) - 1u);
    _mm512_mask_storeu_ps(dst + j, mk, value(_mm512_maskz_loadu_ps(mk, src + j)));
  }
  void start() const { masked(0, head); }
  void vec() {  // the next aligned vector, if any is left
    if (done < nvec) {
      const index_t j = head + 16 * done++;
      _mm512_stream_ps(dst + j, value(_mm512_loadu_ps(src + j)));
    }
  }
  void finish() {
    while (done < nvec) vec();
    masked(head + 16 * nvec, len - head - 16 * nvec);
  }
};

// The float exp_sum below for AVX-512: four vectors per iteration (the exp chains are long,
// the out-of-order core overlaps independent ones), and a prefetch of the data kPrefetch
// elements ahead, so the next row or block streams in from memory while this one computes
// (the max pass that first touches a row is otherwise a stall on memory).
constexpr index_t kPrefetch = 2048;

// e[k] = exp(x[k] - m) (when e != nullptr), returning the sum; `job` (if any) advances by
// one output vector per input vector.
static float exp_sum16(const float* x, float* e, index_t K, float m, OutJob* job = nullptr) {
  const __m512 vm = _mm512_set1_ps(m);
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  index_t k = 0;
  if (job) job->start();
  for (; k + 64 <= K; k += 64) {
    if (job) {
      job->vec();
      job->vec();
      job->vec();
      job->vec();
    }
    _mm_prefetch(reinterpret_cast<const char*>(x + k + kPrefetch), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(x + k + kPrefetch + 16), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(x + k + kPrefetch + 32), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(x + k + kPrefetch + 48), _MM_HINT_T0);
    const __m512 e0 = exp_nonpos16(_mm512_sub_ps(_mm512_loadu_ps(x + k), vm));
    const __m512 e1 = exp_nonpos16(_mm512_sub_ps(_mm512_loadu_ps(x + k + 16), vm));
    const __m512 e2 = exp_nonpos16(_mm512_sub_ps(_mm512_loadu_ps(x + k + 32), vm));
    const __m512 e3 = exp_nonpos16(_mm512_sub_ps(_mm512_loadu_ps(x + k + 48), vm));
    if (e) {
      _mm512_storeu_ps(e + k, e0);
      _mm512_storeu_ps(e + k + 16, e1);
      _mm512_storeu_ps(e + k + 32, e2);
      _mm512_storeu_ps(e + k + 48, e3);
    }
    a0 = _mm512_add_ps(a0, e0);
    a1 = _mm512_add_ps(a1, e1);
    a2 = _mm512_add_ps(a2, e2);
    a3 = _mm512_add_ps(a3, e3);
  }
  for (; k + 16 <= K; k += 16) {
    if (job) job->vec();
    const __m512 e0 = exp_nonpos16(_mm512_sub_ps(_mm512_loadu_ps(x + k), vm));
    if (e) _mm512_storeu_ps(e + k, e0);
    a0 = _mm512_add_ps(a0, e0);
  }
  if (k < K) {  // the tail through the same code: masked-off lanes load as -inf (exp = 0)
    const __mmask16 mk = static_cast<__mmask16>((1u << (K - k)) - 1u);
    const __m512 xt = _mm512_mask_loadu_ps(_mm512_set1_ps(-std::numeric_limits<float>::infinity()), mk, x + k);
    const __m512 e0 = exp_nonpos16(_mm512_sub_ps(xt, vm));
    if (e) _mm512_mask_storeu_ps(e + k, mk, e0);
    a1 = _mm512_add_ps(a1, e0);
  }
  if (job) job->finish();
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

// max of x[0, K) with four accumulators; a NaN anywhere gives NaN (vmaxps returns its
// second operand when either is NaN, so the running max goes first and a NaN in x wins).
static float max16(const float* x, index_t K) {
  const __m512 ninf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __m512 m0 = ninf, m1 = ninf, m2 = ninf, m3 = ninf;
  __mmask16 nan = 0;
  index_t k = 0;
  for (; k + 64 <= K; k += 64) {
    const __m512 v0 = _mm512_loadu_ps(x + k), v1 = _mm512_loadu_ps(x + k + 16);
    const __m512 v2 = _mm512_loadu_ps(x + k + 32), v3 = _mm512_loadu_ps(x + k + 48);
    m0 = _mm512_max_ps(m0, v0);
    m1 = _mm512_max_ps(m1, v1);
    m2 = _mm512_max_ps(m2, v2);
    m3 = _mm512_max_ps(m3, v3);
  }
  for (; k + 16 <= K; k += 16) m0 = _mm512_max_ps(m0, _mm512_loadu_ps(x + k));
  if (k < K) {
    const __mmask16 mk = static_cast<__mmask16>((1u << (K - k)) - 1u);
    m1 = _mm512_max_ps(m1, _mm512_mask_loadu_ps(ninf, mk, x + k));
  }
  const __m512 m = _mm512_max_ps(_mm512_max_ps(m0, m1), _mm512_max_ps(m2, m3));
  nan = _mm512_cmp_ps_mask(m, m, _CMP_UNORD_Q);
  if (nan) return std::numeric_limits<float>::quiet_NaN();
  return _mm512_reduce_max_ps(m);
}
#endif

// e[k] = exp(x[k] - m) for k < K (when e != nullptr), returning sum_k exp(x[k] - m):
// one fused, vectorised pass.
template <class T>
static T exp_sum(const T* x, T* e, index_t K, T m) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) return exp_sum16(x, e, K, m);
#endif
  using P = typename ei::packet_traits<T>::type;
  constexpr index_t L = ei::unpacket_traits<P>::size;
  const P vm = ei::pset1<P>(m);
  P acc0 = ei::pset1<P>(T(0)), acc1 = acc0;
  index_t k = 0;
  for (; k + 2 * L <= K; k += 2 * L) {
    const P e0 = exp_nonpos<T>(ei::psub(ei::ploadu<P>(x + k), vm));
    const P e1 = exp_nonpos<T>(ei::psub(ei::ploadu<P>(x + k + L), vm));
    if (e) {
      ei::pstoreu(e + k, e0);
      ei::pstoreu(e + k + L, e1);
    }
    acc0 = ei::padd(acc0, e0);
    acc1 = ei::padd(acc1, e1);
  }
  for (; k + L <= K; k += L) {
    const P e0 = exp_nonpos<T>(ei::psub(ei::ploadu<P>(x + k), vm));
    if (e) ei::pstoreu(e + k, e0);
    acc0 = ei::padd(acc0, e0);
  }
  if (k < K) {  // the tail through the same packet code, padded with -inf (exp = 0)
    alignas(64) T buf[L];
    for (index_t i = 0; i < L; ++i) buf[i] = k + i < K ? x[k + i] : -std::numeric_limits<T>::infinity();
    const P e0 = exp_nonpos<T>(ei::psub(ei::pload<P>(buf), vm));
    ei::pstore(buf, e0);
    for (index_t i = 0; k + i < K; ++i) {
      if (e) e[k + i] = buf[i];
    }
    acc1 = ei::padd(acc1, e0);
  }
  return ei::predux(ei::padd(acc0, acc1));
}

// Row maximum (NaN if the row holds one).
template <class T>
static T row_max(const T* x, index_t K) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) return max16(x, K);
#endif
  return CMapArr<T>(x, K).maxCoeff();
}

// Per-thread workspace of one softmax row.
template <class T>
struct RowWork {
  std::vector<T> scratch;   // exp(x - block max), when the output is streamed
  std::vector<T> bmax, bsum;  // per block of kBlock elements: max and sum of exp
};

// One row of length K, read once from memory. The row is taken in L1-sized blocks; each
// block is reduced to (its max, sum of exp(x - its max)) while it is in cache, and the
// block results are merged at the end, rescaled to the row maximum ("online" softmax,
// Milakov & Gimelshein 2018). softmax keeps exp(x - block max) (in y, or in an L2-resident
// scratch row when y is streamed) so exp is evaluated once per element.
template <class T>
static void softmax_row(const T* x, T* y, index_t K, bool log, bool stream, RowWork<T>& w) {
  const index_t nb = (K + kBlock - 1) / kBlock;
  T* e = log ? nullptr : (stream ? w.scratch.data() : y);
  T m = T(0);
  for (index_t b = 0; b < nb; ++b) {
    const index_t off = b * kBlock, len = std::min(kBlock, K - off);
    const T bm = row_max(x + off, len);
    w.bmax[b] = bm;
    if (bm == -std::numeric_limits<T>::infinity()) {
      // A block of -inf (e.g. masked logits) adds nothing; exp(-inf - -inf) would be NaN.
      w.bsum[b] = T(0);
      if (e) std::fill(e + off, e + off + len, T(0));
    } else {
      w.bsum[b] = exp_sum(x + off, e ? e + off : nullptr, len, bm);
    }
    if (b == 0 || !(bm <= m)) m = bm;  // NaN anywhere makes the row NaN, as in NumPy
  }
  T s = T(0);
  for (index_t b = 0; b < nb; ++b)
    if (w.bsum[b] != T(0)) s += w.bsum[b] * std::exp(w.bmax[b] - m);
  if (log) {
    // (x - m) - log(s), not x - (m + log(s)): at |x| ~ 1e4 in float32 the latter loses
    // the low digits of log(s).
    const T logs = std::log(s);
    auto xx = CMapArr<T>(x, K);
    write_blocks(y, 0, K, stream, [&](index_t b, index_t end, T* dst) {
      MapArr<T>(dst, end - b) = (xx.segment(b, end - b) - m) - logs;
    });
    return;
  }
  const T inv = T(1) / s;
  for (index_t b = 0; b < nb; ++b) {
    const index_t off = b * kBlock, len = std::min(kBlock, K - off);
    const T scale = std::exp(w.bmax[b] - m) * inv;
    if (stream)  // scale on the way out, streamed from registers
      stream_scaled(y + off, e + off, len, scale);
    else
      MapArr<T>(e + off, len) *= scale;
  }
}

#if defined(__AVX512F__)
// softmax / log_softmax of rows [0, n) of length K, float, streamed output: softmax_row's
// arithmetic, software-pipelined by one row. Row r's max and exp-sum passes (reading x_r
// from memory) run together with row r-1's output pass (streaming y_{r-1} out: log_softmax
// from x_{r-1}, still in cache; softmax from the row's saved exp values), block by block, so
// memory serves the reads and the writes at once instead of in turn. Every value is
// computed exactly as softmax_row computes it.
struct PipeRow {
  float* e = nullptr;                    // softmax: exp(x - block max) of the row, K values
  std::vector<float> bmax, bsum, scale;  // per block: max, sum of exp, softmax output scale
  float m = 0, logs = 0;
};

static void softmax_rows_pipelined(const float* x, float* y, index_t n, index_t K, bool log, PipeRow* w) {
  const index_t nb = (K + kBlock - 1) / kBlock;
  constexpr float ninf = -std::numeric_limits<float>::infinity();
  for (index_t r = 0; r <= n; ++r) {
    PipeRow& cur = w[r & 1];
    const PipeRow& prev = w[(r + 1) & 1];
    const float* xr = x + r * K;
    float m = 0;
    for (index_t b = 0; b < nb; ++b) {
      const index_t off = b * kBlock, len = std::min(kBlock, K - off);
      float* yp = y + (r - 1) * K + off;
      OutJob job = log ? OutJob(x + (r - 1) * K + off, yp, len, prev.m, 1.0f, prev.logs)
                       : OutJob(prev.e + off, yp, len, 0.0f, r > 0 ? prev.scale[b] : 0.0f, 0.0f);
      OutJob* jp = r > 0 ? &job : nullptr;
      float* e = log ? nullptr : cur.e + off;
      if (r == n || (cur.bmax[b] = max16(xr + off, len)) == ninf) {
        // after the last row only the output pass is left; a block of -inf adds nothing
        if (r < n) {
          cur.bsum[b] = 0.0f;
          if (e) std::fill(e, e + len, 0.0f);
        }
        if (jp) {
          jp->start();
          jp->finish();
        }
      } else {
        cur.bsum[b] = exp_sum16(xr + off, e, len, cur.bmax[b], jp);
      }
      if (r < n && (b == 0 || !(cur.bmax[b] <= m))) m = cur.bmax[b];
    }
    if (r == n) break;
    float s = 0.0f;
    for (index_t b = 0; b < nb; ++b)
      if (cur.bsum[b] != 0.0f) s += cur.bsum[b] * std::exp(cur.bmax[b] - m);
    cur.m = m;
    if (log) {
      cur.logs = std::log(s);
    } else {
      const float inv = 1.0f / s;
      for (index_t b = 0; b < nb; ++b) cur.scale[b] = std::exp(cur.bmax[b] - m) * inv;
    }
  }
}
#endif

template <class T>
static void softmax_block(const T* x, T* y, index_t K, index_t inner, bool log) {
  // One (K, inner) block, reduced over rows; columns are independent.
  CMapMat<T> xx(x, K, inner);
  MapMat<T> yy(y, K, inner);
  const RowVec<T> m = xx.colwise().maxCoeff();
  if (log) {
    // y may alias x: reduce first, then write.
    const RowVec<T> logs = (xx.rowwise() - m).array().exp().matrix().colwise().sum().array().log().matrix();
    yy = (xx.rowwise() - m).rowwise() - logs;
  } else {
    yy = (xx.rowwise() - m).array().exp().matrix();
    const RowVec<T> s = yy.colwise().sum();
    yy.array().rowwise() *= s.array().inverse();
  }
}

template <class T>
void softmax(const T* x, T* y, index_t outer, index_t K, index_t inner, bool log) {
  if (K == 0 || outer == 0 || inner == 0) return;
  const index_t work = outer * K * inner;
  if (inner != 1) {
    parallel_rows(outer, work, [&](index_t o) {
      softmax_block(x + o * K * inner, y + o * K * inner, K, inner, log);
    });
    return;
  }
  const bool stream = index_t(sizeof(T)) * work >= kStreamBytes;
  const int nt = (work < kParallelGrain || outer == 1) ? 1 : get_num_threads();
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    // softmax only for long rows: for rows of one block the pipelined loop measured ~15%
    // slower than the two passes (its exp pass also stores the exp values, which mixes
    // plain stores into the streaming ones), for rows of several blocks ~10-20% faster.
    if (stream && (log || K >= 2 * kBlock)) {
#pragma omp parallel num_threads(nt)
      {
        // softmax's two scratch rows sit 2 KiB apart modulo 4 KiB (no 4K aliasing between
        // the stores to one and the loads from the other), on whole cache lines
        const index_t gap = K + ((512 - K % 1024) + 1024) % 1024;
        std::vector<float> ebuf(log ? 0 : gap + K + 16);
        float* e0 = ebuf.data();
        while (!log && reinterpret_cast<std::uintptr_t>(e0) % 64) ++e0;
        PipeRow w[2];
        for (int q = 0; q < 2; ++q) {
          w[q].e = log ? nullptr : e0 + q * gap;
          w[q].bmax.resize((K + kBlock - 1) / kBlock);
          w[q].bsum.resize(w[q].bmax.size());
          w[q].scale.resize(w[q].bmax.size());
        }
        // contiguous rows per thread, as schedule(static) gives
        const int t = omp_get_thread_num(), team = omp_get_num_threads();
        const index_t r0 = outer * t / team, r1 = outer * (t + 1) / team;
        if (r0 < r1) softmax_rows_pipelined(x + r0 * K, y + r0 * K, r1 - r0, K, log, w);
        stream_fence();
      }
      return;
    }
  }
#endif
#pragma omp parallel num_threads(nt)
  {
    RowWork<T> w;
    w.scratch.resize(stream && !log ? K : 0);
    w.bmax.resize((K + kBlock - 1) / kBlock);
    w.bsum.resize(w.bmax.size());
#pragma omp for schedule(static)
    for (index_t r = 0; r < outer; ++r) softmax_row(x + r * K, y + r * K, K, log, stream, w);
    if (stream) stream_fence();
  }
}

template <class T>
void softmax_backward(const T* dy, const T* y, T* dx, index_t outer, index_t K, index_t inner, bool log) {
  if (K == 0 || outer == 0 || inner == 0) return;
  const index_t work = outer * K * inner;
  if (inner == 1) {
    const bool stream = index_t(sizeof(T)) * work >= kStreamBytes;
    const int nt = (work < kParallelGrain || outer == 1) ? 1 : get_num_threads();
#pragma omp parallel num_threads(nt)
    {
#pragma omp for schedule(static)
      for (index_t r = 0; r < outer; ++r) {
        auto g = CMapArr<T>(dy + r * K, K);
        auto yy = CMapArr<T>(y + r * K, K);
        // fixed summation order: the same bits whatever the arrays' alignment
        const T s = log ? pm::sum(dy + r * K, static_cast<const T*>(nullptr), K)
                        : pm::sum(dy + r * K, y + r * K, K);
        write_blocks(dx + r * K, 0, K, stream, [&](index_t b, index_t e, T* dst) {
          auto gs = g.segment(b, e - b);
          auto ys = yy.segment(b, e - b);
          if (log)
            MapArr<T>(dst, e - b) = gs - ys.exp() * s;
          else
            MapArr<T>(dst, e - b) = ys * (gs - s);
        });
      }
      if (stream) stream_fence();
    }
  } else {
    parallel_rows(outer, work, [&](index_t o) {
      const index_t off = o * K * inner;
      CMapMat<T> g(dy + off, K, inner), yy(y + off, K, inner);
      MapMat<T> out(dx + off, K, inner);
      if (log) {
        const RowVec<T> s = g.colwise().sum();
        out = g - (yy.array().exp().rowwise() * s.array()).matrix();
      } else {
        const RowVec<T> s = g.cwiseProduct(yy).colwise().sum();
        out = (yy.array() * (g.rowwise() - s).array()).matrix();
      }
    });
  }
}

#define NNKERN_INSTANTIATE(T)                                                              \
  template void sigmoid<T>(const T*, T*, index_t);                                        \
  template void sigmoid_backward<T>(const T*, const T*, T*, index_t);                     \
  template void tanh_forward<T>(const T*, T*, index_t);                                   \
  template void tanh_backward<T>(const T*, const T*, T*, index_t);                        \
  template void leaky_relu<T>(const T*, T*, index_t, T);                                  \
  template void leaky_relu_backward<T>(const T*, const T*, T*, index_t, T);               \
  template void softmax<T>(const T*, T*, index_t, index_t, index_t, bool);                \
  template void softmax_backward<T>(const T*, const T*, T*, index_t, index_t, index_t, bool);
NNKERN_INSTANTIATE(float)
NNKERN_INSTANTIATE(double)
#undef NNKERN_INSTANTIATE

}  // namespace nnkern
