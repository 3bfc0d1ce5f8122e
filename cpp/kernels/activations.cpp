#include "kernels/activations.hpp"

#include <cmath>

namespace nnkern {

template <class T>
void sigmoid(const T* x, T* y, index_t n) {
  parallel_chunks(n, [&](index_t b, index_t e) {
    // Eigen's logistic() is the stable form: it never forms exp(+large).
    MapArr<T>(y + b, e - b) = CMapArr<T>(x + b, e - b).logistic();
  });
}

template <class T>
void sigmoid_backward(const T* dy, const T* y, T* dx, index_t n) {
  parallel_chunks(n, [&](index_t b, index_t e) {
    auto yy = CMapArr<T>(y + b, e - b);
    MapArr<T>(dx + b, e - b) = CMapArr<T>(dy + b, e - b) * yy * (T(1) - yy);
  });
}

template <class T>
void tanh_forward(const T* x, T* y, index_t n) {
  parallel_chunks(n, [&](index_t b, index_t e) {
    MapArr<T>(y + b, e - b) = CMapArr<T>(x + b, e - b).tanh();
  });
}

template <class T>
void tanh_backward(const T* dy, const T* y, T* dx, index_t n) {
  parallel_chunks(n, [&](index_t b, index_t e) {
    auto yy = CMapArr<T>(y + b, e - b);
    MapArr<T>(dx + b, e - b) = CMapArr<T>(dy + b, e - b) * (T(1) - yy * yy);
  });
}

template <class T>
void leaky_relu(const T* x, T* y, index_t n, T alpha) {
  parallel_chunks(n, [&](index_t b, index_t e) {
    auto xx = CMapArr<T>(x + b, e - b);
    // (x < 0) is false for NaN, so NaN passes through as NumPy's maximum does.
    if (alpha == T(0))
      MapArr<T>(y + b, e - b) = (xx < T(0)).select(T(0), xx);
    else
      MapArr<T>(y + b, e - b) = (xx < T(0)).select(xx * alpha, xx);
  });
}

template <class T>
void leaky_relu_backward(const T* dy, const T* x, T* dx, index_t n, T alpha) {
  parallel_chunks(n, [&](index_t b, index_t e) {
    auto xx = CMapArr<T>(x + b, e - b);
    auto g = CMapArr<T>(dy + b, e - b);
    MapArr<T>(dx + b, e - b) = (xx > T(0)).select(g, g * alpha);
  });
}

// ---------------------------------------------------------------------------------------
// softmax / log_softmax

template <class T>
static void softmax_row(const T* x, T* y, index_t K, bool log) {
  auto xx = CMapArr<T>(x, K);
  auto yy = MapArr<T>(y, K);
  const T m = xx.maxCoeff();
  if (log) {
    const T lse = m + std::log((xx - m).exp().sum());
    yy = xx - lse;
  } else {
    yy = (xx - m).exp();
    yy *= T(1) / yy.sum();
  }
}

template <class T>
static void softmax_block(const T* x, T* y, index_t K, index_t inner, bool log) {
  // One (K, inner) block, reduced over rows; columns are independent.
  CMapMat<T> xx(x, K, inner);
  MapMat<T> yy(y, K, inner);
  const RowVec<T> m = xx.colwise().maxCoeff();
  yy = (xx.rowwise() - m).array().exp().matrix();
  const RowVec<T> s = yy.colwise().sum();
  if (log) {
    const RowVec<T> lse = m.array() + s.array().log();
    yy = xx.rowwise() - lse;
  } else {
    yy.array().rowwise() *= s.array().inverse();
  }
}

template <class T>
void softmax(const T* x, T* y, index_t outer, index_t K, index_t inner, bool log) {
  if (K == 0 || outer == 0 || inner == 0) return;
  const index_t work = outer * K * inner;
  if (inner == 1) {
    parallel_rows(outer, work, [&](index_t r) { softmax_row(x + r * K, y + r * K, K, log); });
  } else {
    parallel_rows(outer, work, [&](index_t o) {
      softmax_block(x + o * K * inner, y + o * K * inner, K, inner, log);
    });
  }
}

template <class T>
void softmax_backward(const T* dy, const T* y, T* dx, index_t outer, index_t K, index_t inner, bool log) {
  if (K == 0 || outer == 0 || inner == 0) return;
  const index_t work = outer * K * inner;
  if (inner == 1) {
    parallel_rows(outer, work, [&](index_t r) {
      auto g = CMapArr<T>(dy + r * K, K);
      auto yy = CMapArr<T>(y + r * K, K);
      auto out = MapArr<T>(dx + r * K, K);
      if (log)
        out = g - yy.exp() * g.sum();
      else
        out = yy * (g - (g * yy).sum());
    });
  } else {
    parallel_rows(outer, work, [&](index_t o) {
      const index_t off = o * K * inner;
      CMapMat<T> g(dy + off, K, inner), yy(y + off, K, inner);
      MapMat<T> out(dx + off, K, inner);
      if (log) {
        const RowVec<T> s = g.colwise().sum();
        out = g - (yy.array().exp().rowwise() * s.array()).matrix();
      } else {
        const RowVec<T> s = g.cwiseProduct(yy).colwise().sum();
        out = (yy.array() * (g.rowwise() - s).array()).matrix();
      }
    });
  }
}

#define NNKERN_INSTANTIATE(T)                                                              \
  template void sigmoid<T>(const T*, T*, index_t);                                        \
  template void sigmoid_backward<T>(const T*, const T*, T*, index_t);                     \
  template void tanh_forward<T>(const T*, T*, index_t);                                   \
  template void tanh_backward<T>(const T*, const T*, T*, index_t);                        \
  template void leaky_relu<T>(const T*, T*, index_t, T);                                  \
  template void leaky_relu_backward<T>(const T*, const T*, T*, index_t, T);               \
  template void softmax<T>(const T*, T*, index_t, index_t, index_t, bool);                \
  template void softmax_backward<T>(const T*, const T*, T*, index_t, index_t, index_t, bool);
NNKERN_INSTANTIATE(float)
NNKERN_INSTANTIATE(double)
#undef NNKERN_INSTANTIATE

}  // namespace nnkern
