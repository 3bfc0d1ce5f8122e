// Inverted dropout with a counter-based random generator: the mask of element i depends only
// on (seed, i), never on the thread count or on how the work is split, and the NumPy twin
// reproduces it bit for bit.
//
// The generator is SplitMix64's output function (Steele, Lea, Flood, "Fast splittable
// pseudorandom number generators", OOPSLA 2014) applied to key + j * 0x9E3779B97F4A7C15, with
// key = mix(seed + 0x9E3779B97F4A7C15) and j = i / 2: each 64-bit output gives two 32-bit
// uniforms, the low half for the even element i = 2j and the high half for i = 2j + 1.
// Element i is kept when its uniform u satisfies u < floor((1 - p) 2^32).
#pragma once

#include <cstdint>

#include "kernels/common.hpp"

namespace nnkern {

// x, y (n,); mask (n,) bytes 0/1 (numpy bool). keep: y = x / (1 - p), else y = 0.
// 0 <= p < 1 (p = 0 keeps everything).
template <class T>
void dropout_forward(const T* x, T* y, std::uint8_t* mask, index_t n, double p, std::uint64_t seed);

// dx = mask ? dy / (1 - p) : 0
template <class T>
void dropout_backward(const T* dy, const std::uint8_t* mask, T* dx, index_t n, double p);

}  // namespace nnkern
