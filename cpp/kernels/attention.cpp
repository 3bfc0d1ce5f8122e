#include "kernels/attention.hpp"

#include "kernels/microkernel.hpp"
#include "kernels/packet_math.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <type_traits>
#include <vector>

namespace nnkern {

namespace {

template <class T>
using Arr = Eigen::Array<T, 1, Eigen::Dynamic>;

// Row i of the mask for batch b (nullptr: everything allowed).
inline const std::uint8_t* mask_row(const std::uint8_t* mask, bool per_query, index_t b, index_t i,
                                    index_t Tq, index_t Tk) {
  if (!mask) return nullptr;
  return per_query ? mask + (b * Tq + i) * Tk : mask + b * Tk;
}

// p[j] = softmax over allowed j of s[j] (0 where masked); all zero if nothing is allowed.
template <class T>
void masked_softmax_row(const T* s, const std::uint8_t* m, T* p, index_t Tk) {
  constexpr T ninf = -std::numeric_limits<T>::infinity();
  T mx = ninf;
  bool nan = false;
  for (index_t j = 0; j < Tk; ++j)
    if (!m || m[j]) {
      if (std::isnan(s[j])) nan = true;
      else mx = std::max(mx, s[j]);
    }
  if (nan) {  // NaN in an allowed score makes the row NaN, as in NumPy
    for (index_t j = 0; j < Tk; ++j) p[j] = (!m || m[j]) ? std::numeric_limits<T>::quiet_NaN() : T(0);
    return;
  }
  if (mx == ninf) {  // nothing to attend to (or every allowed score is -inf)
    std::fill(p, p + Tk, T(0));
    return;
  }
  const auto vm = Eigen::internal::pset1<pm::Packet<T>>(mx);
  pm::map(s, p, Tk, [&](const pm::Packet<T>& a) { return Eigen::internal::pexp(Eigen::internal::psub(a, vm)); });
  if (m)
    for (index_t j = 0; j < Tk; ++j)
      if (!m[j]) p[j] = T(0);
  const T tot = pm::sum(p, static_cast<const T*>(nullptr), Tk);
  for (index_t j = 0; j < Tk; ++j) p[j] /= tot;
}

// ds = p * (dp - rowsum(dp * p)) * scale for a (Tq, Tk) block, in place on dp.
template <class T>
void softmax_backward_rows(const T* p, T* dp, index_t Tq, index_t Tk, T scale) {
  for (index_t i = 0; i < Tq; ++i) {
    Eigen::Map<const Arr<T>> pr(p + i * Tk, Tk);
    Eigen::Map<Arr<T>> g(dp + i * Tk, Tk);
    const T dot = pm::sum(dp + i * Tk, p + i * Tk, Tk);
    g = pr * (g - dot) * scale;
  }
}

// Threads for a loop over B items of `work` multiply-adds each.
inline int attn_threads(index_t B, index_t work) {
  const int nt = get_num_threads();
  if (nt <= 1 || B <= 1 || B * work < (index_t(1) << 16)) return 1;
  return int(std::min<index_t>(nt, B));
}

}  // namespace

template <class T>
void sdpa_forward(AttnDims d, const T* q, const T* k, const T* v, const std::uint8_t* mask,
                  bool mask_per_query, T scale, T* out, T* P) {
  const index_t B = d.B, Tq = d.Tq, Tk = d.Tk, D = d.D, Dv = d.Dv;
  if (B == 0 || Tq == 0) return;
  const int nt = attn_threads(B, Tq * Tk * (D + Dv));
#pragma omp parallel num_threads(nt)
  {
    std::vector<T> s(Tq * Tk);
#pragma omp for schedule(static)
    for (index_t b = 0; b < B; ++b) {
      // S = q k^T, then scaled; out = P v (one thread per batch item, no nested teams)
      mk::gemm_rows<T>(Tq, Tk, D, q + b * Tq * D, D, k + b * Tk * D, D, true, s.data(), Tk, nullptr, false);
      MapMat<T>(s.data(), Tq, Tk) *= scale;
      T* pb = P + b * Tq * Tk;
      for (index_t i = 0; i < Tq; ++i)
        masked_softmax_row(s.data() + i * Tk, mask_row(mask, mask_per_query, b, i, Tq, Tk), pb + i * Tk, Tk);
      mk::gemm_rows<T>(Tq, Dv, Tk, pb, Tk, v + b * Tk * Dv, Dv, false, out + b * Tq * Dv, Dv, nullptr, false);
    }
  }
}

template <class T>
void sdpa_backward(AttnDims d, const T* dout, const T* q, const T* k, const T* v, const T* P, T scale,
                   T* dq, T* dk, T* dv) {
  const index_t B = d.B, Tq = d.Tq, Tk = d.Tk, D = d.D, Dv = d.Dv;
  const int nt = attn_threads(B, Tq * Tk * (2 * D + 2 * Dv));
#pragma omp parallel num_threads(nt)
  {
    std::vector<T> g(Tq * Tk);
#pragma omp for schedule(static)
    for (index_t b = 0; b < B; ++b) {
      CMapMat<T> Pb(P + b * Tq * Tk, Tq, Tk), dO(dout + b * Tq * Dv, Tq, Dv), Q(q + b * Tq * D, Tq, D);
      MapMat<T> dV(dv + b * Tk * Dv, Tk, Dv), dK(dk + b * Tk * D, Tk, D);
      // The A^T B products stay on Eigen: at these sizes gemm_tn measured no faster.
      if (Tq == 0) dV.setZero();
      else dV.noalias() = Pb.transpose() * dO;  // out = P v
      // dP = dO V^T, then dS
      mk::gemm_rows<T>(Tq, Tk, Dv, dO.data(), Dv, v + b * Tk * Dv, Dv, true, g.data(), Tk, nullptr, false);
      softmax_backward_rows(Pb.data(), g.data(), Tq, Tk, scale);  // P = softmax(S), S = scale q k^T
      // dQ = dS K, dK = dS^T Q
      mk::gemm_rows<T>(Tq, D, Tk, g.data(), Tk, k + b * Tk * D, D, false, dq + b * Tq * D, D, nullptr, false);
      if (Tq == 0) dK.setZero();
      else dK.noalias() = MapMat<T>(g.data(), Tq, Tk).transpose() * Q;
    }
  }
}

template <class T>
void additive_forward(AttnDims d, index_t Dk, index_t A, const T* q, const T* k, const T* v,
                      const T* W_q, const T* W_k, const T* w_v, const std::uint8_t* mask,
                      bool mask_per_query, T* out, T* P, T* hidden) {
  const index_t B = d.B, Tq = d.Tq, Tk = d.Tk, Dq = d.D, Dv = d.Dv;
  if (B == 0 || Tq == 0) return;
  // Every product runs per batch item on one thread (Eigen's own threading would make the
  // bits depend on the thread count).
  const int nt = attn_threads(B, Tq * Tk * (A * 8 + Dv) + (Tq * Dq + Tk * Dk) * A);
  Eigen::Map<const Arr<T>> wv(w_v, A);
  CMapMat<T> Wq(W_q, A, Dq), Wk(W_k, A, Dk);
#pragma omp parallel num_threads(nt)
  {
    std::vector<T> s(Tk);
    MatR<T> qp(Tq, A), kp(Tk, A);
#pragma omp for schedule(static)
    for (index_t b = 0; b < B; ++b) {
      if (Dq == 0) qp.setZero();
      else qp.noalias() = CMapMat<T>(q + b * Tq * Dq, Tq, Dq) * Wq.transpose();
      if (Dk == 0 || Tk == 0) kp.setZero();
      else kp.noalias() = CMapMat<T>(k + b * Tk * Dk, Tk, Dk) * Wk.transpose();
      T* pb = P + b * Tq * Tk;
      for (index_t i = 0; i < Tq; ++i) {
        const auto qi = qp.row(i).array();
        for (index_t j = 0; j < Tk; ++j) {
          Eigen::Map<Arr<T>> h(hidden + ((b * Tq + i) * Tk + j) * A, A);
          h = qi + kp.row(j).array();
          if constexpr (std::is_same_v<T, float>)  // Eigen has a packet tanh for float only
            pm::map(h.data(), h.data(), A, [](const pm::Packet<T>& a) { return Eigen::internal::ptanh(a); });
          else
            for (index_t c = 0; c < A; ++c) h[c] = std::tanh(h[c]);
          s[j] = pm::sum(h.data(), w_v, A);
        }
        masked_softmax_row(s.data(), mask_row(mask, mask_per_query, b, i, Tq, Tk), pb + i * Tk, Tk);
      }
      MapMat<T> O(out + b * Tq * Dv, Tq, Dv);
      if (Tk == 0) O.setZero();
      else O.noalias() = CMapMat<T>(pb, Tq, Tk) * CMapMat<T>(v + b * Tk * Dv, Tk, Dv);
    }
  }
}

template <class T>
void additive_backward(AttnDims d, index_t Dk, index_t A, const T* dout, const T* q, const T* k,
                       const T* v, const T* W_q, const T* W_k, const T* w_v, const T* P,
                       const T* hidden, T* dq, T* dk, T* dv, T* dW_q, T* dW_k, T* dw_v) {
  const index_t B = d.B, Tq = d.Tq, Tk = d.Tk, Dq = d.D, Dv = d.Dv;
  MatR<T> dqp = MatR<T>::Zero(B * Tq, A), dkp = MatR<T>::Zero(B * Tk, A);
  MatR<T> dwv_b = MatR<T>::Zero(B, A);  // per batch item, summed in order below
  Eigen::Map<const Arr<T>> wv(w_v, A);
  const int nt = attn_threads(B, Tq * Tk * (A * 6 + 2 * Dv));
#pragma omp parallel num_threads(nt)
  {
    std::vector<T> g(Tq * Tk);
    Arr<T> dh(A);
#pragma omp for schedule(static)
    for (index_t b = 0; b < B; ++b) {
      CMapMat<T> Pb(P + b * Tq * Tk, Tq, Tk), dO(dout + b * Tq * Dv, Tq, Dv), V(v + b * Tk * Dv, Tk, Dv);
      MapMat<T> dV(dv + b * Tk * Dv, Tk, Dv);
      if (Tq == 0) dV.setZero();
      else dV.noalias() = Pb.transpose() * dO;
      MapMat<T> dS(g.data(), Tq, Tk);
      if (Dv == 0) dS.setZero();
      else dS.noalias() = dO * V.transpose();
      softmax_backward_rows(Pb.data(), g.data(), Tq, Tk, T(1));
      auto acc = dwv_b.row(b).array();
      for (index_t i = 0; i < Tq; ++i) {
        auto dqi = dqp.row(b * Tq + i).array();
        for (index_t j = 0; j < Tk; ++j) {
          const T gs = g[i * Tk + j];
          if (gs == T(0)) continue;  // masked (or exactly zero): contributes nothing
          Eigen::Map<const Arr<T>> h(hidden + ((b * Tq + i) * Tk + j) * A, A);
          acc += gs * h;                          // S = hidden . w_v
          dh = gs * wv * (T(1) - h * h);  // hidden = tanh(qp_i + kp_j)
          dqi += dh;
          dkp.row(b * Tk + j).array() += dh;
        }
      }
    }
  }
  Eigen::Map<Arr<T>> dwv(dw_v, A);
  dwv.setZero();
  for (index_t b = 0; b < B; ++b) dwv += dwv_b.row(b).array();
  // qp = q W_q^T, kp = k W_k^T:  dq = dqp W_q, dk = dkp W_k (per batch item), and
  // dW_q = dqp^T q, dW_k = dkp^T k over the whole batch, in blocks of a fixed number of rows
  // of A (one thread each): the same arithmetic for any thread count.
  constexpr index_t kRows = 16;
  const index_t nblk = (A + kRows - 1) / kRows;
  CMapMat<T> Wq(W_q, A, Dq), Wk(W_k, A, Dk), Qall(q, B * Tq, Dq), Kall(k, B * Tk, Dk);
  const int nt2 = attn_threads(B + nblk, (Tq * Dq + Tk * Dk) * A);
#pragma omp parallel num_threads(nt2)
  {
#pragma omp for schedule(static) nowait
    for (index_t b = 0; b < B; ++b) {
      MapMat<T> dQ(dq + b * Tq * Dq, Tq, Dq), dK(dk + b * Tk * Dk, Tk, Dk);
      if (A == 0) {
        dQ.setZero();
        dK.setZero();
      } else {
        dQ.noalias() = dqp.middleRows(b * Tq, Tq) * Wq;
        dK.noalias() = dkp.middleRows(b * Tk, Tk) * Wk;
      }
    }
#pragma omp for schedule(static)
    for (index_t j = 0; j < nblk; ++j) {
      const index_t a0 = j * kRows, n = std::min(kRows, A - a0);
      MapMat<T> dWq(dW_q + a0 * Dq, n, Dq), dWk(dW_k + a0 * Dk, n, Dk);
      if (B * Tq == 0) dWq.setZero();
      else dWq.noalias() = dqp.middleCols(a0, n).transpose() * Qall;
      if (B * Tk == 0) dWk.setZero();
      else dWk.noalias() = dkp.middleCols(a0, n).transpose() * Kall;
    }
  }
}

#define NNKERN_INSTANTIATE(T)                                                                        \
  template void sdpa_forward<T>(AttnDims, const T*, const T*, const T*, const std::uint8_t*, bool, T,  \
                                T*, T*);                                                             \
  template void sdpa_backward<T>(AttnDims, const T*, const T*, const T*, const T*, const T*, T, T*,   \
                                 T*, T*);                                                            \
  template void additive_forward<T>(AttnDims, index_t, index_t, const T*, const T*, const T*,         \
                                    const T*, const T*, const T*, const std::uint8_t*, bool, T*, T*,  \
                                    T*);                                                             \
  template void additive_backward<T>(AttnDims, index_t, index_t, const T*, const T*, const T*,        \
                                     const T*, const T*, const T*, const T*, const T*, const T*, T*,  \
                                     T*, T*, T*, T*, T*);
NNKERN_INSTANTIATE(float)
NNKERN_INSTANTIATE(double)
#undef NNKERN_INSTANTIATE

}  // namespace nnkern
