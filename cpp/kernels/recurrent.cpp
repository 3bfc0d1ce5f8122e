// Recurrent kernels. Everything runs on one small GEMM micro-kernel over weights packed once
// per call (Eigen's GEMM re-packs both operands on every call, and W_hh is the same at every
// step):
//
// forward   In the time loop each thread owns a slice of the hidden units (by tiles of L
//           units, with all their gates). Per step it multiplies [x_t | h_{t-1}] by its slice
//           of [W_ih | W_hh]^T (the input projection rides along in the same product: no
//           (T, B, G*H) round trip through memory) and finishes the gate math for its units
//           while the products are in L1. Sequences that have ended drop out of the
//           product. One barrier per step.
// backward  Per step, dh = dgates_{t+1} @ W_hh for the units a thread owns, then the gate
//           gradients for those units; in the same pass other tiles compute
//           dx_{t+1} = dgates_{t+1} @ W_ih. dW_ih = dgates^T x and dW_hh = dgates^T h are one
//           blocked GEMM at the end over the valid steps only, and the bias gradients are
//           the column sums taken while it packs dgates.
//
// The split of the tiles between threads adapts to measured step times (Balancer); no
// result depends on it, so outputs are bitwise the same for any number of threads.
// Shapes use the glossary of common.hpp: T steps, B batch, I input, H hidden, G gates;
// L is the number of scalars in a SIMD packet.
#include "kernels/recurrent.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <new>
#include <numeric>
#include <type_traits>
#include <utility>
#include <thread>
#include <vector>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "kernels/microkernel.hpp"

namespace nnkern {

namespace {

namespace ei = Eigen::internal;
using namespace mk;

// The per-step barrier of a time loop. It spins for some tens of microseconds (on a quiet machine
// the other thread arrives within that), then yields its core on every further check. An
// OpenMP barrier spins far longer before it sleeps, and when other processes hold the cores
// that spinning takes the time slice the late thread needs: measured, an LSTM batch (T=50,
// B=64, H=128) with four busy processes beside it took 650 ms on two threads against 28 ms
// on one. Sense-reversing: the last thread to arrive resets the count, then bumps the phase.
class TeamBarrier {
 public:
  void wait(int team) {
    if (team <= 1) return;
    const unsigned ph = phase_.load(std::memory_order_acquire);
    if (count_.fetch_add(1, std::memory_order_acq_rel) == team - 1) {
      count_.store(0, std::memory_order_relaxed);
      phase_.store(ph + 1, std::memory_order_release);
      return;
    }
    for (int i = 0; phase_.load(std::memory_order_acquire) == ph; ++i) {
      if (i < kSpins) {
#if defined(__SSE2__)
        _mm_pause();
#endif
      } else {
        std::this_thread::yield();
      }
    }
  }

