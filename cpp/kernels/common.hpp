// nnkern kernels: shared typedefs, the dimension glossary and threading helpers.
//
// Dimension letters, used in every kernel's first comment and in variable names:
//   N / B  batch (rows)        T  time steps          I  input features
//   H      hidden size         G  gates (LSTM 4, GRU 3, RNN 1)
//   C      classes             V  vocabulary          D  embedding size
//   O      output features     K  length of the reduced axis
// Arrays are C-contiguous row-major; kernels take raw pointers plus sizes and never see
// a Python object. Everything is templated on the scalar T = float | double and explicitly
// instantiated in the .cpp files.
#pragma once

#include <Eigen/Core>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <omp.h>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace nnkern {

using index_t = std::int64_t;

// Large blocks of memory (kernel scratch, the output-buffer cache): 64-byte aligned, and from
// kHugeBytes on 2 MiB-aligned with a hint to Linux for transparent huge pages (faulting tens
// of MB in 4 KiB at a time costs a few percent of a call). `bytes` is rounded up to what was
// allocated. Release with std::free; throws std::bad_alloc.
constexpr std::size_t kHugeBytes = std::size_t(4) << 20, kHugeAlign = std::size_t(2) << 20;

inline void* alloc_block(std::size_t& bytes) {
  const std::size_t align = bytes >= kHugeBytes ? kHugeAlign : 64;
  bytes = (bytes + align - 1) / align * align;
  void* p = std::aligned_alloc(align, bytes);
  if (!p) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (align == kHugeAlign) madvise(p, bytes, MADV_HUGEPAGE);  // a hint: failure is harmless
#endif
  return p;
}

template <class T>
using MatR = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using MapMat = Eigen::Map<MatR<T>>;
template <class T>
using CMapMat = Eigen::Map<const MatR<T>>;
template <class T>
using ArrX = Eigen::Array<T, Eigen::Dynamic, 1>;
template <class T>
using MapArr = Eigen::Map<ArrX<T>>;
template <class T>
using CMapArr = Eigen::Map<const ArrX<T>>;
template <class T>
using RowVec = Eigen::Matrix<T, 1, Eigen::Dynamic>;
template <class T>
using MapRowVec = Eigen::Map<RowVec<T>>;
template <class T>
using CMapRowVec = Eigen::Map<const RowVec<T>>;

// Threads used by every kernel (OpenMP regions and Eigen's GEMM).
void set_num_threads(int n);
int get_num_threads();

// Elementwise kernels split [0, n) into per-thread chunks; below this size one thread is
// faster than waking the team.
constexpr index_t kParallelGrain = 1 << 15;

// Run f(begin, end) over [0, n) split into contiguous chunks, one per thread, each a
// multiple of 16 elements so vector loads stay aligned to the chunk start.
template <class F>
inline void parallel_chunks(index_t n, F&& f) {
  const int nt = get_num_threads();
  if (n < kParallelGrain || nt <= 1) {
    f(index_t(0), n);
    return;
  }
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num();
    const int team = omp_get_num_threads();
    index_t chunk = (n + team - 1) / team;
    chunk = (chunk + 15) / 16 * 16;
    const index_t b = std::min<index_t>(n, t * chunk);
    const index_t e = std::min<index_t>(n, b + chunk);
    if (b < e) f(b, e);
  }
}

// Run f(row) for row in [0, rows); rows are independent. `work` is the cost of the whole
// job in elements, to decide whether threads pay off.
template <class F>
inline void parallel_rows(index_t rows, index_t work, F&& f) {
  const int nt = get_num_threads();
  if (work < kParallelGrain || nt <= 1 || rows <= 1) {
    for (index_t r = 0; r < rows; ++r) f(r);
    return;
  }
#pragma omp parallel for num_threads(nt) schedule(static)
  for (index_t r = 0; r < rows; ++r) f(r);
}

}  // namespace nnkern
