#include "kernels/dropout.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

namespace nnkern {

namespace {

constexpr std::uint64_t kGolden = 0x9E3779B97F4A7C15ull;

inline std::uint64_t mix(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// v where keep is 1, +0 where it is 0: v's bits and-ed with all ones or 0. A select compiled
// inside an OpenMP region turned into a branch on the random mask (4-8x slower); this cannot.
template <class T>
inline T keep_or_zero(T v, std::uint32_t keep) {
  using U = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  U bits;
  std::memcpy(&bits, &v, sizeof(T));
  bits &= U(0) - U(keep);
  std::memcpy(&v, &bits, sizeof(T));
  return v;
}

constexpr index_t kPairs = 512;  // 64-bit outputs per stack block: 1024 elements

}  // namespace

template <class T>
void dropout_forward(const T* x, T* y, std::uint8_t* mask, index_t n, double p, std::uint64_t seed) {
  const std::uint64_t key = mix(seed + kGolden);
  const T scale = T(1.0 / (1.0 - p));
  // p > 0 makes (1 - p) 2^32 < 2^32, so the threshold fits 32 bits; p = 0 keeps everything.
  const bool all = p == 0;
  const std::uint32_t thr = all ? 0 : std::uint32_t(std::floor((1.0 - p) * 4294967296.0));
  // parallel_chunks hands out chunks of a multiple of 16 elements: pairs never straddle two.
  parallel_chunks(n, [&, key, scale, all, thr](index_t b, index_t e) {
    const T sc = scale;
    const std::uint32_t t32 = thr;
    alignas(64) std::uint64_t z[kPairs];
    for (index_t s = b; s < e; s += 2 * kPairs) {
      const index_t m = std::min(2 * kPairs, e - s);
      const std::uint64_t j0 = std::uint64_t(s / 2);
      for (index_t j = 0; j < (m + 1) / 2; ++j) z[j] = mix(key + (j0 + std::uint64_t(j)) * kGolden);
      // little-endian: the 32-bit view of z lists the low half of z[j] for element 2j first
      const std::uint32_t* u = reinterpret_cast<const std::uint32_t*>(z);
      const T* __restrict xs = x + s;
      T* __restrict ys = y + s;
      std::uint8_t* __restrict ms = mask + s;
      if (all) {
        for (index_t i = 0; i < m; ++i) ms[i] = 1, ys[i] = xs[i] * sc;
        continue;
      }
#pragma omp simd
      for (index_t i = 0; i < m; ++i) {
        const std::uint32_t keep = u[i] < t32 ? 1u : 0u;  // 32-bit lanes vectorize with the floats
        ms[i] = std::uint8_t(keep);
        ys[i] = keep_or_zero(xs[i] * sc, keep);
      }
    }
  });
}

template <class T>
void dropout_backward(const T* dy, const std::uint8_t* mask, T* dx, index_t n, double p) {
  const T scale = T(1.0 / (1.0 - p));
  parallel_chunks(n, [dy, mask, dx, scale](index_t b, index_t e) {
    const T* __restrict g = dy + b;
    const std::uint8_t* __restrict ms = mask + b;
    T* __restrict d = dx + b;
    const index_t m = e - b;
#pragma omp simd
    for (index_t i = 0; i < m; ++i) d[i] = keep_or_zero(g[i] * scale, ms[i]);
  });
}

template void dropout_forward<float>(const float*, float*, std::uint8_t*, index_t, double, std::uint64_t);
template void dropout_forward<double>(const double*, double*, std::uint8_t*, index_t, double, std::uint64_t);
template void dropout_backward<float>(const float*, const std::uint8_t*, float*, index_t, double);
template void dropout_backward<double>(const double*, const std::uint8_t*, double*, index_t, double);

}  // namespace nnkern
