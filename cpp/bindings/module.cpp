// nnkern._core: the compiled kernels. Users call nnkern.ops, which validates arguments
// and calls in here; this module only checks buffers, releases the GIL and calls kernels.
#include <Eigen/Core>

#include "bindings/util.hpp"

namespace nnkern::bind {
void bind_activations(py::module_& m);
void bind_losses(py::module_& m);
void bind_dense(py::module_& m);
void bind_recurrent(py::module_& m);
void bind_attention(py::module_& m);
void bind_word2vec(py::module_& m);
void bind_glove(py::module_& m);
void bind_corpus(py::module_& m);
void bind_optim(py::module_& m);
void bind_norm(py::module_& m);
void bind_dropout(py::module_& m);
void bind_buffers(py::module_& m);
}  // namespace nnkern::bind

PYBIND11_MODULE(_core, m) {
  namespace py = pybind11;
  using namespace nnkern::bind;
  m.doc() = "nnkern compiled kernels (internal: use nnkern.ops)";

  m.def("set_num_threads", [](int n) {
    if (n < 1) throw py::value_error("n: number of threads must be >= 1, got " + std::to_string(n));
    nnkern::set_num_threads(n);
  });
  m.def("get_num_threads", &nnkern::get_num_threads);
  m.def("build_info", []() {
    py::dict d;
    d["version"] = NNKERN_VERSION;
    d["build_type"] = NNKERN_BUILD_TYPE;
    d["native"] = bool(NNKERN_NATIVE_BUILD);
    d["cxx_flags"] = NNKERN_CXX_FLAGS;
    d["compiler"] = NNKERN_COMPILER;
    d["eigen"] = std::to_string(EIGEN_WORLD_VERSION) + "." + std::to_string(EIGEN_MAJOR_VERSION) +
                 "." + std::to_string(EIGEN_MINOR_VERSION);
    d["simd"] = Eigen::SimdInstructionSetsInUse();
    d["openmp"] = _OPENMP;
    return d;
  });

  bind_activations(m);
  bind_losses(m);
  bind_dense(m);
  bind_recurrent(m);
  bind_attention(m);
  bind_word2vec(m);
  bind_glove(m);
  bind_corpus(m);
  bind_optim(m);
  bind_norm(m);
  bind_dropout(m);
  bind_buffers(m);
}
