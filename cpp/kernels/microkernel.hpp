// The GEMM micro-kernel and its helpers, shared by the recurrent kernels and dense:
// packets, the register-tiled micro-kernels (A rows by pointer, or packed k-major), panel
// packing, per-thread scratch that persists across calls, and a blocked A^T B product.
// Everything here is a template or inline; see recurrent.cpp for how the time loops use it
// and dense.cpp for the plain products.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

#include <unistd.h>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "kernels/common.hpp"

namespace nnkern {
namespace mk {

namespace ei = Eigen::internal;

// ---------------------------------------------------------------------------------------
// Packets

template <class T>
struct Vec {
  using P = typename ei::packet_traits<T>::type;
  static constexpr int L = ei::unpacket_traits<P>::size;

  static P set(T v) { return ei::pset1<P>(v); }
  // n <= L elements from p (the rest zero); full vectors load directly.
  static P load(const T* p, int n) {
    if (n == L) return ei::ploadu<P>(p);
#if defined(__AVX512F__)
    if constexpr (L == 16) return _mm512_maskz_loadu_ps(__mmask16((1u << n) - 1), p);
    if constexpr (L == 8 && sizeof(T) == 8) return _mm512_maskz_loadu_pd(__mmask8((1u << n) - 1), p);
#endif
    alignas(64) T b[L] = {};
    for (int i = 0; i < n; ++i) b[i] = p[i];
    return ei::pload<P>(b);
  }
  static void store(T* p, const P& v, int n) {
    if (n == L) {
      ei::pstoreu(p, v);
      return;
    }
#if defined(__AVX512F__)
    if constexpr (L == 16) {
      _mm512_mask_storeu_ps(p, __mmask16((1u << n) - 1), v);
      return;
    }
    if constexpr (L == 8 && sizeof(T) == 8) {
      _mm512_mask_storeu_pd(p, __mmask8((1u << n) - 1), v);
      return;
    }
#endif
    alignas(64) T b[L];
    ei::pstore(b, v);
    for (int i = 0; i < n; ++i) p[i] = b[i];
  }
  // Eigen's logistic: a rational approximation for float (a few ulp), 1/(1+exp(-x)) else.
  static P sigmoid(const P& x) { return ei::scalar_logistic_op<T>().packetOp(x); }
  static P tanh(const P& x) {
    if constexpr (std::is_same_v<T, float>) {
      return ei::ptanh(x);
    } else {  // Eigen 3.4 has no vectorised tanh for double
      alignas(64) T b[L];
      ei::pstore(b, x);
      for (int i = 0; i < L; ++i) b[i] = std::tanh(b[i]);
      return ei::pload<P>(b);
    }
  }
};

template <class T>
using Pk = typename Vec<T>::P;

// Ask for [p, p + n) in cache ahead of use (write: for a store).
template <class T>
inline void prefetch(const T* p, index_t n, bool write = false) {
  const char* c = reinterpret_cast<const char*>(p);
  const index_t bytes = n * index_t(sizeof(T));
  for (index_t off = 0; off < bytes; off += 64) {
    if (write) __builtin_prefetch(c + off, 1, 3);
    else __builtin_prefetch(c + off, 0, 3);
  }
}

// This core's L2 in bytes (glibc reads it from cpuid), 1 MiB when the system does not say.
inline index_t l2_bytes() {
  static const index_t b = [] {
    const long v = sysconf(_SC_LEVEL2_CACHE_SIZE);
    return v > 0 ? index_t(v) : index_t(1) << 20;
  }();
  return b;
}

// Whether `bytes` read again and again (a thread's packed weights, once per time step) leave
// too little of L2 for the rest to stay there: then they come from L3 or memory every time.
inline bool streams_past_l2(index_t bytes) { return 2 * bytes > l2_bytes(); }

// Vector registers of the target, to size the micro-kernel's tile of accumulators.
#if defined(__AVX512F__) || defined(__aarch64__)
constexpr int kVecRegs = 32;
#else
constexpr int kVecRegs = 16;
#endif
constexpr int kMaxNV = 4;  // vectors per tile row
constexpr int kMaxMR = 8;  // rows per tile

// Rows per micro-tile for NV vectors per row: MR * NV accumulators + NV weights + a broadcast.
constexpr int mr_max(int nv) {
  const int m = (kVecRegs - nv - 1) / nv;
  return m > kMaxMR ? kMaxMR : (m < 1 ? 1 : m);
}

// Vectors per micro-kernel call for a product row of nv vectors: rows that are too wide for
// the register file go in two halves. With 16 registers (AVX2) four vectors allow only two
// rows per tile, 8 FMAs per 6 loads, and ran at 47-55 GFLOP/s on one Zen 3 core against
// 75-90 for 6 rows x 2 vectors or 4 rows x 3 vectors; with 32 registers nothing is split.
constexpr int call_nv(int nv) { return mr_max(nv) >= 3 ? nv : (nv + 1) / 2; }

// Panel width of the blocked GEMMs (gemm_rows, gemm_tn), in vectors.
constexpr int kPanelNV = call_nv(kMaxNV);

// ---------------------------------------------------------------------------------------
// The micro-kernel.
//
// c[r][0, NV*L) (+)= sum_k a[r][k] * p[k][0, NV*L) for r < MR: the MR rows of A are given by
// pointers (any batch rows, e.g. only the sequences still running), the panel is K rows of
// NV*L contiguous values; pf (may be null): for k < pf_lines, line k of pf is fetched into
// L2 (a later call's panel, see tile_product). The accumulators stay in registers across k; on AVX-512 with
// MR = 6, NV = 4 that is 24 FMAs per 4 loads and 6 broadcasts, close to the FMA peak.

template <class T, int MR, int NV>
void micro(const T* const* a, const T* p, index_t K, T* c, index_t ldc, bool accumulate,
           const char* pf = nullptr, index_t pf_lines = 0) {
  using P = Pk<T>;
  constexpr int L = Vec<T>::L;
  P acc[MR][NV];
  const T* ar[MR];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    ar[r] = a[r];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      acc[r][v] = accumulate ? ei::ploadu<P>(c + r * ldc + v * L) : ei::pset1<P>(T(0));
  }
  for (index_t k = 0; k < K; ++k) {
    P w[NV];
    if (k < pf_lines) __builtin_prefetch(pf + k * 64, 0, 2);
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) w[v] = ei::pload<P>(p + v * L);
    p += NV * L;
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const P av = ei::pset1<P>(ar[r][k]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] = ei::pmadd(av, w[v], acc[r][v]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) ei::pstoreu(c + r * ldc + v * L, acc[r][v]);
}

// The same with A packed k-major: a[k * MR + r] (a micro-tile's rows of one k side by side).
template <class T, int MR, int NV>
void micro_packed(const T* a, const T* p, index_t K, T* c, index_t ldc, bool accumulate) {
  using P = Pk<T>;
  constexpr int L = Vec<T>::L;
  P acc[MR][NV];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      acc[r][v] = accumulate ? ei::ploadu<P>(c + r * ldc + v * L) : ei::pset1<P>(T(0));
  for (index_t k = 0; k < K; ++k) {
    P w[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) w[v] = ei::pload<P>(p + v * L);
    p += NV * L;
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const P av = ei::pset1<P>(a[r]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] = ei::pmadd(av, w[v], acc[r][v]);
    }
    a += MR;
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) ei::pstoreu(c + r * ldc + v * L, acc[r][v]);
}

