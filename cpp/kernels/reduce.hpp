// Sums in double that vectorize without reassociating anything: eight independent
// accumulators combined in a fixed order, so a result depends on the data only.
#pragma once

#include "kernels/common.hpp"

namespace nnkern {

// sum of f(double(x[i])) for i < n
template <class T, class F>
inline double block_sum(const T* x, index_t n, F f) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  index_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) acc[j] += f(double(x[i + j]));
  for (; i < n; ++i) acc[0] += f(double(x[i]));
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

}  // namespace nnkern
