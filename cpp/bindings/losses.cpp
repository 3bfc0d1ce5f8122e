// Loss kernels. Forward bindings take `loss` = an output array (reduction "none") or None
// (return the sum; the Python wrapper divides for "mean"). Invalid values the kernels report
// (a probability outside [0, 1], a class label out of range) raise ValueError worded exactly
// as the NumPy twin words it, so nnkern.ops and nnkern.reference fail alike.
#include "bindings/util.hpp"
#include "kernels/losses.hpp"

#include <cstdint>
#include <string>

namespace nnkern::bind {

namespace {

void check_dims(index_t N, index_t C) { dims("N, C", {N, C}); }

template <class T>
[[noreturn]] void raise_unit_interval(const char* name, const py::array& a, index_t i) {
  const double value = static_cast<const T*>(a.data())[i];
  throw py::value_error(std::string(
      py::str("{}: expected values in [0, 1], got {} at flat index {}").format(name, value, i)));
}

template <class T>
void raise_bce_flags(const LossResult& r, const py::array& pred, const py::array& target) {
  if (r.bad_pred >= 0) raise_unit_interval<T>("pred", pred, r.bad_pred);
  if (r.bad_target >= 0) raise_unit_interval<T>("target", target, r.bad_target);
}

void raise_label_flag(const LossResult& r, const py::array& labels, index_t C, index_t ignore_index) {
  if (r.bad_target < 0) return;
  const index_t y = static_cast<const index_t*>(labels.data())[r.bad_target];
  throw py::value_error(std::string(
      py::str("target: class label {} at index {} is out of range [0, {}) and is not "
              "ignore_index ({})")
          .format(y, r.bad_target, C, ignore_index)));
}

// pred, target (n,) -> losses into `loss` (n,) or their sum. k(pred, target, loss, n, param).
template <class K>
void def_forward(py::module_& m, const char* name, K k) {
  m.def(
      name,
      [k](const py::array& pred, const py::array& target, const py::object& loss, double param) {
        return dispatch(pred, "pred", [&](auto tag) {
          using T = decltype(tag);
          const index_t n = pred.size();
          const T* pp = in<T>(pred, "pred", n);
          const T* pt = in<T>(target, "target", n);
          T* pl = optional_out<T>(loss, "loss", n);
          LossResult r;
          {
            py::gil_scoped_release nogil;
            r = k(pp, pt, pl, n, T(param));
          }
          raise_bce_flags<T>(r, pred, target);
          return r.sum;
        });
      },
      py::arg("pred"), py::arg("target"), py::arg("loss"), py::arg("param") = 0.0);
}

// pred, target (n,) -> dpred (n,). k(pred, target, dpred, n, scale, param) returns LossResult.
template <class K>
void def_backward(py::module_& m, const char* name, K k) {
  m.def(
      name,
      [k](const py::array& pred, const py::array& target, py::array& dpred, double scale,
          double param) {
        dispatch(pred, "pred", [&](auto tag) {
          using T = decltype(tag);
          const index_t n = pred.size();
          const T* pp = in<T>(pred, "pred", n);
          const T* pt = in<T>(target, "target", n);
          T* pd = out<T>(dpred, "dpred", n);
          LossResult r;
          {
            py::gil_scoped_release nogil;
            r = k(pp, pt, pd, n, T(scale), T(param));
          }
          raise_bce_flags<T>(r, pred, target);
        });
      },
      py::arg("pred"), py::arg("target"), py::arg("dpred"), py::arg("scale"),
      py::arg("param") = 0.0);
}

}  // namespace

void bind_losses(py::module_& m) {
  def_forward(m, "mse_loss", [](auto p, auto t, auto l, index_t n, auto) { return mse_loss(p, t, l, n); });
  def_forward(m, "mae_loss", [](auto p, auto t, auto l, index_t n, auto) { return mae_loss(p, t, l, n); });
  def_forward(m, "huber_loss",
              [](auto p, auto t, auto l, index_t n, auto delta) { return huber_loss(p, t, l, n, delta); });
  def_forward(m, "log_cosh_loss",
              [](auto p, auto t, auto l, index_t n, auto) { return log_cosh_loss(p, t, l, n); });
  def_forward(m, "binary_cross_entropy",
              [](auto p, auto t, auto l, index_t n, auto) { return binary_cross_entropy(p, t, l, n); });

  def_backward(m, "mse_loss_backward", [](auto p, auto t, auto g, index_t n, auto s, auto) {
    mse_loss_backward(p, t, g, n, s);
    return LossResult{};  // nothing to report
  });
  def_backward(m, "mae_loss_backward", [](auto p, auto t, auto g, index_t n, auto s, auto) {
    mae_loss_backward(p, t, g, n, s);
    return LossResult{};  // nothing to report
  });
  def_backward(m, "huber_loss_backward", [](auto p, auto t, auto g, index_t n, auto s, auto delta) {
    huber_loss_backward(p, t, g, n, s, delta);
    return LossResult{};  // nothing to report
  });
  def_backward(m, "log_cosh_loss_backward", [](auto p, auto t, auto g, index_t n, auto s, auto) {
    log_cosh_loss_backward(p, t, g, n, s);
    return LossResult{};  // nothing to report
  });
  def_backward(m, "binary_cross_entropy_backward", [](auto p, auto t, auto g, index_t n, auto s, auto) {
    return binary_cross_entropy_backward(p, t, g, n, s);
  });

  // x, target (n,) viewed as (n / C, C); pos_weight (C,) or None
  m.def(
      "binary_cross_entropy_with_logits",
      [](const py::array& x, const py::array& target, const py::object& pos_weight,
         const py::object& loss, index_t C) {
        return dispatch(x, "pred", [&](auto tag) {
          using T = decltype(tag);
          const index_t n = x.size();
          if (C < 1 || n % C != 0) throw py::value_error("C: must be >= 1 and divide pred's size");
          const T* px = in<T>(x, "pred", n);
          const T* pt = in<T>(target, "target", n);
          const T* pw = optional_in<T>(pos_weight, "pos_weight", C);
          T* pl = optional_out<T>(loss, "loss", n);
          py::gil_scoped_release nogil;
          return binary_cross_entropy_with_logits<T>(px, pt, pw, pl, n, C).sum;
        });
      },
      py::arg("pred"), py::arg("target"), py::arg("pos_weight"), py::arg("loss"), py::arg("C"));
  m.def(
      "binary_cross_entropy_with_logits_backward",
      [](const py::array& x, const py::array& target, const py::object& pos_weight, py::array& dx,
         index_t C, double scale) {
        dispatch(x, "pred", [&](auto tag) {
          using T = decltype(tag);
          const index_t n = x.size();
          if (C < 1 || n % C != 0) throw py::value_error("C: must be >= 1 and divide pred's size");
          const T* px = in<T>(x, "pred", n);
          const T* pt = in<T>(target, "target", n);
          const T* pw = optional_in<T>(pos_weight, "pos_weight", C);
          T* pd = out<T>(dx, "dpred", n);
          py::gil_scoped_release nogil;
          binary_cross_entropy_with_logits_backward<T>(px, pt, pw, pd, n, C, T(scale));
        });
      },
      py::arg("pred"), py::arg("target"), py::arg("pos_weight"), py::arg("dpred"), py::arg("C"),
      py::arg("scale"));

  // logits (N, C), labels (N,) int64 -> (sum over non-ignored rows, their count)
  m.def(
      "cross_entropy",
      [](const py::array& logits, const py::array& labels, const py::object& loss, index_t N,
         index_t C, index_t ignore_index, double label_smoothing) {
        check_dims(N, C);
        return dispatch(logits, "logits", [&](auto tag) {
          using T = decltype(tag);
          const T* px = in<T>(logits, "logits", N * C);
          const index_t* py_ = in<index_t>(labels, "target", N);
          T* pl = optional_out<T>(loss, "loss", N);
          LossResult r;
          {
            py::gil_scoped_release nogil;
            r = cross_entropy<T>(px, py_, pl, N, C, ignore_index, T(label_smoothing));
          }
          raise_label_flag(r, labels, C, ignore_index);
          return py::make_tuple(r.sum, r.count);
        });
      },
      py::arg("logits"), py::arg("target"), py::arg("loss"), py::arg("N"), py::arg("C"),
      py::arg("ignore_index"), py::arg("label_smoothing"));
  m.def(
      "cross_entropy_backward",
      [](const py::array& logits, const py::array& labels, py::array& dlogits, index_t N, index_t C,
         index_t ignore_index, double label_smoothing, bool mean) {
        check_dims(N, C);
        dispatch(logits, "logits", [&](auto tag) {
          using T = decltype(tag);
          const T* px = in<T>(logits, "logits", N * C);
          const index_t* py_ = in<index_t>(labels, "target", N);
          T* pd = out<T>(dlogits, "dlogits", N * C);
          LossResult r;
          {
            py::gil_scoped_release nogil;
            r = cross_entropy_backward<T>(px, py_, pd, N, C, ignore_index, T(label_smoothing), mean);
          }
          raise_label_flag(r, labels, C, ignore_index);
        });
      },
      py::arg("logits"), py::arg("target"), py::arg("dlogits"), py::arg("N"), py::arg("C"),
      py::arg("ignore_index"), py::arg("label_smoothing"), py::arg("mean"));

  // logits, target probabilities (N, C) -> sum of the row losses
  m.def(
      "cross_entropy_probs",
      [](const py::array& logits, const py::array& target, const py::object& loss, index_t N,
         index_t C, double label_smoothing) {
        check_dims(N, C);
        return dispatch(logits, "logits", [&](auto tag) {
          using T = decltype(tag);
          const T* px = in<T>(logits, "logits", N * C);
          const T* pt = in<T>(target, "target", N * C);
          T* pl = optional_out<T>(loss, "loss", N);
          py::gil_scoped_release nogil;
          return cross_entropy_probs<T>(px, pt, pl, N, C, T(label_smoothing)).sum;
        });
      },
      py::arg("logits"), py::arg("target"), py::arg("loss"), py::arg("N"), py::arg("C"),
      py::arg("label_smoothing"));
  m.def(
      "cross_entropy_probs_backward",
      [](const py::array& logits, const py::array& target, py::array& dlogits, index_t N, index_t C,
         double label_smoothing, double scale) {
        check_dims(N, C);
        dispatch(logits, "logits", [&](auto tag) {
          using T = decltype(tag);
          const T* px = in<T>(logits, "logits", N * C);
          const T* pt = in<T>(target, "target", N * C);
          T* pd = out<T>(dlogits, "dlogits", N * C);
          py::gil_scoped_release nogil;
          cross_entropy_probs_backward<T>(px, pt, pd, N, C, T(label_smoothing), T(scale));
        });
      },
      py::arg("logits"), py::arg("target"), py::arg("dlogits"), py::arg("N"), py::arg("C"),
      py::arg("label_smoothing"), py::arg("scale"));
}

}  // namespace nnkern::bind