template <class T>
using MicroFn = void (*)(const T* const*, const T*, index_t, T*, index_t, bool, const char*, index_t);
template <class T>
using PackedFn = void (*)(const T*, const T*, index_t, T*, index_t, bool);

template <class T, int NV, int... M>
constexpr std::array<PackedFn<T>, kMaxMR> packed_row(std::integer_sequence<int, M...>) {
  return {&micro_packed<T, M + 1, NV>...};
}

template <class T>
PackedFn<T> packed_fn(int nv, int mr) {
  using S = std::make_integer_sequence<int, kMaxMR>;
  static const std::array<std::array<PackedFn<T>, kMaxMR>, kMaxNV> table = {
      packed_row<T, 1>(S{}), packed_row<T, 2>(S{}), packed_row<T, 3>(S{}), packed_row<T, 4>(S{})};
  return table[nv - 1][mr - 1];
}

template <class T, int NV, int... M>
constexpr std::array<MicroFn<T>, kMaxMR> micro_row(std::integer_sequence<int, M...>) {
  return {&micro<T, M + 1, NV>...};
}

template <class T>
MicroFn<T> micro_fn(int nv, int mr) {
  using S = std::make_integer_sequence<int, kMaxMR>;
  static const std::array<std::array<MicroFn<T>, kMaxMR>, kMaxNV> table = {
      micro_row<T, 1>(S{}), micro_row<T, 2>(S{}), micro_row<T, 3>(S{}), micro_row<T, 4>(S{})};
  return table[nv - 1][mr - 1];
}

