#include "bindings/util.hpp"
#include "kernels/activations.hpp"

namespace nnkern::bind {

// y = f(x) elementwise; kernel(x, y, n) is called with T* pointers.
template <class K>
static void def_unary(py::module_& m, const char* name, K kernel) {
  m.def(name, [kernel](const py::array& x, py::array& y) {
    dispatch(x, "x", [&](auto t) {
      using T = decltype(t);
      const index_t n = x.size();
      const T* px = in<T>(x, "x", n);
      T* py_ = out<T>(y, "out", n);
      py::gil_scoped_release nogil;
      kernel(px, py_, n);
    });
  }, py::arg("x"), py::arg("out"));
}

// dx = f'(dy, y) elementwise, y the forward output.
template <class K>
static void def_unary_backward(py::module_& m, const char* name, K kernel) {
  m.def(name, [kernel](const py::array& dy, const py::array& y, py::array& dx) {
    dispatch(dy, "dy", [&](auto t) {
      using T = decltype(t);
      const index_t n = dy.size();
      const T *pg = in<T>(dy, "dy", n), *py_ = in<T>(y, "y", n);
      T* pdx = out<T>(dx, "out", n);
      py::gil_scoped_release nogil;
      kernel(pg, py_, pdx, n);
    });
  }, py::arg("dy"), py::arg("y"), py::arg("out"));
}

void bind_activations(py::module_& m) {
  def_unary(m, "sigmoid", [](const auto* x, auto* y, index_t n) { sigmoid(x, y, n); });
  def_unary(m, "tanh", [](const auto* x, auto* y, index_t n) { tanh_forward(x, y, n); });
  def_unary_backward(m, "sigmoid_backward", [](const auto* g, const auto* y, auto* dx, index_t n) {
    sigmoid_backward(g, y, dx, n);
  });
  def_unary_backward(m, "tanh_backward", [](const auto* g, const auto* y, auto* dx, index_t n) {
    tanh_backward(g, y, dx, n);
  });

  m.def("leaky_relu", [](const py::array& x, py::array& y, double alpha) {
    dispatch(x, "x", [&](auto t) {
      using T = decltype(t);
      const index_t n = x.size();
      const T* px = in<T>(x, "x", n);
      T* py_ = out<T>(y, "out", n);
      py::gil_scoped_release nogil;
      leaky_relu<T>(px, py_, n, T(alpha));
    });
  }, py::arg("x"), py::arg("out"), py::arg("alpha"));

  m.def("leaky_relu_backward",
        [](const py::array& dy, const py::array& x, py::array& dx, double alpha) {
          dispatch(dy, "dy", [&](auto t) {
            using T = decltype(t);
            const index_t n = dy.size();
            const T *pg = in<T>(dy, "dy", n), *px = in<T>(x, "x", n);
            T* pdx = out<T>(dx, "out", n);
            py::gil_scoped_release nogil;
            leaky_relu_backward<T>(pg, px, pdx, n, T(alpha));
          });
        }, py::arg("dy"), py::arg("x"), py::arg("out"), py::arg("alpha"));

  // x viewed as (outer, K, inner), reduced over K
  m.def("softmax", [](const py::array& x, py::array& y, index_t outer, index_t K, index_t inner,
                      bool log) {
    const index_t n = dims("softmax", {outer, K, inner});
    dispatch(x, "x", [&](auto t) {
      using T = decltype(t);
      const T* px = in<T>(x, "x", n);
      T* py_ = out<T>(y, "out", n);
      py::gil_scoped_release nogil;
      softmax<T>(px, py_, outer, K, inner, log);
    });
  }, py::arg("x"), py::arg("out"), py::arg("outer"), py::arg("K"), py::arg("inner"), py::arg("log"));
  m.def("softmax_backward", [](const py::array& dy, const py::array& y, py::array& dx,
                               index_t outer, index_t K, index_t inner, bool log) {
    const index_t n = dims("softmax_backward", {outer, K, inner});
    dispatch(dy, "dy", [&](auto t) {
      using T = decltype(t);
      const T *pg = in<T>(dy, "dy", n), *py_ = in<T>(y, "y", n);
      T* pdx = out<T>(dx, "out", n);
      py::gil_scoped_release nogil;
      softmax_backward<T>(pg, py_, pdx, outer, K, inner, log);
    });
  }, py::arg("dy"), py::arg("y"), py::arg("out"), py::arg("outer"), py::arg("K"), py::arg("inner"), py::arg("log"));
}

}  // namespace nnkern::bind