 private:
  static constexpr int kSpins = 20000;  // some tens of microseconds of pause instructions
  alignas(64) std::atomic<int> count_{0};
  alignas(64) std::atomic<unsigned> phase_{0};
};

// ---------------------------------------------------------------------------------------
// Tiles: a block of hidden units (or of dx columns) and its packed weights.

// An A operand of a step's product: row b at ptr[b] (per-row pointers) or at A + b * lda.
template <class T>
struct Src {
  const T* A = nullptr;
  index_t lda = 0;
  const T* const* ptr = nullptr;
  const T* row(index_t b) const { return ptr ? ptr[b] : A + b * lda; }
};

// One stretch of a tile's contraction: rows of source `src` (K values from each) times a
// panel of K x (nv * L), accumulated into vectors [coff, coff + nv) of the product row.
template <class T>
struct Part {
  T* panel;
  index_t K;
  int nv, coff, src;
};

template <class T>
struct Tile {
  index_t u0;  // first hidden unit (dx tiles: first column of x)
  int nu;      // units (columns) covered
  int width;   // vectors in a product row
  bool dx;     // backward: a tile of dx columns
  int nparts;
  Part<T> part[2];
};

// Contraction block kept in L2 while the row tiles stream through it.
template <class T>
index_t k_block(int nvl) {
  const index_t kc = (index_t(128) << 10) / (index_t(sizeof(T)) * nvl);
  return std::max<index_t>(64, kc / 8 * 8);
}

// A panel of K rows of nv vectors, [k][nv * L], rearranged for micro-kernel calls narrower
// than nv vectors (call_nv): the sub-panels one after another, each [k][width * L], so that
// every call reads contiguous memory (on a strided half of the wider rows, LSTM's forward
// ran 7-15% slower than with the unsplit 2-row tiles).
template <class T>
void split_panel(T* P, index_t K, int nv) {
  constexpr int L = Vec<T>::L;
  const int step = call_nv(nv);
  if (step >= nv || K == 0) return;
  const index_t w = index_t(nv) * L;
  std::vector<T> tmp(P, P + K * w);
  for (int v = 0; v < nv; v += step) {
    const index_t wc = index_t(std::min(step, nv - v)) * L;
    T* dst = P + v * K * L;
    for (index_t k = 0; k < K; ++k) std::copy_n(tmp.data() + k * w + v * L, wc, dst + k * wc);
  }
}

// For each batch row b in rows[0, n): crow = the tile's parts summed (cbuf row, width * L
// values), then epi(b, crow) while the row tile is still in L1.
//
// stream: the panels a thread runs through in a step do not stay in its L2 (streams_past_l2),
// so each k-block comes from L3 or memory on its first row tile, and that pass waited on it:
// measured on a 2 MB-L2 Xeon, an LSTM forward at B = 32, I = H = 512 (4 MB of panels per
// thread) ran at 300 GFLOP/s against 465 for the same micro-kernel on L2-resident panels.
// With stream set, every row tile's calls also pull their share of the next k-block (the
// memory that follows this one: panels are stored in the order they are used) into L2, one
// line per k, so that the next block's first pass finds it there: 360 GFLOP/s.
template <class T, class Pre, class Epi>
void tile_product(const Tile<T>& t, const index_t* rows, index_t n, const Src<T>* src, T* cbuf,
                  bool stream, Pre&& pre, Epi&& epi) {
  if (n == 0) return;
  constexpr int L = Vec<T>::L;
  const int W = t.width * L;
  int nvmax = 1;
  index_t ktotal = 0;
  for (int q = 0; q < t.nparts; ++q) {
    nvmax = std::max(nvmax, t.part[q].nv);
    ktotal += t.part[q].K;
  }
  std::fill(cbuf, cbuf + n * W, T(0));
  if (ktotal == 0) {
    for (index_t i = 0; i < n; ++i) epi(rows[i], cbuf + i * W);
    return;
  }
  const RowTiles rt(n, mr_max(call_nv(nvmax)));
  index_t kdone = 0;
  for (int q = 0; q < t.nparts; ++q) {
    const Part<T>& p = t.part[q];
    const Src<T>& sr = src[p.src];
    const int nvl = p.nv * L;
    const index_t kc = k_block<T>(nvl);
    const int step = call_nv(p.nv);
    for (index_t k0 = 0; k0 < p.K; k0 += kc) {
      const index_t kn = std::min(kc, p.K - k0);
      kdone += kn;
      const bool last = kdone == ktotal;
      index_t i = 0;
      for (index_t j = 0; j < rt.count; ++j) {
        const int m = rt.rows(j);
        const T* ap[kMaxMR];
        for (int r = 0; r < m; ++r) ap[r] = sr.row(rows[i + r]) + k0;
        if (last)  // what the epilogue reads and writes: in cache by the time it runs
          for (int r = 0; r < m; ++r) pre(rows[i + r]);
        // one call per sub-panel (split_panel): vector v's sub-panel starts at v * K * L
        for (int v = 0; v < p.nv; v += step) {
          const int nvc = std::min(step, p.nv - v);
          const T* blk = p.panel + v * p.K * L + k0 * nvc * L;
          const char* nx = nullptr;
          index_t lines = 0;
          if (stream) {  // this row tile's share of the next block's lines
            const index_t bytes = kn * nvc * L * index_t(sizeof(T));
            const index_t share = (bytes / 64 + rt.count - 1) / rt.count;
            nx = reinterpret_cast<const char*>(blk) + bytes + j * share * 64;
            lines = std::min(share, kn);
          }
          micro_fn<T>(nvc, m)(ap, blk, kn, cbuf + i * W + (p.coff + v) * L, W, true, nx, lines);
        }
        if (last)
          for (int r = 0; r < m; ++r) epi(rows[i + r], cbuf + (i + r) * W);
        i += m;
      }
    }
  }
}

// f(v, n) for groups of consecutive vectors covering [0, nvec), at most `most` per group,
// as even as possible (13 vectors by 4: 4, 3, 3, 3).
template <class F>
void for_groups(index_t nvec, int most, F&& f) {
  const RowTiles g(nvec, most);
  index_t v = 0;
  for (index_t j = 0; j < g.count; ++j) {
    f(v, g.rows(j));
    v += g.rows(j);
  }
}

// The rows [r0, r1) (positions in the schedule's order) of tile t that a thread runs.
struct Share {
  index_t t, r0, r1;
};

// Splits the work of a time loop among the team: position p in [0, sum_t weight_t * B) is row
// p / weight_t of tile t, tile-major, and thread k runs positions [bound_k, bound_k+1), so at
// most one tile per boundary is shared (by rows). The split starts from the weights (a cost
// estimate) and after every step moves towards equal busy times: the epilogues' cost relative
// to the products depends on the shapes and the caches, and with a barrier per step every
// thread waits for the slowest. The results do not depend on the split (a row's arithmetic is
// the same in any row tile), only the speed does. Each thread keeps its own copy of the
// split and updates it from the same shared timings, so all copies agree.
class Balancer {
 public:
  Balancer(const std::vector<index_t>& weight, index_t B, int team, double* times)
      : weight_(weight), B_(B), team_(team), times_(times), size_(team) {
    for (index_t w : weight_) total_ += w * B_;
    for (int k = 0; k < team_; ++k) size_[k] = double(total_) / team_;
  }

  // This thread's tiles and rows for the current split.
  std::vector<Share> shares(int tid) const {
    double lo_d = 0;
    for (int k = 0; k < tid; ++k) lo_d += size_[k];
    const index_t lo = tid == 0 ? 0 : index_t(std::llround(lo_d));
    const index_t hi = tid == team_ - 1 ? total_ : index_t(std::llround(lo_d + size_[tid]));
    std::vector<Share> out;
    index_t base = 0;
    for (index_t t = 0; t < index_t(weight_.size()); ++t) {
      const index_t w = weight_[t];
      if (w == 0) continue;  // a tile outside this loop
      auto row_at = [&](index_t pos) { return std::clamp<index_t>((pos - base + w - 1) / w, 0, B_); };
      const index_t r0 = lo <= base ? 0 : row_at(lo), r1 = hi <= base ? 0 : row_at(hi);
      if (r0 < r1) out.push_back({t, r0, r1});
      base += w * B_;
    }
    return out;
  }

  // Busy seconds of thread tid in step `step` (before the barrier that ends it).
  void report(index_t step, int tid, double seconds) { times_[(step & 1) * team_ + tid] = seconds; }

  // After the barrier that ends step `step`: resize the shares towards equal times.
  void update(index_t step) {
    const double* tm = times_ + (step & 1) * team_;
    double speed_sum = 0;
    for (int k = 0; k < team_; ++k) {
      if (!(tm[k] > 1e-6) || size_[k] < 1) return;  // too short to measure
      speed_sum += size_[k] / tm[k];
    }
    for (int k = 0; k < team_; ++k)  // half way to the sizes that would have equalised times
      size_[k] = 0.5 * size_[k] + 0.5 * double(total_) * (size_[k] / tm[k]) / speed_sum;
  }