// n rows split into the fewest tiles of at most mrm rows, as even as possible.
struct RowTiles {
  index_t count, base, rem;
  RowTiles(index_t n, int mrm) : count((n + mrm - 1) / mrm), base(0), rem(0) {
    if (count > 0) {
      base = n / count;
      rem = n % count;
    }
  }
  int rows(index_t t) const { return int(base + (t < rem ? 1 : 0)); }
};

// Aligned scratch memory, allocated before any time loop (alloc_block: large buffers on
// transparent huge pages, since packed weights and gate gradients run to tens of MB).
template <class T>
class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(index_t n) {
    if (n <= 0) return;
    std::size_t bytes = sizeof(T) * std::size_t(n);
    p_ = static_cast<T*>(alloc_block(bytes));
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&& o) noexcept : p_(o.p_) { o.p_ = nullptr; }
  Buffer& operator=(Buffer&& o) noexcept {
    std::swap(p_, o.p_);
    return *this;
  }
  ~Buffer() { std::free(p_); }
  T* get() const { return p_; }

 private:
  T* p_ = nullptr;
};

// Scratch for one kernel call: up to kKeepBytes it comes from a per-thread cache that
// persists across calls, as a framework's workspace does. Fresh pages from the OS are
// faulted in and zeroed on first touch, which costs 5-10% of a call (and lands unevenly on
// the threads, which then wait for each other at every step). A slot holds one array of
// one call and only grows: a thread that ran a kernel keeps its largest call's scratch
// (packed weights, the gate gradients) allocated. Larger scratch is freed after the call.
enum Slot { kPanels, kCbuf, kBias, kGrad, kGradN, kStateC, kStateH, kPackA, kPackB, kTile, kSlots };

template <class T>
class Scratch {
 public:
  Scratch(Slot slot, index_t n) {
    if (index_t(sizeof(T)) * n > kKeepBytes) {
      own_ = Buffer<T>(n);
      p_ = own_.get();
      return;
    }
    thread_local Buffer<T> cache[kSlots];
    thread_local index_t size[kSlots] = {};
    if (size[slot] < n) {
      cache[slot] = Buffer<T>();  // free first: never hold both
      cache[slot] = Buffer<T>(n);
      size[slot] = n;
    }
    p_ = cache[slot].get();
  }
  T* get() const { return p_; }

 private:
  static constexpr index_t kKeepBytes = index_t(1) << 30;
  Buffer<T> own_;
  T* p_ = nullptr;
};

// Run body(tid, team) on `nt` threads (directly when nt == 1).
template <class F>
void run_team(int nt, F&& body) {
  if (nt <= 1) {
    body(0, 1);
    return;
  }
#pragma omp parallel num_threads(nt)
  body(omp_get_thread_num(), omp_get_num_threads());
}

// P[k][c] = W[row(c)][k] for k < K (row(c) < 0: zero): a panel of W^T columns, transposed
// L x L at a time in registers (W's rows are often 4 KiB apart, and reading many of them
// side by side would thrash one set of L1).
template <class T, class RowOf>
void pack_transposed(const T* W, index_t ldw, index_t K, int nvl, T* P, RowOf&& row_of) {
  using Pp = Pk<T>;
  constexpr int L = Vec<T>::L;
  const T* src[kMaxNV * 64];
  for (int c = 0; c < nvl; ++c) {
    const index_t r = row_of(c);
    src[c] = r < 0 ? nullptr : W + r * ldw;
  }
  index_t k = 0;
  if constexpr (L > 1) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wignored-attributes"  // (a vector type as a template argument)
    using Block = ei::PacketBlock<Pp, L>;
#pragma GCC diagnostic pop
    for (; k + L <= K; k += L)
      for (int c0 = 0; c0 < nvl; c0 += L) {
        Block blk;
        for (int i = 0; i < L; ++i)
          blk.packet[i] = src[c0 + i] ? ei::ploadu<Pp>(src[c0 + i] + k) : ei::pset1<Pp>(T(0));
        ei::ptranspose(blk);
        for (int j = 0; j < L; ++j) ei::pstore(P + (k + j) * nvl + c0, blk.packet[j]);
      }
  }
  for (; k < K; ++k)
    for (int c = 0; c < nvl; ++c) P[k * nvl + c] = src[c] ? src[c][k] : T(0);
}

