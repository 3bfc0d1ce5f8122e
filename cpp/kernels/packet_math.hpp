// Vector loops whose results do not depend on where the arrays sit in memory.
//
// Eigen's array expressions peel scalar iterations up to the first aligned element, and its
// scalar exp/tanh and its reductions round differently from the vector ones, so the same
// numbers at another address (a fresh buffer on the next call) could give other bits. These
// helpers always take whole packets from the first element (unaligned loads) and push the
// tail through the same packet code, padded, so every element takes the same path.
#pragma once

#include <algorithm>

#include "kernels/common.hpp"

namespace nnkern {

namespace pm {

namespace ei = Eigen::internal;
template <class T>
using Packet = typename ei::packet_traits<T>::type;

// y[i] = f(x[i]) for i < n, with f a packet function (y may equal x).
template <class T, class F>
inline void map(const T* x, T* y, index_t n, F&& f) {
  using P = Packet<T>;
  constexpr index_t L = ei::unpacket_traits<P>::size;
  index_t i = 0;
  for (; i + L <= n; i += L) ei::pstoreu(y + i, f(ei::ploadu<P>(x + i)));
  if (i < n) {
    alignas(64) T buf[L] = {};
    std::copy(x + i, x + n, buf);
    ei::pstore(buf, f(ei::pload<P>(buf)));
    std::copy(buf, buf + (n - i), y + i);
  }
}

// y[i] = f(a[i], b[i]) for i < n, with f a packet function of two packets (y may equal a or b).
// Piecewise formulas go through here with ei::pselect: Eigen 3.4's Array::select() has no
// vector path, and its scalar loop branches on the data, which on random signs runs up to
// 10x slower wherever the compiler does not turn it into masked moves (AVX2, for one).
template <class T, class F>
inline void map2(const T* a, const T* b, T* y, index_t n, F&& f) {
  using P = Packet<T>;
  constexpr index_t L = ei::unpacket_traits<P>::size;
  index_t i = 0;
  for (; i + L <= n; i += L) ei::pstoreu(y + i, f(ei::ploadu<P>(a + i), ei::ploadu<P>(b + i)));
  if (i < n) {
    alignas(64) T ba[L] = {}, bb[L] = {};
    std::copy(a + i, a + n, ba);
    std::copy(b + i, b + n, bb);
    ei::pstore(ba, f(ei::pload<P>(ba), ei::pload<P>(bb)));
    std::copy(ba, ba + (n - i), y + i);
  }
}

// sum_i a[i] (b == nullptr) or sum_i a[i] * b[i], in a fixed order.
template <class T>
inline T sum(const T* a, const T* b, index_t n) {
  using P = Packet<T>;
  constexpr index_t L = ei::unpacket_traits<P>::size;
  P acc0 = ei::pset1<P>(T(0)), acc1 = acc0;
  index_t i = 0;
  for (; i + 2 * L <= n; i += 2 * L) {
    P a0 = ei::ploadu<P>(a + i), a1 = ei::ploadu<P>(a + i + L);
    if (b) {
      a0 = ei::pmul(a0, ei::ploadu<P>(b + i));
      a1 = ei::pmul(a1, ei::ploadu<P>(b + i + L));
    }
    acc0 = ei::padd(acc0, a0);
    acc1 = ei::padd(acc1, a1);
  }
  T s = ei::predux(ei::padd(acc0, acc1));
  for (; i < n; ++i) s += b ? a[i] * b[i] : a[i];
  return s;
}

}  // namespace pm

}  // namespace nnkern