 private:
  std::vector<index_t> weight_;
  index_t B_, total_ = 0;
  int team_;
  double* times_;  // shared: [2][team], double-buffered by step parity
  std::vector<double> size_;
};

// When the team keeps waiting for a thread that other processes keep off the cores, one
// thread finishes the time loop alone. Each thread adds up its busy and waiting time; one
// that has waited more than twice its work (past a millisecond, after the first steps)
// claims the loop from the next iteration on, before arriving at the barrier that ends the
// current one. A claim never changes the iteration in which it is made (every thread reaches
// its barrier), and after that barrier every thread sees it: the others leave, the owner runs
// every thread's share. A row's arithmetic does not depend on which thread computes it, so
// the results are the same bits.
class SoloSwitch {
 public:
  bool out(int tid, index_t it) const {
    const std::uint64_t v = state_.load(std::memory_order_acquire);
    return v != 0 && index_t(v >> 8) <= it && int(v & 0xff) - 1 != tid;
  }
  bool alone(int tid, index_t it) const {
    const std::uint64_t v = state_.load(std::memory_order_acquire);
    return v != 0 && index_t(v >> 8) <= it && int(v & 0xff) - 1 == tid;
  }
  // In iteration `it`, before its barrier: maybe claim the iterations after it.
  void consider(int tid, index_t it, double busy, double waited) {
    if (it >= 3 && waited > 2.0 * busy + 1e-3) {
      std::uint64_t none = 0;
      const std::uint64_t claim = (std::uint64_t(it + 1) << 8) | std::uint64_t(tid + 1);
      state_.compare_exchange_strong(none, claim, std::memory_order_acq_rel);
    }
  }
  // This thread's shares, or every thread's for the owner.
  template <class Bal>
  std::vector<Share> shares(const Bal& bal, int tid, int team, index_t it) const {
    if (!alone(tid, it)) return bal.shares(tid);
    std::vector<Share> all;
    for (int k = 0; k < team; ++k) {
      const std::vector<Share> sk = bal.shares(k);
      all.insert(all.end(), sk.begin(), sk.end());
    }
    return all;
  }

 private:
  std::atomic<std::uint64_t> state_{0};  // 0, or (first iteration << 8) | (owner + 1)
};


// ---------------------------------------------------------------------------------------
// The processing order (see recurrent.hpp): which batch rows run at each step.

struct Schedule {
  index_t T, B;
  bool reverse;
  std::vector<index_t> len;    // (B,) each sequence's length
  std::vector<index_t> order;  // batch rows by decreasing length (stable)
  std::vector<index_t> act;    // act[s + 1] = rows running at step s, s in [-1, T]