// P[k][j] = W[k][c0 + j] for j < nc, zero up to nvl: a panel of W's columns.
template <class T>
void pack_columns(const T* W, index_t ldw, index_t K, index_t c0, int nc, int nvl, T* P) {
  for (index_t k = 0; k < K; ++k) {
    T* dst = P + k * nvl;
    std::memcpy(dst, W + k * ldw + c0, sizeof(T) * nc);
    std::fill(dst + nc, dst + nvl, T(0));
  }
}

// Threads for a loop whose step costs `work` multiply-adds: all of them when worth it.
inline int team_size(index_t work, index_t max_useful, index_t min_work = index_t(1) << 16) {
  const int nt = get_num_threads();
  if (nt <= 1 || work < min_work) return 1;
  return int(std::max<index_t>(1, std::min<index_t>(nt, max_useful)));
}

// ---------------------------------------------------------------------------------------
// Weight gradients: C_j (rows [0, M_j) x N_j) = sum_k A[ra[k]]^T B_j[rb_j[k]] over a list of
// rows (the valid steps), for a few (B_j, C_j) sharing A: one blocked GEMM on the same
// micro-kernel. Threads split the rows of A^T; per block of KC rows of the sum, a thread
// transposes its columns of A's block once (the broadcast operand, k-major per micro-tile,
// read from L1) and packs the B_j blocks into panels a few at a time (the vector operand,
// L2-resident while every micro-tile of rows passes over them).

template <class T>
struct TnOut {
  const T* Bm;        // (rows, N) with row stride ldb, rows picked by rb
  index_t ldb;
  const index_t* rb;
  index_t N;
  T* C;               // (mend, N) with row stride ldc
  index_t ldc, mend;  // rows of A^T this product needs: [0, mend)
};

