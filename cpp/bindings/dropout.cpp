// Dropout. The mask is a numpy bool array (one byte per element).
#include "bindings/util.hpp"
#include "kernels/dropout.hpp"

#include <cstdint>
#include <string>

namespace nnkern::bind {

namespace {

std::uint8_t* bool_buffer(py::array& a, const char* name, index_t n, bool write) {
  if (!a.dtype().is(py::dtype::of<bool>()))
    throw py::type_error(std::string(name) + ": expected dtype bool, got " + std::string(py::str(a.dtype())));
  if (!(a.flags() & py::array::c_style)) throw py::value_error(std::string(name) + ": must be C-contiguous");
  if (a.size() != n)
    throw py::value_error(std::string(name) + ": expected " + std::to_string(n) + " elements, got " +
                          std::to_string(a.size()));
  if (write && !a.writeable()) throw py::value_error(std::string(name) + ": array is read-only");
  return static_cast<std::uint8_t*>(write ? a.mutable_data() : const_cast<void*>(a.data()));
}

void check_p(double p) {
  if (!(p >= 0 && p < 1)) throw py::value_error("p: expected a probability in [0, 1), got " + std::to_string(p));
}

}  // namespace

void bind_dropout(py::module_& m) {
  m.def(
      "dropout",
      [](const py::array& x, py::array& y, py::array& mask, double p, std::uint64_t seed) {
        check_p(p);
        dispatch(x, "x", [&](auto tag) {
          using T = decltype(tag);
          const index_t n = x.size();
          const T* px = in<T>(x, "x", n);
          T* py_ = out<T>(y, "y", n);
          std::uint8_t* pm = bool_buffer(mask, "mask", n, true);
          py::gil_scoped_release nogil;
          dropout_forward<T>(px, py_, pm, n, p, seed);
        });
      },
      py::arg("x"), py::arg("y"), py::arg("mask"), py::arg("p"), py::arg("seed"));
  m.def(
      "dropout_backward",
      [](const py::array& dy, py::array& mask, py::array& dx, double p) {
        check_p(p);
        dispatch(dy, "dy", [&](auto tag) {
          using T = decltype(tag);
          const index_t n = dy.size();
          const T* pg = in<T>(dy, "dy", n);
          const std::uint8_t* pm = bool_buffer(mask, "mask", n, false);
          T* pd = out<T>(dx, "dx", n);
          py::gil_scoped_release nogil;
          dropout_backward<T>(pg, pm, pd, n, p);
        });
      },
      py::arg("dy"), py::arg("mask"), py::arg("dx"), py::arg("p"));
}

}  // namespace nnkern::bind
