// Optimizer updates, norms and clipping. Every update takes lists of arrays (one entry per
// parameter tensor; nnkern.ops passes one-element lists, nnkern.optim passes its flat buffers
// or one entry per tensor) and runs one parallel pass over all of them. Unused state lists
// are None. The binding checks every buffer before the kernel touches any of them, so a bad
// entry raises with nothing modified.
#include "bindings/util.hpp"
#include "kernels/optim.hpp"

#include <string>
#include <vector>

namespace nnkern::bind {

namespace {

std::string item_name(const char* name, size_t k) { return std::string(name) + "[" + std::to_string(k) + "]"; }

py::array item(const py::list& l, size_t k, const char* name) {
  py::object o = l[k];
  if (!py::isinstance<py::array>(o)) throw py::type_error(item_name(name, k) + ": expected a numpy.ndarray");
  return py::reinterpret_borrow<py::array>(o);
}

// The segments of an update: params[k] and grads[k] (and each given state list's entry k)
// must be arrays of T with params[k]'s size; state lists given as None stay nullptr.
template <class T>
std::vector<Segment<T>> segments(const py::list& params, const py::list& grads,
                                 std::initializer_list<std::pair<const py::object*, const char*>> states) {
  const size_t n = params.size();
  if (grads.size() != n)
    throw py::value_error("grads: expected " + std::to_string(n) + " arrays, got " + std::to_string(grads.size()));
  std::vector<py::list> lists;  // an empty handle for a state list given as None
  std::vector<const char*> names;
  for (const auto& [o, name] : states) {
    if (o->is_none()) {
      lists.emplace_back(py::reinterpret_steal<py::list>(py::handle()));
    } else {
      if (!py::isinstance<py::list>(*o)) throw py::type_error(std::string(name) + ": expected a list or None");
      auto l = py::reinterpret_borrow<py::list>(*o);
      if (l.size() != n)
        throw py::value_error(std::string(name) + ": expected " + std::to_string(n) + " arrays, got " +
                              std::to_string(l.size()));
      lists.push_back(l);
    }
    names.push_back(name);
  }
  std::vector<Segment<T>> segs(n);
  for (size_t k = 0; k < n; ++k) {
    py::array p = item(params, k, "params");
    const index_t size = p.size();
    const std::string pn = item_name("params", k), gn = item_name("grads", k);
    Segment<T>& s = segs[k];
    s.n = size;
    s.p = out<T>(p, pn.c_str(), size);
    s.g = in<T>(item(grads, k, "grads"), gn.c_str(), size);
    T** slots[3] = {&s.s0, &s.s1, &s.s2};
    for (size_t j = 0; j < lists.size(); ++j) {
      if (!lists[j]) continue;
      py::array a = item(lists[j], k, names[j]);
      const std::string an = item_name(names[j], k);
      *slots[j] = out<T>(a, an.c_str(), size);
    }
  }
  return segs;
}

template <class F>
void dispatch_list(const py::list& params, F&& f) {
  if (params.size() == 0) return;
  dispatch(item(params, 0, "params"), "params[0]", f);
}

// The pointers and sizes of a list of arrays of T (read-only or writeable).
template <class T, bool Write>
auto pointers(const py::list& xs, const char* name) {
  using P = std::conditional_t<Write, T*, const T*>;
  std::vector<P> ps;
  std::vector<index_t> ns;
  for (size_t k = 0; k < xs.size(); ++k) {
    py::array a = item(xs, k, name);
    const std::string an = item_name(name, k);
    if constexpr (Write)
      ps.push_back(out<T>(a, an.c_str(), a.size()));
    else
      ps.push_back(in<T>(a, an.c_str(), a.size()));
    ns.push_back(a.size());
  }
  return std::make_pair(ps, ns);
}

}  // namespace

void bind_optim(py::module_& m) {
  m.def(
      "sgd_step",
      [](const py::list& params, const py::list& grads, const py::object& bufs, double lr,
         double momentum, double dampening, bool nesterov, double weight_decay, bool first_step,
         double grad_scale) {
        dispatch_list(params, [&](auto tag) {
          using T = decltype(tag);
          if (momentum != 0 && bufs.is_none()) throw py::value_error("velocity: required when momentum != 0");
          auto segs = segments<T>(params, grads, {{&bufs, "velocity"}});
          SgdHyper h{lr, momentum, dampening, weight_decay, nesterov, first_step, grad_scale};
          py::gil_scoped_release nogil;
          sgd_update<T>(segs, h);
        });
      },
      py::arg("params"), py::arg("grads"), py::arg("velocity"), py::arg("lr"), py::arg("momentum"),
      py::arg("dampening"), py::arg("nesterov"), py::arg("weight_decay"), py::arg("first_step"),
      py::arg("grad_scale"));

  m.def(
      "rprop_step",
      [](const py::list& params, const py::list& grads, const py::object& prev, const py::object& step,
         double eta_minus, double eta_plus, double step_min, double step_max, double grad_scale) {
        dispatch_list(params, [&](auto tag) {
          using T = decltype(tag);
          if (prev.is_none() || step.is_none()) throw py::value_error("prev_grad, step_size: required");
          auto segs = segments<T>(params, grads, {{&prev, "prev_grad"}, {&step, "step_size"}});
          RpropHyper h{eta_minus, eta_plus, step_min, step_max, grad_scale};
          py::gil_scoped_release nogil;
          rprop_update<T>(segs, h);
        });
      },
      py::arg("params"), py::arg("grads"), py::arg("prev_grad"), py::arg("step_size"), py::arg("eta_minus"),
      py::arg("eta_plus"), py::arg("step_min"), py::arg("step_max"), py::arg("grad_scale"));

  m.def(
      "rmsprop_step",
      [](const py::list& params, const py::list& grads, const py::object& sq, const py::object& buf,
         const py::object& gavg, double lr, double alpha, double eps, double weight_decay,
         double momentum, bool centered, double grad_scale) {
        dispatch_list(params, [&](auto tag) {
          using T = decltype(tag);
          if (sq.is_none()) throw py::value_error("square_avg: required");
          if (momentum > 0 && buf.is_none()) throw py::value_error("momentum_buffer: required when momentum > 0");
          if (centered && gavg.is_none()) throw py::value_error("grad_avg: required when centered");
          auto segs = segments<T>(params, grads,
                                  {{&sq, "square_avg"}, {&buf, "momentum_buffer"}, {&gavg, "grad_avg"}});
          RmspropHyper h{lr, alpha, eps, weight_decay, momentum, centered, grad_scale};
          py::gil_scoped_release nogil;
          rmsprop_update<T>(segs, h);
        });
      },
      py::arg("params"), py::arg("grads"), py::arg("square_avg"), py::arg("momentum_buffer"),
      py::arg("grad_avg"), py::arg("lr"), py::arg("alpha"), py::arg("eps"), py::arg("weight_decay"),
      py::arg("momentum"), py::arg("centered"), py::arg("grad_scale"));

  m.def(
      "adam_step",
      [](const py::list& params, const py::list& grads, const py::object& m1, const py::object& m2,
         const py::object& vmax, double lr, double beta1, double beta2, double eps,
         double weight_decay, bool decoupled, bool amsgrad, double step_size, double bc2_sqrt,
         double grad_scale) {
        dispatch_list(params, [&](auto tag) {
          using T = decltype(tag);
          if (m1.is_none() || m2.is_none()) throw py::value_error("exp_avg, exp_avg_sq: required");
          if (amsgrad && vmax.is_none()) throw py::value_error("max_exp_avg_sq: required when amsgrad");
          auto segs = segments<T>(params, grads,
                                  {{&m1, "exp_avg"}, {&m2, "exp_avg_sq"}, {&vmax, "max_exp_avg_sq"}});
          AdamHyper h{lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad, step_size, bc2_sqrt, grad_scale};
          py::gil_scoped_release nogil;
          adam_update<T>(segs, h);
        });
      },
      py::arg("params"), py::arg("grads"), py::arg("exp_avg"), py::arg("exp_avg_sq"),
      py::arg("max_exp_avg_sq"), py::arg("lr"), py::arg("beta1"), py::arg("beta2"), py::arg("eps"),
      py::arg("weight_decay"), py::arg("decoupled"), py::arg("amsgrad"), py::arg("step_size"),
      py::arg("bc2_sqrt"), py::arg("grad_scale"));

  // arrays: list of float arrays of one dtype -> the p-norm of all their elements together
  m.def(
      "total_norm",
      [](const py::list& xs, double p) {
        double r = 0;
        dispatch_list(xs, [&](auto tag) {
          using T = decltype(tag);
          auto [ps, ns] = pointers<T, false>(xs, "grads");
          py::gil_scoped_release nogil;
          r = total_norm<T>(ps, ns, p);
        });
        return r;
      },
      py::arg("arrays"), py::arg("norm_type"));
  // -> (array index, flat index) of the first NaN or inf, or None
  m.def(
      "first_nonfinite",
      [](const py::list& xs) -> py::object {
        FlatIndex r;
        dispatch_list(xs, [&](auto tag) {
          using T = decltype(tag);
          auto [ps, ns] = pointers<T, false>(xs, "arrays");
          py::gil_scoped_release nogil;
          r = first_nonfinite<T>(ps, ns);
        });
        if (r.array < 0) return py::none();
        return py::make_tuple(r.array, r.index);
      },
      py::arg("arrays"));
  // in place on a list of arrays: x *= scale, and x = clamp(x, -clip_value, clip_value)
  auto def_map = [&m](const char* name, const char* arg, auto kernel) {
    m.def(
        name,
        [kernel](const py::list& xs, double a) {
          dispatch_list(xs, [&](auto tag) {
            using T = decltype(tag);
            auto [ps, ns] = pointers<T, true>(xs, "grads");
            py::gil_scoped_release nogil;
            kernel(ps, ns, T(a));
          });
        },
        py::arg("arrays"), py::arg(arg));
  };
  def_map("scale_arrays", "scale", [](const auto& ps, const auto& ns, auto a) { scale_arrays(ps, ns, a); });
  def_map("clip_arrays", "clip_value", [](const auto& ps, const auto& ns, auto a) { clip_arrays(ps, ns, a); });
  // W viewed as (outer, K, inner)
  m.def(
      "max_norm_constraint",
      [](py::array& W, index_t outer, index_t K, index_t inner, double max_norm) {
        const index_t n = dims("max_norm_constraint", {outer, K, inner});
        dispatch(W, "W", [&](auto tag) {
          using T = decltype(tag);
          T* pw = out<T>(W, "W", n);
          py::gil_scoped_release nogil;
          max_norm_constraint<T>(pw, outer, K, inner, max_norm);
        });
      },
      py::arg("W"), py::arg("outer"), py::arg("K"), py::arg("inner"), py::arg("max_norm"));
}

}  // namespace nnkern::bind
