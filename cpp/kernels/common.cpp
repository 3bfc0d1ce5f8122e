#include "kernels/common.hpp"

#include <algorithm>

namespace nnkern {

namespace {
int g_threads = 0;  // 0: not set yet, use OpenMP's default (OMP_NUM_THREADS or all cores)
}

void set_num_threads(int n) {
  g_threads = std::max(1, n);
  Eigen::setNbThreads(g_threads);
}

int get_num_threads() {
  if (g_threads == 0) g_threads = std::max(1, omp_get_max_threads());
  return g_threads;
}

}  // namespace nnkern
