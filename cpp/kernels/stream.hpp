// Writing large outputs with non-temporal (streaming) stores.
//
// A normal store to a line that is not in cache first reads the line (read-for-ownership),
// so an elementwise kernel over arrays larger than the caches moves 3 bytes per byte of
// output. Streaming stores skip that read: the kernels compute a block into a small buffer
// that stays in L1, then stream it out. Used only above kStreamBytes, where the output
// would not survive in cache anyway.
#pragma once

#include <cstring>

#include "kernels/common.hpp"

#if defined(__SSE2__)
#include <immintrin.h>
#endif

namespace nnkern {

constexpr index_t kStreamBytes = index_t(8) << 20;  // whole outputs above 8 MiB
constexpr index_t kBlock = 2048;                      // elements per L1 staging block

inline void stream_fence() {
#if defined(__SSE2__)
  _mm_sfence();
#endif
}

// dst[0, n) = src[0, n), streaming when the target ISA allows (any alignment of dst).
template <class T>
inline void stream_copy(T* dst, const T* src, index_t n) {
#if defined(__AVX512F__)
  constexpr index_t A = 64;
#elif defined(__AVX__)
  constexpr index_t A = 32;
#elif defined(__SSE2__)
  constexpr index_t A = 16;
#else
  constexpr index_t A = 0;
#endif
  if constexpr (A == 0) {
    std::memcpy(dst, src, sizeof(T) * n);
  } else {
    constexpr index_t L = A / sizeof(T);
    index_t i = 0;
    // scalar head up to the first A-byte boundary of dst
    while (i < n && (reinterpret_cast<std::uintptr_t>(dst + i) % A) != 0) {
      dst[i] = src[i];
      ++i;
    }
    for (; i + L <= n; i += L) {
#if defined(__AVX512F__)
      if constexpr (sizeof(T) == 4)
        _mm512_stream_ps(reinterpret_cast<float*>(dst + i), _mm512_loadu_ps(reinterpret_cast<const float*>(src + i)));
      else
        _mm512_stream_pd(reinterpret_cast<double*>(dst + i), _mm512_loadu_pd(reinterpret_cast<const double*>(src + i)));
#elif defined(__AVX__)
      if constexpr (sizeof(T) == 4)
        _mm256_stream_ps(reinterpret_cast<float*>(dst + i), _mm256_loadu_ps(reinterpret_cast<const float*>(src + i)));
      else
        _mm256_stream_pd(reinterpret_cast<double*>(dst + i), _mm256_loadu_pd(reinterpret_cast<const double*>(src + i)));
#else
      if constexpr (sizeof(T) == 4)
        _mm_stream_ps(reinterpret_cast<float*>(dst + i), _mm_loadu_ps(reinterpret_cast<const float*>(src + i)));
      else
        _mm_stream_pd(reinterpret_cast<double*>(dst + i), _mm_loadu_pd(reinterpret_cast<const double*>(src + i)));
#endif
    }
    for (; i < n; ++i) dst[i] = src[i];
  }
}

// dst[i] = src[i] * scale for i < n, streamed straight from registers (no staging buffer).
// The scalar head up to dst's alignment computes the same IEEE product as the vector body,
// so results do not depend on alignment.
#if defined(__AVX512F__)
inline void nt_store(float* p, __m512 v) { _mm512_stream_ps(p, v); }
inline void nt_store(double* p, __m512d v) { _mm512_stream_pd(p, v); }
#elif defined(__AVX__)
inline void nt_store(float* p, __m256 v) { _mm256_stream_ps(p, v); }
inline void nt_store(double* p, __m256d v) { _mm256_stream_pd(p, v); }
#elif defined(__SSE2__)
inline void nt_store(float* p, __m128 v) { _mm_stream_ps(p, v); }
inline void nt_store(double* p, __m128d v) { _mm_stream_pd(p, v); }
#endif

template <class T>
inline void stream_scaled(T* dst, const T* src, index_t n, T scale) {
  index_t i = 0;
#if defined(__SSE2__)
  namespace ei = Eigen::internal;
  using P = typename ei::packet_traits<T>::type;
  constexpr index_t L = ei::unpacket_traits<P>::size;
  while (i < n && reinterpret_cast<std::uintptr_t>(dst + i) % sizeof(P) != 0) {
    dst[i] = src[i] * scale;
    ++i;
  }
  const P vs = ei::pset1<P>(scale);
  for (; i + L <= n; i += L) nt_store(dst + i, ei::pmul(ei::ploadu<P>(src + i), vs));
#endif
  for (; i < n; ++i) dst[i] = src[i] * scale;
}

// y[b, e) = f(b, e, dst): f writes e - b results to dst. The results are staged block by
// block in an aligned L1 buffer, then copied out (streamed when `stream`). Staging costs
// little and makes every element take the same (vector or scalar-tail) code path whatever
// y's address, so results never depend on alignment; Eigen would otherwise peel scalar
// iterations up to y's first aligned element, and scalar exp/tanh round differently.
// The caller issues stream_fence() once after its last streaming write.
// line_aligned (for f whose every element's result does not depend on where the block
// starts, such as pm::map's): when streaming, the blocks after the first start on a 64-byte
// line of y. A NumPy array's data is often 16 bytes past a line, and then every block began
// and ended inside a line (sigmoid at 16M floats into such an array, 2 threads on Zen 4:
// 3.36-3.41 ms at best, against 3.08-3.13 ms into a line-aligned one; 3.16-3.21 ms with this).
// Eigen expressions with exp compute a block's last (size mod packet) elements with scalar
// code of other rounding, so those callers keep blocks at fixed offsets from b.
template <class T, class F>
inline void write_blocks(T* y, index_t b, index_t e, bool stream, F&& f, bool line_aligned = false) {
  alignas(64) T buf[kBlock];
  index_t first = kBlock;
  if (stream && line_aligned) {
    const std::uintptr_t a = reinterpret_cast<std::uintptr_t>(y + b);
    if (a % sizeof(T) == 0) first -= index_t((a % 64) / sizeof(T));
  }
  for (index_t s = b; s < e;) {
    const index_t m = std::min(s == b ? first : kBlock, e - s);
    f(s, s + m, buf);
    if (stream)
      stream_copy(y + s, buf, m);
    else
      std::memcpy(y + s, buf, sizeof(T) * m);
    s += m;
  }
}

// Elementwise driver: y[0, n) computed chunk by chunk over the thread team; outputs larger
// than kStreamBytes are streamed, in blocks that follow y's cache lines. So f must give each
// element the same bits wherever its block starts, as pm::map and Eigen's arithmetic and
// tanh do (test_streamed_result_does_not_depend_on_buffer_alignment checks it).
template <class T, class F>
inline void elementwise(T* y, index_t n, F&& f) {
  const bool stream = index_t(sizeof(T)) * n >= kStreamBytes;
  parallel_chunks(n, [&](index_t b, index_t e) {
    write_blocks(y, b, e, stream, f, /*line_aligned=*/true);
    if (stream) stream_fence();
  });
}

}  // namespace nnkern