// asum (M,), if given, gets the column sums of A over the same rows (the bias gradients),
// taken while A is packed: each thread sums its own columns, in row order. threaded = false:
// on the calling thread alone.
template <class T>
void gemm_tn(index_t M, index_t Kd, const T* A, index_t lda, const index_t* ra, T* asum,
             std::initializer_list<TnOut<T>> outs_, bool threaded = true) {
  const std::vector<TnOut<T>> outs(outs_);
  if (asum) std::fill_n(asum, M, T(0));
  if (Kd == 0) {
    for (const TnOut<T>& o : outs)
      for (index_t m = 0; m < o.mend; ++m) std::fill_n(o.C + m * o.ldc, o.N, T(0));
    return;
  }
  constexpr int L = Vec<T>::L;
  constexpr int NVL = kPanelNV * L;
  constexpr int MR = mr_max(kPanelNV);
  constexpr index_t KC = index_t(2048) / index_t(sizeof(T));  // 512 floats
  constexpr index_t NB = 4;                                    // panels per block of B
  constexpr index_t kPackAhead = 8;                            // rows of A prefetched ahead
  struct ColTile {
    int out;
    index_t c0;
    int nc;
  };
  std::vector<ColTile> cols;
  index_t work = 0;
  for (int q = 0; q < int(outs.size()); ++q) {
    for (index_t c0 = 0; c0 < outs[q].N; c0 += NVL)
      cols.push_back({q, c0, int(std::min<index_t>(NVL, outs[q].N - c0))});
    work += outs[q].mend * outs[q].N * Kd;
  }
  if (M == 0) return;
  const index_t ntile = index_t(cols.size());
  const index_t mblocks = (M + MR - 1) / MR;
  const int nt = threaded ? team_size(work / 64, mblocks) : 1;
  // a micro-tile of rows costs the columns of every product that needs its rows
  std::vector<index_t> cost(mblocks + 1, 0);
  for (index_t j = 0; j < mblocks; ++j) {
    index_t c = 1;
    for (const TnOut<T>& o : outs)
      if (j * MR < o.mend) c += o.N;
    cost[j + 1] = cost[j] + c;
  }
  auto bound = [&](int k, int team) {  // first micro-tile of thread k: equal shares of cost
    const index_t target = cost[mblocks] * k / team;
    return index_t(std::lower_bound(cost.begin(), cost.end(), target) - cost.begin());
  };
  run_team(nt, [&](int tid, int team) {
    // this thread's rows of A^T, in whole micro-tiles
    const index_t m0 = std::min(M, bound(tid, team) * MR);
    const index_t m1 = std::min(M, bound(tid + 1, team) * MR);
    if (m0 >= m1) return;
    const index_t mm = m1 - m0;
    const index_t kmax = std::min(KC, Kd);
    Scratch<T> Ap(kPackA, mm * kmax), Bp(kPackB, NB * kmax * NVL), ctmp(kTile, index_t(kMaxMR) * NVL);
    const RowTiles rt(mm, MR);
    for (index_t pc = 0; pc < Kd; pc += KC) {
      const index_t kn = std::min(KC, Kd - pc);
      // A's block, micro-tile by micro-tile, k-major: tile j at ap + i_j * kn, [k][r].
      // A group of tiles (~64 columns) at a time over all k: each row's piece is a few whole
      // lines and the group's tiles are written in order. (Row by row over all the tiles,
      // the writes scattered 24 bytes at a time over the whole block, 2 MB per thread for an
      // LSTM of H = 512: the pack and the column sums were 5% of its backward.)
      T* ap = Ap.get();
      for (index_t j = 0, i = 0; j < rt.count;) {
        index_t jg = j, ig = i;
        while (jg < rt.count && ig - i < 64) ig += rt.rows(jg++);
        for (index_t k = 0; k < kn; ++k) {
          const T* __restrict src = A + ra[pc + k] * lda + m0;
          if (k + kPackAhead < kn) {  // the rows are far apart: ask for a later one's piece
            const char* ahead = reinterpret_cast<const char*>(A + ra[pc + k + kPackAhead] * lda + m0 + i);
            for (index_t b = 0; b < (ig - i) * index_t(sizeof(T)); b += 64) __builtin_prefetch(ahead + b);
          }
          for (index_t t = j, ii = i; t < jg; ++t) {
            const int m = rt.rows(t);
            T* __restrict dst = ap + ii * kn + k * m;
            if (m == MR) {
#pragma GCC unroll 8
              for (int r = 0; r < MR; ++r) dst[r] = src[ii + r];
            } else {
              for (int r = 0; r < m; ++r) dst[r] = src[ii + r];
            }
            ii += m;
          }
          if (asum) {  // each column's sum in row order, as before
            T* __restrict s = asum + m0;
#pragma omp simd
            for (index_t c = i; c < ig; ++c) s[c] += src[c];
          }
        }
        j = jg;
        i = ig;
      }
      for (index_t jb = 0; jb < ntile; jb += NB) {
        const index_t nb = std::min(NB, ntile - jb);
        for (index_t q = 0; q < nb; ++q) {
          const ColTile& ct = cols[jb + q];
          const TnOut<T>& o = outs[ct.out];
          if (o.mend <= m0) continue;
          const int nvl = (ct.nc + L - 1) / L * L;
          T* dst = Bp.get() + q * kmax * NVL;
          for (index_t k = 0; k < kn; ++k) {
            std::memcpy(dst + k * nvl, o.Bm + o.rb[pc + k] * o.ldb + ct.c0, sizeof(T) * ct.nc);
            std::fill(dst + k * nvl + ct.nc, dst + (k + 1) * nvl, T(0));
          }
        }
        index_t i = 0;
        for (index_t j = 0; j < rt.count; ++j) {
          const int m = rt.rows(j);
          const T* a = ap + i * kn;
          for (index_t q = 0; q < nb; ++q) {
            const ColTile& ct = cols[jb + q];
            const TnOut<T>& o = outs[ct.out];
            const index_t r0 = m0 + i;
            if (r0 >= o.mend) continue;
            const int mr = int(std::min<index_t>(m, o.mend - r0));  // rows of C to write
            const int nv = (ct.nc + L - 1) / L;
            const T* panel = Bp.get() + q * kmax * NVL;
            T* c = o.C + r0 * o.ldc + ct.c0;
            if (ct.nc == nv * L && mr == m) {
              packed_fn<T>(nv, m)(a, panel, kn, c, o.ldc, pc > 0);
            } else {  // the last columns or rows: through a scratch tile
              T* cs = ctmp.get();
              packed_fn<T>(nv, m)(a, panel, kn, cs, nv * L, false);
              for (int r = 0; r < mr; ++r)
                for (int e = 0; e < ct.nc; ++e)
                  c[r * o.ldc + e] = (pc > 0 ? c[r * o.ldc + e] : T(0)) + cs[r * nv * L + e];
            }
          }
          i += m;
        }
      }
    }
  });
}

