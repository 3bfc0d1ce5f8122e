// Batch normalization. x arrives as (N, C, L) sizes (L = 1 for (N, C) input); optional
// gamma, beta and running statistics are None.
#include "bindings/util.hpp"
#include "kernels/norm.hpp"

#include <string>

namespace nnkern::bind {

void bind_norm(py::module_& m) {
  m.def(
      "batchnorm_forward",
      [](const py::array& x, const py::object& gamma, const py::object& beta, const py::object& rm,
         const py::object& rv, py::array& y, py::array& save_mean, py::array& save_invstd, index_t N,
         index_t C, index_t L, bool batch_stats, bool update_running, double momentum, double eps) {
        const index_t n = dims("batchnorm_forward", {N, C, L});
        dispatch(x, "x", [&](auto tag) {
          using T = decltype(tag);
          const T* px = in<T>(x, "x", n);
          const T* pg = optional_in<T>(gamma, "gamma", C);
          const T* pb = optional_in<T>(beta, "beta", C);
          T* pm = optional_out<T>(rm, "running_mean", C);
          T* pv = optional_out<T>(rv, "running_var", C);
          if ((!batch_stats || update_running) && (!pm || !pv))
            throw py::value_error("running_mean, running_var: required without batch statistics or to update them");
          if (update_running && N * L < 2)
            throw py::value_error("x: more than one value per channel is needed to update the running variance");
          T* py_ = out<T>(y, "y", n);
          T* psm = out<T>(save_mean, "save_mean", C);
          T* psi = out<T>(save_invstd, "save_invstd", C);
          py::gil_scoped_release nogil;
          batchnorm_forward<T>(px, pg, pb, pm, pv, py_, psm, psi, N, C, L, batch_stats, update_running,
                               momentum, eps);
        });
      },
      py::arg("x"), py::arg("gamma"), py::arg("beta"), py::arg("running_mean"), py::arg("running_var"),
      py::arg("y"), py::arg("save_mean"), py::arg("save_invstd"), py::arg("N"), py::arg("C"), py::arg("L"),
      py::arg("batch_stats"), py::arg("update_running"), py::arg("momentum"), py::arg("eps"));
  m.def(
      "batchnorm_backward",
      [](const py::array& dy, const py::array& x, const py::array& mean, const py::array& invstd,
         const py::object& gamma, py::array& dx, py::array& dgamma, py::array& dbeta, index_t N, index_t C,
         index_t L, bool batch_stats) {
        const index_t n = dims("batchnorm_backward", {N, C, L});
        dispatch(dy, "dy", [&](auto tag) {
          using T = decltype(tag);
          const T* pdy = in<T>(dy, "dy", n);
          const T* px = in<T>(x, "x", n);
          const T* pm = in<T>(mean, "mean", C);
          const T* pi = in<T>(invstd, "invstd", C);
          const T* pg = optional_in<T>(gamma, "gamma", C);
          T* pdx = out<T>(dx, "dx", n);
          T* pdg = out<T>(dgamma, "dgamma", C);
          T* pdb = out<T>(dbeta, "dbeta", C);
          py::gil_scoped_release nogil;
          batchnorm_backward<T>(pdy, px, pm, pi, pg, pdx, pdg, pdb, N, C, L, batch_stats);
        });
      },
      py::arg("dy"), py::arg("x"), py::arg("mean"), py::arg("invstd"), py::arg("gamma"), py::arg("dx"),
      py::arg("dgamma"), py::arg("dbeta"), py::arg("N"), py::arg("C"), py::arg("L"), py::arg("batch_stats"));
}

}  // namespace nnkern::bind
