// Binding helpers: check an array's dtype, layout and size, then hand out its pointer.
// The Python wrappers in nnkern.ops already validate with friendlier messages and make
// inputs contiguous; these checks are the last line that keeps a direct call into _core
// from reading out of bounds. They never convert or copy.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <initializer_list>
#include <string>

#include "kernels/common.hpp"

namespace nnkern::bind {

namespace py = pybind11;

template <class T>
inline bool has_dtype(const py::array& a) {
  return a.dtype().is(py::dtype::of<T>());
}

template <class T>
inline void check(const py::array& a, const char* name, index_t size) {
  if (!has_dtype<T>(a))
    throw py::type_error(std::string(name) + ": expected dtype " +
                         std::string(py::str(py::dtype::of<T>())) + ", got " +
                         std::string(py::str(a.dtype())));
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(name) + ": must be C-contiguous");
  if (a.size() != size)
    throw py::value_error(std::string(name) + ": expected " + std::to_string(size) +
                          " elements, got " + std::to_string(a.size()));
}

template <class T>
inline const T* in(const py::array& a, const char* name, index_t size) {
  check<T>(a, name, size);
  return static_cast<const T*>(a.data());
}

template <class T>
inline T* out(py::array& a, const char* name, index_t size) {
  check<T>(a, name, size);
  if (!a.writeable()) throw py::value_error(std::string(name) + ": array is read-only");
  return static_cast<T*>(a.mutable_data());
}

// An integer array of n elements (dtype I) whose values all lie in [0, bound); bound < 0
// skips the range check. Out-of-range indices would make a kernel read out of bounds.
template <class I>
inline const I* indices(const py::array& a, const char* name, index_t n, index_t bound) {
  const I* p = in<I>(a, name, n);
  if (bound >= 0)
    for (index_t i = 0; i < n; ++i)
      if (index_t(p[i]) < 0 || index_t(p[i]) >= bound)
        throw py::value_error(std::string(name) + ": index " + std::to_string(index_t(p[i])) +
                              " out of range [0, " + std::to_string(bound) + ")");
  return p;
}

// The pointer of an optional input: nullptr for None, else a checked buffer.
template <class T>
inline const T* optional_in(const py::object& o, const char* name, index_t size) {
  if (o.is_none()) return nullptr;
  if (!py::isinstance<py::array>(o))
    throw py::type_error(std::string(name) + ": expected a numpy.ndarray or None");
  return in<T>(py::reinterpret_borrow<py::array>(o), name, size);
}

// The pointer of an optional output: nullptr for None, else a checked, writeable buffer.
template <class T>
inline T* optional_out(const py::object& o, const char* name, index_t size) {
  if (o.is_none()) return nullptr;
  if (!py::isinstance<py::array>(o))
    throw py::type_error(std::string(name) + ": expected a numpy.ndarray or None");
  auto a = py::reinterpret_borrow<py::array>(o);
  return out<T>(a, name, size);
}

// The product of array dimensions passed in from Python, rejecting negative values and
// products that overflow int64 (which would otherwise wrap and pass the size checks).
inline index_t dims(const char* fn, std::initializer_list<index_t> ds) {
  index_t n = 1;
  for (index_t d : ds) {
    if (d < 0) throw py::value_error(std::string(fn) + ": negative dimension " + std::to_string(d));
    if (__builtin_mul_overflow(n, d, &n))
      throw py::value_error(std::string(fn) + ": dimensions overflow int64");
  }
  return n;
}

// Call f(T{}) with T the scalar type of `a` (float32 or float64).
template <class F>
inline auto dispatch(const py::array& a, const char* name, F&& f) {
  if (has_dtype<float>(a)) return f(float{});
  if (has_dtype<double>(a)) return f(double{});
  throw py::type_error(std::string(name) + ": expected float32 or float64, got " +
                       std::string(py::str(a.dtype())));
}

}  // namespace nnkern::bind