// ---------------------------------------------------------------------------------------
// C (M x N, row stride ldc) = A (M x K, row stride lda) op(B) + bias, op(B) = B^T for B
// given as N x K (b_trans: dense's x @ W^T), else B as K x N (dx = dy @ W); bias (N,) or
// nullptr. Blocked for the micro-kernel: per block of KC of the contraction, a thread packs
// its panels of op(B) (NVL columns each) once, then for each block of MC rows of A (kept in
// L2) runs every panel over the row tiles. Threads split the panels when there are enough
// of them, else the rows. Each element's sum runs over k in the same order whatever the
// split, so results are the same bits for any thread count. threaded = false: on the calling
// thread alone (inside a loop that is already parallel).
template <class T>
void gemm_rows(index_t M, index_t N, index_t K, const T* A, index_t lda, const T* B, index_t ldb,
               bool b_trans, T* C, index_t ldc, const T* bias, bool threaded = true) {
  if (M <= 0 || N <= 0) return;
  auto fill = [&](index_t r0, index_t r1, index_t c0, index_t c1) {  // C = bias (or 0)
    for (index_t r = r0; r < r1; ++r) {
      T* c = C + r * ldc;
      if (bias) std::copy(bias + c0, bias + c1, c + c0);
      else std::fill(c + c0, c + c1, T(0));
    }
  };
  if (K <= 0) {
    fill(0, M, 0, N);
    return;
  }
  constexpr int L = Vec<T>::L;
  constexpr int NVL = kPanelNV * L;
  constexpr int MR = mr_max(kPanelNV);
  constexpr index_t KC = (index_t(128) << 10) / (index_t(sizeof(T)) * NVL);  // panel: 128 KiB
  constexpr index_t MC = ((index_t(256) << 10) / (index_t(sizeof(T)) * KC)) / MR * MR;
  const index_t npanel = (N + NVL - 1) / NVL;
  const index_t mtiles = (M + MR - 1) / MR;
  const int nt = threaded ? team_size(M * N * K / 64, std::max(npanel, mtiles), index_t(1) << 15) : 1;
  const bool by_panels = npanel >= 2 * index_t(nt);
  run_team(nt, [&](int tid, int team) {
    index_t j0 = 0, j1 = npanel, m0 = 0, m1 = M;
    if (by_panels) {
      j0 = npanel * tid / team;
      j1 = npanel * (tid + 1) / team;
    } else {
      m0 = std::min(M, mtiles * tid / team * MR);
      m1 = std::min(M, mtiles * (tid + 1) / team * MR);
    }
    if (j0 >= j1 || m0 >= m1) return;
    const index_t c0 = j0 * NVL, c1 = std::min(N, j1 * NVL);
    fill(m0, m1, c0, c1);
    Scratch<T> panels(kPackB, (j1 - j0) * std::min(KC, K) * NVL), ctmp(kTile, index_t(kMaxMR) * NVL);
    const T* rows[kMaxMR];
    for (index_t pc = 0; pc < K; pc += KC) {
      const index_t kn = std::min(KC, K - pc);
      for (index_t j = j0; j < j1; ++j) {
        const index_t col = j * NVL;
        const int nc = int(std::min<index_t>(NVL, N - col)), nvl = (nc + L - 1) / L * L;
        T* P = panels.get() + (j - j0) * kn * NVL;
        if (b_trans)
          pack_transposed(B + pc, ldb, kn, nvl, P, [&](int c) { return c < nc ? col + c : index_t(-1); });
        else
          pack_columns(B + pc * ldb, ldb, kn, col, nc, nvl, P);
      }
      for (index_t i0 = m0; i0 < m1; i0 += MC) {
        const index_t i1 = std::min(m1, i0 + MC);
        for (index_t j = j0; j < j1; ++j) {
          const index_t col = j * NVL;
          const int nc = int(std::min<index_t>(NVL, N - col)), nv = (nc + L - 1) / L;
          const T* P = panels.get() + (j - j0) * kn * NVL;
          for (index_t r0 = i0; r0 < i1; r0 += MR) {
            const int mr = int(std::min<index_t>(MR, i1 - r0));
            for (int r = 0; r < mr; ++r) rows[r] = A + (r0 + r) * lda + pc;
            T* c = C + r0 * ldc + col;
            if (nc == nv * L) {
              micro_fn<T>(nv, mr)(rows, P, kn, c, ldc, true, nullptr, 0);
            } else {  // the last columns: through a scratch tile
              T* cs = ctmp.get();
              micro_fn<T>(nv, mr)(rows, P, kn, cs, nv * L, false, nullptr, 0);
              for (int r = 0; r < mr; ++r)
                for (int e = 0; e < nc; ++e) c[r * ldc + e] += cs[r * nv * L + e];
            }
          }
        }
      }
    }
  });
}

}  // namespace mk
}  // namespace nnkern
