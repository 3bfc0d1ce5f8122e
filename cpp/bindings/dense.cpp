#include "bindings/util.hpp"
#include "kernels/dense.hpp"

namespace nnkern::bind {

void bind_dense(py::module_& m) {
  // x (N, I), W (O, I), b (O,) or None -> y (N, O)
  m.def("dense", [](const py::array& x, const py::array& W, const py::object& b, py::array& y,
                    index_t N, index_t I, index_t O) {
    const index_t NI = dims("dense", {N, I}), OI = dims("dense", {O, I}), NO = dims("dense", {N, O});
    dispatch(x, "x", [&](auto t) {
      using T = decltype(t);
      const T* px = in<T>(x, "x", NI);
      const T* pW = in<T>(W, "W", OI);
      const T* pb = nullptr;
      if (!b.is_none()) pb = in<T>(b.cast<py::array>(), "b", O);
      T* py_ = out<T>(y, "out", NO);
      py::gil_scoped_release nogil;
      dense_forward<T>(px, pW, pb, py_, N, I, O);
    });
  }, py::arg("x"), py::arg("W"), py::arg("b"), py::arg("out"), py::arg("N"), py::arg("I"), py::arg("O"));
  // dy (N, O), x (N, I), W (O, I) -> dx (N, I), dW (O, I), db (O,)
  m.def("dense_backward", [](const py::array& dy, const py::array& x, const py::array& W,
                             py::array& dx, py::array& dW, py::array& db, index_t N, index_t I,
                             index_t O) {
    const index_t NI = dims("dense_backward", {N, I}), OI = dims("dense_backward", {O, I}),
                  NO = dims("dense_backward", {N, O});
    dispatch(dy, "dy", [&](auto t) {
      using T = decltype(t);
      const T* pg = in<T>(dy, "dy", NO);
      const T* px = in<T>(x, "x", NI);
      const T* pW = in<T>(W, "W", OI);
      T* pdx = out<T>(dx, "dx", NI);
      T* pdW = out<T>(dW, "dW", OI);
      T* pdb = out<T>(db, "db", O);
      py::gil_scoped_release nogil;
      dense_backward<T>(pg, px, pW, pdx, pdW, pdb, N, I, O);
    });
  }, py::arg("dy"), py::arg("x"), py::arg("W"), py::arg("dx"), py::arg("dW"), py::arg("db"), py::arg("N"), py::arg("I"), py::arg("O"));
  // dout (n, D), ids (n,) in [0, V), dweight (V, D) accumulated in place
  m.def("embedding_backward", [](const py::array& dout, const py::array& ids, py::array& dweight,
                                 index_t n, index_t V, index_t D) {
    const index_t nD = dims("embedding_backward", {n, D}), VD = dims("embedding_backward", {V, D});
    const std::int64_t* pi = indices<std::int64_t>(ids, "ids", n, V);
    dispatch(dweight, "dweight", [&](auto t) {
      using T = decltype(t);
      const T* pg = in<T>(dout, "dout", nD);
      T* pw = out<T>(dweight, "dweight", VD);
      py::gil_scoped_release nogil;
      embedding_backward<T>(pg, pi, n, pw, V, D);
    });
  }, py::arg("dout"), py::arg("ids"), py::arg("dweight"), py::arg("n"), py::arg("V"), py::arg("D"));
}

}  // namespace nnkern::bind