  Schedule(index_t T_, index_t B_, const index_t* lengths, bool rev)
      : T(T_), B(B_), reverse(rev), len(B_), order(B_), act(T_ + 2) {
    for (index_t b = 0; b < B; ++b) len[b] = lengths ? lengths[b] : T;
    std::iota(order.begin(), order.end(), index_t(0));
    if (lengths)
      std::stable_sort(order.begin(), order.end(), [&](index_t a, index_t b) { return len[a] > len[b]; });
    // act is non-increasing in s: rows running at step s are order[0, act[s + 1]).
    index_t n = B;
    for (index_t s = -1; s <= T; ++s) {
      while (n > 0 && len[order[n - 1]] <= s) --n;
      act[s + 1] = n;
    }
  }
  index_t running(index_t s) const { return act[s + 1]; }
  // The time step that step s of row b processes (s < len[b]).
  index_t time(index_t s, index_t b) const { return reverse ? len[b] - 1 - s : s; }
};

inline int num_gates(Cell cell) { return cell == Cell::lstm ? 4 : cell == Cell::gru ? 3 : 1; }

// The same for a time loop with a barrier per step: a step below ~0.5M multiply-adds takes a
// few microseconds on one thread, about what the barrier costs, and a barrier can wait a
// whole scheduler time slice when another process holds the other core (measured: a batch of
// one, H = 128, ran 40x slower on two threads of a loaded machine than on one).
inline int step_team_size(index_t step_work, index_t max_useful) {
  return team_size(step_work, max_useful, index_t(1) << 19);
}

// ---------------------------------------------------------------------------------------
// Forward

// The forward's tiles over all H units: LSTM/GRU one tile per vector of L units (all gates
// of those units), RNN groups of up to kMaxNV vectors. Vector v's panels start at
// store + v * (I+H) * G * L.
template <class T>
std::vector<Tile<T>> forward_tiles(Cell cell, index_t I, index_t H, T* store) {
  constexpr int L = Vec<T>::L;
  const int G = num_gates(cell);
  const index_t nvec = (H + L - 1) / L;
  std::vector<Tile<T>> tiles;
  for_groups(nvec, cell == Cell::rnn ? kMaxNV : 1, [&](index_t v, int nvv) {
    Tile<T> t{};
    t.u0 = v * L;
    t.nu = int(std::min<index_t>(index_t(nvv) * L, H - t.u0));
    t.dx = false;
    t.nparts = 2;
    T* base = store + v * (I + H) * G * L;
    if (cell == Cell::rnn) {
      t.width = nvv;
      t.part[0] = {base, I, nvv, 0, 0};
      t.part[1] = {base + I * nvv * L, H, nvv, 0, 1};
    } else if (cell == Cell::lstm) {  // product row [i | f | g | o]
      t.width = 4;
      t.part[0] = {base, I, 4, 0, 0};
      t.part[1] = {base + I * 4 * L, H, 4, 0, 1};
    } else {  // GRU product row [x W_in | r | z | h W_hn]: the n gate keeps its halves apart
      t.width = 4;
      t.part[0] = {base, I, 3, 0, 0};
      t.part[1] = {base + I * 3 * L, H, 3, 1, 1};
    }
    tiles.push_back(t);
  });
  return tiles;
}

template <class T>
void pack_forward(Cell cell, const Tile<T>& t, const T* W_ih, const T* W_hh, index_t I, index_t H) {
  constexpr int L = Vec<T>::L;
  // gate block of each panel vector (x part, h part)
  static constexpr int lstm_g[4] = {0, 1, 2, 3}, gru_x[3] = {2, 0, 1}, gru_h[3] = {0, 1, 2};
  for (int q = 0; q < 2; ++q) {
    const Part<T>& p = t.part[q];
    const int nvl = p.nv * L;
    const int* gate = cell == Cell::lstm ? lstm_g : q == 0 ? gru_x : gru_h;
    auto row_of = [&](int c) -> index_t {
      if (cell == Cell::rnn) return c < t.nu ? t.u0 + c : -1;
      const int j = c % L;
      return j < t.nu ? gate[c / L] * H + t.u0 + j : -1;
    };
    if (q == 0)
      pack_transposed(W_ih, I, I, nvl, p.panel, row_of);
    else
      pack_transposed(W_hh, H, H, nvl, p.panel, row_of);
    split_panel(p.panel, p.K, p.nv);
  }
}

template <class T>
struct ForwardCtx {
  Cell cell;
  Nonlinearity act;
  index_t B, H, GH;
  const T* bias;  // (G*H,): b_ih + b_hh (GRU's n block: b_in only)
  const T* b_hn;  // GRU (H,): b_hh's n block
  T *out, *h, *c, *gates, *hn;
};

template <class T>
inline Pk<T> activate(Nonlinearity act, const Pk<T>& a) {
  using V = Vec<T>;
  switch (act) {
    case Nonlinearity::tanh: return V::tanh(a);
    case Nonlinearity::sigmoid: return V::sigmoid(a);
    default:  // relu; (a < 0) is false for NaN, which passes through
      return ei::pselect(ei::pcmp_lt(a, V::set(T(0))), V::set(T(0)), a);
  }
}

// Row b at step s, units of tile t: crow = [x_t | h] @ (the tile's weights)^T.
template <class T>
inline void forward_row(const ForwardCtx<T>& f, const Schedule& sc, index_t s, index_t b,
                        const Tile<T>& t, const T* crow) {
  using V = Vec<T>;
  using P = Pk<T>;
  constexpr int L = V::L;
  const index_t H = f.H, B = f.B;
  const index_t row = s * B + b, next = (s + 1) * B + b;
  const index_t tb = sc.time(s, b) * B + b;
  const index_t u0 = t.u0;
  auto pre = [&](int v, index_t boff, int n) {  // product vector v + its bias
    return ei::padd(ei::ploadu<P>(crow + v * L), V::load(f.bias + boff + u0, n));
  };
  if (f.cell == Cell::lstm) {
    const int n = t.nu;
    const P i = V::sigmoid(pre(0, 0, n));
    const P fg = V::sigmoid(pre(1, H, n));
    const P gg = V::tanh(pre(2, 2 * H, n));
    const P o = V::sigmoid(pre(3, 3 * H, n));
    const P cn = ei::pmadd(fg, V::load(f.c + row * H + u0, n), ei::pmul(i, gg));  // c' = f c + i g
    const P hv = ei::pmul(o, V::tanh(cn));                                          // h' = o tanh(c')
    T* g = f.gates + row * f.GH + u0;
    V::store(g, i, n);
    V::store(g + H, fg, n);
    V::store(g + 2 * H, gg, n);
    V::store(g + 3 * H, o, n);
    V::store(f.c + next * H + u0, cn, n);
    V::store(f.h + next * H + u0, hv, n);
    V::store(f.out + tb * H + u0, hv, n);
  } else if (f.cell == Cell::gru) {
    const int n = t.nu;  // crow = [x W_in | r | z | h W_hn]
    const P r = V::sigmoid(pre(1, 0, n));
    const P z = V::sigmoid(pre(2, H, n));
    P hnv = ei::ploadu<P>(crow + 3 * L);  // W_hn h + b_hn
    if (f.b_hn) hnv = ei::padd(hnv, V::load(f.b_hn + u0, n));
    const P nn = V::tanh(ei::pmadd(r, hnv, pre(0, 2 * H, n)));
    const P hp = V::load(f.h + row * H + u0, n);
    const P hv = ei::pmadd(z, ei::psub(hp, nn), nn);  // (1 - z) n + z h
    T* g = f.gates + row * f.GH + u0;
    V::store(g, r, n);
    V::store(g + H, z, n);
    V::store(g + 2 * H, nn, n);
    V::store(f.hn + row * H + u0, hnv, n);
    V::store(f.h + next * H + u0, hv, n);
    V::store(f.out + tb * H + u0, hv, n);
  } else {
    for (int j = 0; j < t.width; ++j) {
      const index_t u = u0 + index_t(j) * L;
      const int n = int(std::min<index_t>(L, u0 + t.nu - u));
      if (n <= 0) break;
      const P hv = activate<T>(f.act, ei::padd(ei::ploadu<P>(crow + j * L), V::load(f.bias + u, n)));
      V::store(f.h + next * H + u, hv, n);
      V::store(f.out + tb * H + u, hv, n);
    }
  }
}

// What forward_row touches for row b, units of tile t.
template <class T>
inline void forward_prefetch(const ForwardCtx<T>& f, const Schedule& sc, index_t s, index_t b,
                             const Tile<T>& t) {
  const index_t H = f.H, B = f.B, row = s * B + b, next = (s + 1) * B + b, u0 = t.u0, n = t.nu;
  if (f.c) prefetch(f.c + row * H + u0, n);
  if (f.cell == Cell::gru) prefetch(f.h + row * H + u0, n);
  if (f.gates)
    for (index_t g = 0; g < f.GH / H; ++g) prefetch(f.gates + row * f.GH + g * H + u0, n, true);
  if (f.c) prefetch(f.c + next * H + u0, n, true);
  if (f.hn) prefetch(f.hn + row * H + u0, n, true);
  prefetch(f.h + next * H + u0, n, true);
  prefetch(f.out + (sc.time(s, b) * B + b) * H + u0, n, true);
}

// A row at a padding step: state carried, output and saved activations zero.
template <class T>
inline void forward_pad(const ForwardCtx<T>& f, index_t s, index_t b, const Tile<T>& t) {
  const index_t H = f.H, B = f.B, row = s * B + b, next = (s + 1) * B + b;
  const index_t u0 = t.u0, n = t.nu;
  std::memcpy(f.h + next * H + u0, f.h + row * H + u0, sizeof(T) * n);
  std::fill(f.out + row * H + u0, f.out + row * H + u0 + n, T(0));  // time s is padding too
  if (f.c) std::memcpy(f.c + next * H + u0, f.c + row * H + u0, sizeof(T) * n);
  if (f.gates) {
    const index_t G = f.GH / H;
    for (index_t g = 0; g < G; ++g) std::fill_n(f.gates + row * f.GH + g * H + u0, n, T(0));
  }
  if (f.hn) std::fill_n(f.hn + row * H + u0, n, T(0));
}

// ---------------------------------------------------------------------------------------
// Backward

// The backward's tiles: hidden units in groups of up to kMaxNV vectors, then dx columns
// likewise. Vector v of that space ([0, nvh) units, then x columns) has its panel at
// store + v * G*H * L.
template <class T>
std::vector<Tile<T>> backward_tiles(Cell cell, index_t I, index_t H, T* store) {
  constexpr int L = Vec<T>::L;
  const index_t GH = num_gates(cell) * H, nvh = (H + L - 1) / L, nvx = (I + L - 1) / L;
  std::vector<Tile<T>> tiles;
  for (int kind = 0; kind < 2; ++kind) {
    const index_t first = kind == 0 ? 0 : nvh;
    for_groups(kind == 0 ? nvh : nvx, kMaxNV, [&](index_t v, int nvv) {
      Tile<T> t{};
      t.dx = kind == 1;
      t.u0 = v * L;
      t.nu = int(std::min<index_t>(index_t(nvv) * L, (t.dx ? I : H) - t.u0));
      t.width = nvv;
      T* base = store + (first + v) * GH * L;
      if (cell == Cell::gru && !t.dx) {  // hidden side: [da_r, da_z] from dA, then dhn
        t.nparts = 2;
        t.part[0] = {base, 2 * H, nvv, 0, 0};
        t.part[1] = {base + 2 * H * nvv * L, H, nvv, 0, 1};
      } else {
        t.nparts = 1;
        t.part[0] = {base, GH, nvv, 0, 0};
      }
      tiles.push_back(t);
    });
  }
  return tiles;
}

template <class T>
void pack_backward(const Tile<T>& t, const T* W_ih, const T* W_hh, index_t I, index_t H, index_t GH) {
  constexpr int L = Vec<T>::L;
  // the parts' panels are consecutive: together GH rows of W's columns
  if (t.dx)
    pack_columns(W_ih, I, GH, t.u0, t.nu, t.width * L, t.part[0].panel);
  else
    pack_columns(W_hh, H, GH, t.u0, t.nu, t.width * L, t.part[0].panel);
  for (int q = 0; q < t.nparts; ++q) split_panel(t.part[q].panel, t.part[q].K, t.part[q].nv);
}

template <class T>
struct BackwardCtx {
  Cell cell;
  Nonlinearity act;
  index_t B, I, H, GH;
  const T *dout, *dhT, *h, *c, *gates, *hn;
  T* dA;     // (T, B, G*H) d(pre-activations), input side (= hidden side but GRU's n block)
  T* dhn;    // GRU (T, B, H): d(W_hn h + b_hn)
  T* dC;     // LSTM (B, H): dL/dc carried back
  T* dhd;    // GRU (B, H): dh * z, the direct part of dL/dh_prev
  T* dh0;
  T* dx;
};

// Row b at step s (s >= 0) for the units of tile t; carry = dL/dh[s+1, b] reaching from
// step s + 1 (from_gemm: dgates[s+1] @ W_hh, plus GRU's direct term) or dhT.
template <class T>
inline void backward_row(const BackwardCtx<T>& k, const Schedule& sc, index_t s, index_t b,
                         const Tile<T>& t, const T* carry, bool from_gemm) {
  using V = Vec<T>;
  using P = Pk<T>;
  constexpr int L = V::L;
  const index_t H = k.H, B = k.B, GH = k.GH;
  const index_t row = s * B + b, next = (s + 1) * B + b;
  const P one = V::set(T(1));
  const T* dout = k.dout ? k.dout + (sc.time(s, b) * B + b) * H : nullptr;
  for (int j = 0; j < t.width; ++j) {
    const index_t u = t.u0 + index_t(j) * L;
    const int n = int(std::min<index_t>(L, t.u0 + t.nu - u));
    if (n <= 0) break;
    P dh = ei::ploadu<P>(carry + j * L);
    if (from_gemm && k.dhd) dh = ei::padd(dh, V::load(k.dhd + b * H + u, n));
    if (dout) dh = ei::padd(dh, V::load(dout + u, n));
    T* da = k.dA + row * GH + u;
    const T* gs = k.gates ? k.gates + row * GH + u : nullptr;
    if (k.cell == Cell::lstm) {
      const P i = V::load(gs, n), f = V::load(gs + H, n), g = V::load(gs + 2 * H, n),
              o = V::load(gs + 3 * H, n);
      const P tc = V::tanh(V::load(k.c + next * H + u, n));
      const P cp = V::load(k.c + row * H + u, n);
      // h' = o tanh(c'):  do = dh tanh(c'),  dc += dh o (1 - tanh(c')^2)
      const P dO = ei::pmul(dh, tc);
      const P dcs = ei::pmadd(ei::pmul(dh, o), ei::psub(one, ei::pmul(tc, tc)), V::load(k.dC + b * H + u, n));
      // c' = f c + i g:  di = dc g, df = dc c, dg = dc i, dc_prev = dc f
      V::store(k.dC + b * H + u, ei::pmul(dcs, f), n);
      const P dai = ei::pmul(ei::pmul(dcs, g), ei::pmul(i, ei::psub(one, i)));
      const P daf = ei::pmul(ei::pmul(dcs, cp), ei::pmul(f, ei::psub(one, f)));
      const P dag = ei::pmul(ei::pmul(dcs, i), ei::psub(one, ei::pmul(g, g)));
      const P dao = ei::pmul(dO, ei::pmul(o, ei::psub(one, o)));
      V::store(da, dai, n);
      V::store(da + H, daf, n);
      V::store(da + 2 * H, dag, n);
      V::store(da + 3 * H, dao, n);
    } else if (k.cell == Cell::gru) {
      const P r = V::load(gs, n), z = V::load(gs + H, n), nn = V::load(gs + 2 * H, n);
      const P hp = V::load(k.h + row * H + u, n);
      // h' = (1 - z) n + z h:  dn = dh (1 - z),  dz = dh (h - n),  dh_prev = dh z + ...
      const P dn = ei::pmul(dh, ei::psub(one, z));
      const P dz = ei::pmul(dh, ei::psub(hp, nn));
      V::store(k.dhd + b * H + u, ei::pmul(dh, z), n);
      // n = tanh(a_n + r hn):  da_n = dn (1 - n^2),  dr = da_n hn,  dhn = da_n r
      const P dan = ei::pmul(dn, ei::psub(one, ei::pmul(nn, nn)));
      const P dr = ei::pmul(dan, V::load(k.hn + row * H + u, n));
      const P dar = ei::pmul(dr, ei::pmul(r, ei::psub(one, r)));
      const P daz = ei::pmul(dz, ei::pmul(z, ei::psub(one, z)));
      const P dhn = ei::pmul(dan, r);
      V::store(da, dar, n);
      V::store(da + H, daz, n);
      V::store(da + 2 * H, dan, n);
      V::store(k.dhn + row * H + u, dhn, n);
    } else {
      // h' = act(a):  da = dh act'(a), act' from h'
      const P hv = V::load(k.h + next * H + u, n);
      P slope;
      if (k.act == Nonlinearity::tanh)
        slope = ei::psub(one, ei::pmul(hv, hv));
      else if (k.act == Nonlinearity::sigmoid)
        slope = ei::pmul(hv, ei::psub(one, hv));
      else
        slope = ei::pand(ei::pcmp_lt(V::set(T(0)), hv), one);  // 1 where h' > 0
      const P dav = ei::pmul(dh, slope);
      V::store(da, dav, n);
    }
  }
}

// What backward_row reads and writes for row b at step s >= 0, units of tile t.
template <class T>
inline void backward_prefetch(const BackwardCtx<T>& k, const Schedule& sc, index_t s, index_t b,
                              const Tile<T>& t) {
  if (s < 0) return;
  const index_t H = k.H, B = k.B, GH = k.GH, row = s * B + b, next = (s + 1) * B + b;
  const index_t u0 = t.u0, n = t.nu;
  const index_t G = GH / H;
  if (k.dout) prefetch(k.dout + (sc.time(s, b) * B + b) * H + u0, n);
  if (k.gates)
    for (index_t g = 0; g < G; ++g) prefetch(k.gates + row * GH + g * H + u0, n);
  if (k.cell == Cell::lstm) {
    prefetch(k.c + next * H + u0, n);
    prefetch(k.c + row * H + u0, n);
  } else if (k.cell == Cell::gru) {
    prefetch(k.h + row * H + u0, n);
    prefetch(k.hn + row * H + u0, n);
    prefetch(k.dhn + row * H + u0, n, true);
  } else {
    prefetch(k.h + next * H + u0, n);
  }
  for (index_t g = 0; g < G; ++g) prefetch(k.dA + row * GH + g * H + u0, n, true);
}

// After step 0: dh0[b] for the units of tile t.
template <class T>
inline void backward_dh0(const BackwardCtx<T>& k, index_t b, const Tile<T>& t, const T* carry, bool from_gemm) {
  using V = Vec<T>;
  using P = Pk<T>;
  constexpr int L = V::L;
  for (int j = 0; j < t.width; ++j) {
    const index_t u = t.u0 + index_t(j) * L;
    const int n = int(std::min<index_t>(L, t.u0 + t.nu - u));
    if (n <= 0) break;
    P dh = ei::ploadu<P>(carry + j * L);
    if (from_gemm && k.dhd) dh = ei::padd(dh, V::load(k.dhd + b * k.H + u, n));
    V::store(k.dh0 + b * k.H + u, dh, n);
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------

template <class T>
void recurrent_forward(Cell cell, Nonlinearity act, RecurrentDims d, const T* x, const T* h0,
                       const T* c0, const T* W_ih, const T* W_hh, const T* b_ih, const T* b_hh,
                       const index_t* lengths, bool reverse, T* out, T* hT, T* cT, T* h, T* c,
                       T* gates, T* hn) {
  const index_t Tn = d.T, B = d.B, I = d.I, H = d.H;
  const int G = num_gates(cell);
  const index_t GH = G * H, BH = B * H;
  if (BH == 0) return;  // every output is empty
  if (h0) std::memcpy(h, h0, sizeof(T) * BH); else std::fill(h, h + BH, T(0));
  if (cell == Cell::lstm) {
    if (c0) std::memcpy(c, c0, sizeof(T) * BH); else std::fill(c, c + BH, T(0));
  }
  if (Tn > 0) {
    const Schedule sc(Tn, B, lengths, reverse);
    // Biases folded into one vector; the GRU keeps b_hn apart (r multiplies W_hn h + b_hn).
    Scratch<T> bias(kBias, GH);
    const index_t shared = cell == Cell::gru ? 2 * H : GH;
    for (index_t j = 0; j < GH; ++j)
      bias.get()[j] = (b_ih ? b_ih[j] : T(0)) + (b_hh && j < shared ? b_hh[j] : T(0));

    constexpr int L = Vec<T>::L;
    const index_t nvec = (H + L - 1) / L;
    const int nt = step_team_size(B * GH * (I + H), nvec);
    Scratch<T> panels(kPanels, nvec * (I + H) * G * L);
    const bool stream = streams_past_l2(index_t(sizeof(T)) * nvec * (I + H) * G * L / nt);
    const int width = cell == Cell::rnn ? kMaxNV : 4;
    Scratch<T> cbufs(kCbuf, index_t(nt) * B * width * L);
    const ForwardCtx<T> f{cell, act, B, H, GH, bias.get(), (cell == Cell::gru && b_hh) ? b_hh + 2 * H : nullptr,
                          out, h, cell == Cell::lstm ? c : nullptr, cell == Cell::rnn ? nullptr : gates,
                          cell == Cell::gru ? hn : nullptr};

    const std::vector<Tile<T>> tiles = forward_tiles(cell, I, H, panels.get());
    std::vector<index_t> weight;
    for (const Tile<T>& t : tiles) weight.push_back(t.width);
    std::vector<double> times(2 * nt);

    TeamBarrier bar;
    SoloSwitch solo;
    run_team(nt, [&](int tid, int team) {
      for (size_t q = tid; q < tiles.size(); q += team) pack_forward(cell, tiles[q], W_ih, W_hh, I, H);
      Balancer bal(weight, B, team, times.data());
      T* cbuf = cbufs.get() + index_t(tid) * B * width * L;
      std::vector<const T*> xrow(B);
      const index_t* rows = sc.order.data();
      bar.wait(team);  // every panel packed
      double busy = 0, waited = 0;
      for (index_t s = 0; s < Tn; ++s) {
        if (solo.out(tid, s)) break;
        const bool alone = solo.alone(tid, s);
        if (s > 0 && !alone) bal.update(s - 1);
        const double t0 = omp_get_wtime();
        const std::vector<Share> mine = solo.shares(bal, tid, team, s);
        const index_t n = sc.running(s);
        for (index_t i = 0; i < n; ++i) xrow[rows[i]] = x + (sc.time(s, rows[i]) * B + rows[i]) * I;
        const Src<T> src[2] = {{nullptr, 0, xrow.data()}, {h + s * BH, H, nullptr}};
        for (const Share& sh : mine) {
          const Tile<T>& t = tiles[sh.t];
          const index_t run_end = std::min(sh.r1, n);
          if (sh.r0 < run_end)
            tile_product(t, rows + sh.r0, run_end - sh.r0, src, cbuf, stream,
                         [&](index_t b) { forward_prefetch(f, sc, s, b, t); },
                         [&](index_t b, const T* crow) { forward_row(f, sc, s, b, t, crow); });
          for (index_t i = std::max(sh.r0, n); i < sh.r1; ++i) forward_pad(f, s, rows[i], t);
        }
        if (alone) continue;
        const double t1 = omp_get_wtime();
        bal.report(s, tid, t1 - t0);
        busy += t1 - t0;
        solo.consider(tid, s, busy, waited);
        bar.wait(team);
        waited += omp_get_wtime() - t1;
      }
    });
  }
  std::memcpy(hT, h + Tn * BH, sizeof(T) * BH);
  if (cell == Cell::lstm) std::memcpy(cT, c + Tn * BH, sizeof(T) * BH);
}

template <class T>
void recurrent_backward(Cell cell, Nonlinearity act, RecurrentDims d, const T* dout, const T* dhT,
                        const T* dcT, const T* x, const T* W_ih, const T* W_hh,
                        const index_t* lengths, bool reverse, const T* h, const T* c,
                        const T* gates, const T* hn, T* dx, T* dh0, T* dc0, T* dW_ih, T* dW_hh,
                        T* db_ih, T* db_hh) {
  const index_t Tn = d.T, B = d.B, I = d.I, H = d.H;
  const int G = num_gates(cell);
  const index_t GH = G * H, BH = B * H, TB = Tn * B;
  auto zero = [](T* p, index_t n) { if (n > 0) std::fill(p, p + n, T(0)); };
  if (Tn == 0 || BH == 0) {  // no step: gradients pass from the final state to the initial one
    if (dhT) std::memcpy(dh0, dhT, sizeof(T) * BH); else zero(dh0, BH);
    if (cell == Cell::lstm) {
      if (dcT) std::memcpy(dc0, dcT, sizeof(T) * BH); else zero(dc0, BH);
    }
    zero(dx, TB * I);
    zero(dW_ih, GH * I);
    zero(dW_hh, GH * H);
    zero(db_ih, GH);
    zero(db_hh, GH);
    return;
  }
  const Schedule sc(Tn, B, lengths, reverse);
  // dA rows of padding steps are never written nor read.
  Scratch<T> dA(kGrad, TB * GH), dhn(kGradN, cell == Cell::gru ? TB * H : 0),
      dC(kStateC, cell == Cell::lstm ? BH : 0), dhd(kStateH, cell == Cell::gru ? BH : 0);
  if (cell == Cell::lstm) {
    if (dcT) std::memcpy(dC.get(), dcT, sizeof(T) * BH); else zero(dC.get(), BH);
  }
  const BackwardCtx<T> k{cell, act, B, I, H, GH, dout, dhT, h, c, gates, hn,
                         dA.get(), cell == Cell::gru ? dhn.get() : nullptr,
                         cell == Cell::lstm ? dC.get() : nullptr, cell == Cell::gru ? dhd.get() : nullptr,
                         dh0, dx};

  constexpr int L = Vec<T>::L;
  const index_t nvh = (H + L - 1) / L, nvx = (I + L - 1) / L;
  const int nt = step_team_size(B * GH * (H + I), nvh + nvx);
  Scratch<T> panels(kPanels, (nvh + nvx) * GH * L);
  const bool stream = streams_past_l2(index_t(sizeof(T)) * (nvh + nvx) * GH * L / nt);
  const int W = kMaxNV * L;
  // dx = dA @ W_ih runs over every valid (s, b) at once after the time loop, in blocks of
  // kDxRows rows: a panel block then serves 256 rows instead of a step's B (measured 5% off
  // LSTM fwd+bwd at B = 32-128, 10% at B = 20), and the loop's barriers wait on less work.
  constexpr index_t kDxRows = 256;
  const index_t cstride = std::max(B, kDxRows) * W;
  Scratch<T> cbufs(kCbuf, index_t(nt) * cstride);
  const std::vector<Tile<T>> tiles = backward_tiles(cell, I, H, panels.get());
  const index_t ndx = std::count_if(tiles.begin(), tiles.end(), [](const Tile<T>& t) { return t.dx; });
  // the valid (s, b) of the schedule: their rows of dA (ra) and of x / dx (rx)
  std::vector<index_t> ra, rx;
  ra.reserve(TB);
  rx.reserve(TB);
  for (index_t s = 0; s < Tn; ++s)
    for (index_t i = 0; i < sc.running(s); ++i) {
      const index_t b = sc.order[i];
      ra.push_back(s * B + b);
      rx.push_back(sc.time(s, b) * B + b);
    }
  const index_t Kd = index_t(ra.size());
  std::vector<index_t> dx_row(TB, -1);  // dA row -> dx row
  for (index_t q = 0; q < Kd; ++q) dx_row[ra[q]] = rx[q];
  if (lengths)  // padding steps pass no gradient to x
    for (index_t b = 0; b < B; ++b)
      for (index_t t = sc.len[b]; t < Tn; ++t) std::fill_n(dx + (t * B + b) * I, I, T(0));
  // The split's starting point: the cost per row of a tile ~ multiply-adds per vector plus
  // its epilogue (measured: an LSTM unit's gate gradients ~ 300 multiply-adds per row).
  static constexpr index_t kEpilogueCost[5] = {0, 60, 0, 250, 300};
  std::vector<index_t> weight;
  for (const Tile<T>& t : tiles)  // (dx tiles: weight 0, they run after the loop)
    weight.push_back(t.dx ? 0 : t.width * (GH + kEpilogueCost[G]));
  std::vector<double> times(2 * nt);
  TeamBarrier bar;
  SoloSwitch solo;
  run_team(nt, [&](int tid, int team) {
    for (size_t q = tid; q < tiles.size(); q += team) pack_backward(tiles[q], W_ih, W_hh, I, H, GH);
    Balancer bal(weight, B, team, times.data());
    T* cbuf = cbufs.get() + index_t(tid) * cstride;
    alignas(64) T start[kMaxNV * 64];  // dhT for one row of a tile (width * L <= kMaxNV * 64)
    const index_t* rows = sc.order.data();
    bar.wait(team);  // every panel packed
    double busy = 0, waited = 0;
    for (index_t s = Tn - 1; s >= -1; --s) {
      const index_t it = Tn - 1 - s;  // iterations so far
      if (solo.out(tid, it)) break;
      const bool alone = solo.alone(tid, it);
      // (the split moves by the last iteration's times; not the first's: it only starts
      // the rows from dhT)
      if (s < Tn - 2 && !alone) bal.update(s + 2);
      const double t0 = omp_get_wtime();
      const std::vector<Share> mine = solo.shares(bal, tid, team, it);
      const index_t ng = sc.running(s + 1);  // rows with dgates at s + 1: carry by the product
      const index_t n = sc.running(s);       // rows running at step s
      const Src<T> src[2] = {{dA.get() + (s + 1) * B * GH, GH, nullptr},
                             {cell == Cell::gru ? dhn.get() + (s + 1) * BH : nullptr, H, nullptr}};
      for (const Share& sh : mine) {
        const Tile<T>& t = tiles[sh.t];
        const index_t gend = std::min(sh.r1, ng);
        if (sh.r0 < gend) {
          if (s >= 0)
            tile_product(t, rows + sh.r0, gend - sh.r0, src, cbuf, stream,
                         [&](index_t b) { backward_prefetch(k, sc, s, b, t); },
                         [&](index_t b, const T* crow) { backward_row(k, sc, s, b, t, crow, true); });
          else
            tile_product(t, rows + sh.r0, gend - sh.r0, src, cbuf, stream, [](index_t) {},
                         [&](index_t b, const T* crow) { backward_dh0(k, b, t, crow, true); });
        }
        // sequences whose last step is s start from dhT
        for (index_t i = std::max(sh.r0, ng); i < std::min(sh.r1, n); ++i) {
          const index_t b = rows[i];
          std::fill(start, start + t.width * L, T(0));
          if (dhT) std::memcpy(start, dhT + b * H + t.u0, sizeof(T) * t.nu);
          if (s >= 0)
            backward_row(k, sc, s, b, t, start, false);
          else
            backward_dh0(k, b, t, start, false);
        }
      }
      if (alone) continue;
      const double t1 = omp_get_wtime();
      bal.report(s + 1, tid, t1 - t0);
      busy += t1 - t0;
      solo.consider(tid, it, busy, waited);
      bar.wait(team);
      waited += omp_get_wtime() - t1;
    }
    bar.wait(team);  // every row of dA written (a thread that left the loop early waits here)
    // Whole tiles per thread when they divide evenly; else every thread takes its share of
    // the rows of every tile (an input of 64 columns is one tile: by tiles, one thread did
    // all of dx while the other waited, 1.7 ms of an 11 ms LSTM backward at B = 64, H = 256).
    const Src<T> da[1] = {{dA.get(), GH, nullptr}};
    const bool by_tiles = ndx % team == 0;
    const index_t k0 = by_tiles ? 0 : Kd * tid / team, k1 = by_tiles ? Kd : Kd * (tid + 1) / team;
    index_t q = 0;
    for (const Tile<T>& t : tiles) {
      if (!t.dx || (by_tiles && q++ % team != index_t(tid))) continue;
      for (index_t r0 = k0; r0 < k1; r0 += kDxRows)
        tile_product(t, ra.data() + r0, std::min(kDxRows, k1 - r0), da, cbuf, stream, [](index_t) {},
                     [&](index_t r, const T* crow) {
                       std::memcpy(dx + dx_row[r] * I + t.u0, crow, sizeof(T) * t.nu);
                     });
    }
  });
  if (cell == Cell::lstm) std::memcpy(dc0, dC.get(), sizeof(T) * BH);
  // dW_ih = sum over valid (s, b) of dA[s, b]^T x[time(s, b), b];  dW_hh likewise with h[s, b]
  // (GRU: the hidden side [da_r, da_z | dhn]); db = the sums of dA (dhn), in the same pass.
  if (cell == Cell::gru) {  // the hidden side's n block is dhn, not dA's
    gemm_tn<T>(GH, Kd, dA.get(), GH, ra.data(), db_ih,
               {{x, I, rx.data(), I, dW_ih, I, GH}, {h, H, ra.data(), H, dW_hh, H, 2 * H}});
    gemm_tn<T>(H, Kd, dhn.get(), H, ra.data(), db_hh + 2 * H,
               {{h, H, ra.data(), H, dW_hh + 2 * H * H, H, H}});
    std::memcpy(db_hh, db_ih, sizeof(T) * 2 * H);
  } else {
    gemm_tn<T>(GH, Kd, dA.get(), GH, ra.data(), db_ih,
               {{x, I, rx.data(), I, dW_ih, I, GH}, {h, H, ra.data(), H, dW_hh, H, GH}});
    std::memcpy(db_hh, db_ih, sizeof(T) * GH);
  }
}

#define NNKERN_INSTANTIATE(T)                                                                      \
  template void recurrent_forward<T>(Cell, Nonlinearity, RecurrentDims, const T*, const T*,       \
                                     const T*, const T*, const T*, const T*, const T*,            \
                                     const index_t*, bool, T*, T*, T*, T*, T*, T*, T*);           \
  template void recurrent_backward<T>(Cell, Nonlinearity, RecurrentDims, const T*, const T*,      \
                                      const T*, const T*, const T*, const T*, const index_t*,     \
                                      bool, const T*, const T*, const T*, const T*, T*, T*, T*,   \
                                      T*, T*, T*, T*);
NNKERN_INSTANTIATE(float)
NNKERN_INSTANTIATE(double)
#undef NNKERN_INSTANTIATE

}  // namespace nnkern
