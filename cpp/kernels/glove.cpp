#include "kernels/glove.hpp"

#include <algorithm>

namespace nnkern {

template <class T>
double glove_update(T* W, T* C, T* bw, T* bc, T* gW, T* gC, T* gbw, T* gbc, index_t D,
                    std::int64_t i, std::int64_t j, T x, T lr, T x_max, T alpha) {
  return glove_step<T>(W + i * D, C + j * D, bw + i, bc + j, gW + i * D, gC + j * D, gbw + i,
                       gbc + j, D, x, lr, x_max, alpha);
}

namespace {
// The rows a pair touches are random in tables far larger than the cache: ask for them a
// few pairs ahead so their misses overlap with the current update.
inline void prefetch_rows(const float* a, const float* b, const float* c, const float* d,
                          index_t D) {
  for (index_t o = 0; o < D; o += 16) {
    __builtin_prefetch(a + o, 1);
    __builtin_prefetch(b + o, 1);
    __builtin_prefetch(c + o, 1);
    __builtin_prefetch(d + o, 1);
  }
}
constexpr index_t kGloveAhead = 4;
}  // namespace

double glove_epoch(float* W, float* C, float* bw, float* bc, float* gW, float* gC, float* gbw,
                   float* gbc, index_t D, const std::int32_t* rows, const std::int32_t* cols,
                   const float* vals, index_t nnz, float lr, float x_max, float alpha,
                   int threads) {
  threads = std::max(1, threads);
  std::vector<double> loss(threads, 0.0);
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num(), team = omp_get_num_threads();
    const index_t b = nnz * t / team, e = nnz * (t + 1) / team;
    double l = 0.0;
    for (index_t k = b; k < e; ++k) {
      if (k + kGloveAhead < e) {
        const index_t pi = rows[k + kGloveAhead], pj = cols[k + kGloveAhead];
        prefetch_rows(W + pi * D, C + pj * D, gW + pi * D, gC + pj * D, D);
      }
      const index_t i = rows[k], j = cols[k];
      l += glove_step<float>(W + i * D, C + j * D, bw + i, bc + j, gW + i * D, gC + j * D,
                             gbw + i, gbc + j, D, vals[k], lr, x_max, alpha);
    }
    loss[t] = l;
  }
  double total = 0.0;
  for (double l : loss) total += l;
  return total;
}

Cooccur::Cooccur(index_t V, int window, bool symmetric, int slots, index_t dense_words,
                 std::size_t buffer_pairs)
    : V_(V), F_(std::min(V, dense_words)), window_(window), symmetric_(symmetric),
      cap_(std::max<std::size_t>(buffer_pairs, 1024)), slots_(std::max(slots, 1)) {
  for (Slot& s : slots_) {
    s.dense.assign(std::size_t(F_) * std::size_t(F_), 0.0f);
    s.buf.reserve(cap_);
  }
}

void Cooccur::add(int slot, const std::int32_t* tokens, const std::int64_t* sent_off, index_t S,
                   index_t lead, index_t trail) {
  Slot& s = slots_[slot];
  for (index_t k = 0; k < S; ++k) {
    const index_t b = sent_off[k], e = sent_off[k + 1];
    const index_t c_lo = k == 0 ? b + lead : b, c_hi = k == S - 1 ? e - trail : e;
    for (index_t i = c_lo; i < c_hi; ++i) {
      const index_t lo = std::max<index_t>(b, i - window_);
      for (index_t j = i - 1; j >= lo; --j) {
        const float w = 1.0f / float(i - j);
        put(s, tokens[i], tokens[j], w);
        if (symmetric_) put(s, tokens[j], tokens[i], w);
      }
    }
  }
}

// Sort and reduce the buffer, then merge it into the slot's sorted list.
void Cooccur::flush(Slot& s) {
  if (s.buf.empty()) return;
  std::sort(s.buf.begin(), s.buf.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::uint64_t> keys;
  std::vector<float> vals;
  keys.reserve(s.keys.size() + s.buf.size());
  vals.reserve(s.keys.size() + s.buf.size());
  std::size_t p = 0, q = 0;
  auto push = [&](std::uint64_t k, float v) {
    if (!keys.empty() && keys.back() == k)
      vals.back() += v;
    else
      keys.push_back(k), vals.push_back(v);
  };
  while (p < s.keys.size() || q < s.buf.size()) {
    if (q == s.buf.size() || (p < s.keys.size() && s.keys[p] <= s.buf[q].first)) {
      push(s.keys[p], s.vals[p]);
      ++p;
    } else {
      push(s.buf[q].first, s.buf[q].second);
      ++q;
    }
  }
  s.keys.swap(keys);
  s.vals.swap(vals);
  s.buf.clear();
}

void Cooccur::finish(std::vector<std::int32_t>& rows, std::vector<std::int32_t>& cols,
                     std::vector<float>& vals) {
  // The dense blocks are summed into slot 0's and appended to its buffer as ordinary pairs.
  Slot& s0 = slots_[0];
  for (std::size_t k = 1; k < slots_.size(); ++k) {
    for (std::size_t x = 0; x < s0.dense.size(); ++x) s0.dense[x] += slots_[k].dense[x];
    std::vector<float>().swap(slots_[k].dense);
  }
  for (index_t a = 0; a < F_; ++a)
    for (index_t b = 0; b < F_; ++b) {
      const float v = s0.dense[std::size_t(a) * F_ + b];
      if (v != 0.0f) s0.buf.emplace_back(std::uint64_t(a) * V_ + std::uint64_t(b), v);
    }
  std::vector<float>().swap(s0.dense);
  flush(s0);
  for (std::size_t k = 1; k < slots_.size(); ++k) {
    Slot& s = slots_[k];
    flush(s);
    // merge slot k's sorted list into slot 0's through the buffer path
    s0.buf.reserve(s.keys.size());
    for (std::size_t x = 0; x < s.keys.size(); ++x) s0.buf.emplace_back(s.keys[x], s.vals[x]);
    std::vector<std::uint64_t>().swap(s.keys);
    std::vector<float>().swap(s.vals);
    flush(s0);
  }
  const std::size_t n = s0.keys.size();
  rows.resize(n);
  cols.resize(n);
  vals.resize(n);
  for (std::size_t x = 0; x < n; ++x) {
    rows[x] = std::int32_t(s0.keys[x] / std::uint64_t(V_));
    cols[x] = std::int32_t(s0.keys[x] % std::uint64_t(V_));
    vals[x] = s0.vals[x];
  }
  slots_.clear();
}

template double glove_update<float>(float*, float*, float*, float*, float*, float*, float*,
                                    float*, index_t, std::int64_t, std::int64_t, float, float,
                                    float, float);
template double glove_update<double>(double*, double*, double*, double*, double*, double*,
                                     double*, double*, index_t, std::int64_t, std::int64_t,
                                     double, double, double, double);

}  // namespace nnkern
