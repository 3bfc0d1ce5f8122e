// GloVe bindings: the single AdaGrad step (nnkern.ops.glove_update), co-occurrence counting
// (one accumulator slot per Python worker thread, GIL released) and one training epoch.
#include <memory>

#include "bindings/util.hpp"
#include "kernels/glove.hpp"

namespace nnkern::bind {

namespace {

class GloveCooccur {
 public:
  GloveCooccur(index_t V, int window, bool symmetric, int slots, index_t dense_words,
               std::size_t buffer_pairs)
      : V_(V), slots_(slots) {
    if (V < 1 || V >= (index_t(1) << 31)) throw py::value_error("V: need 1 <= V < 2^31");
    if (window < 1) throw py::value_error("window: must be >= 1");
    if (slots < 1) throw py::value_error("slots: must be >= 1");
    if (dense_words < 0) throw py::value_error("dense_words: must be >= 0");
    c_ = std::make_unique<Cooccur>(V, window, symmetric, slots, dense_words, buffer_pairs);
  }
  void add(int slot, const py::array& tokens, const py::array& sent_off, index_t lead,
           index_t trail) {
    if (!c_) throw py::value_error("GloveCooccur: finish() was already called");
    if (slot < 0 || slot >= slots_) throw py::value_error("slot: out of range");
    const index_t n = tokens.size(), S = sent_off.size() - 1;
    if (S < 0) throw py::value_error("sent_off: needs at least one element");
    const std::int32_t* pt = indices<std::int32_t>(tokens, "tokens", n, V_);
    const std::int64_t* po = indices<std::int64_t>(sent_off, "sent_off", S + 1, -1);
    if (po[0] != 0 || po[S] != n) throw py::value_error("sent_off: must run from 0 to len(tokens)");
    for (index_t k = 0; k < S; ++k)
      if (po[k + 1] < po[k]) throw py::value_error("sent_off: must be non-decreasing");
    if (lead < 0 || trail < 0 || (S > 0 && (lead > po[1] || trail > po[S] - po[S - 1])) ||
        (S == 1 && lead + trail > n))
      throw py::value_error("lead/trail: must fit inside the first/last sentence");
    py::gil_scoped_release nogil;
    c_->add(slot, pt, po, S, lead, trail);
  }
  py::tuple finish() {
    if (!c_) throw py::value_error("GloveCooccur: finish() was already called");
    std::vector<std::int32_t> rows, cols;
    std::vector<float> vals;
    {
      py::gil_scoped_release nogil;
      c_->finish(rows, cols, vals);
      c_.reset();
    }
    auto to_np = [](auto& v) {
      using E = typename std::decay_t<decltype(v)>::value_type;
      py::array_t<E> a(v.size());
      std::copy(v.begin(), v.end(), a.mutable_data());
      return a;
    };
    return py::make_tuple(to_np(rows), to_np(cols), to_np(vals));
  }

 private:
  index_t V_;
  int slots_;
  std::unique_ptr<Cooccur> c_;
};

}  // namespace

void bind_glove(py::module_& m) {
  // W, C (V, D), bw, bc (V,), and their AdaGrad sums; one step on (i, j, x) -> loss
  m.def("glove_update", [](py::array& W, py::array& C, py::array& bw, py::array& bc, py::array& gW,
                           py::array& gC, py::array& gbw, py::array& gbc, index_t V, index_t D,
                           std::int64_t i, std::int64_t j, double x, double lr, double x_max,
                           double alpha) {
    const index_t VD = dims("glove_update", {V, D});
    if (i < 0 || i >= V) throw py::value_error("i: index out of range");
    if (j < 0 || j >= V) throw py::value_error("j: index out of range");
    return dispatch(W, "W", [&](auto t) {
      using T = decltype(t);
      T* p[8] = {out<T>(W, "W", VD), out<T>(C, "C", VD), out<T>(bw, "bw", V), out<T>(bc, "bc", V),
                 out<T>(gW, "gW", VD), out<T>(gC, "gC", VD), out<T>(gbw, "gbw", V),
                 out<T>(gbc, "gbc", V)};
      return glove_update<T>(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], D, i, j, T(x),
                             T(lr), T(x_max), T(alpha));
    });
  }, py::arg("W"), py::arg("C"), py::arg("bw"), py::arg("bc"), py::arg("gW"), py::arg("gC"),
     py::arg("gbw"), py::arg("gbc"), py::arg("V"), py::arg("D"), py::arg("i"), py::arg("j"),
     py::arg("x"), py::arg("lr"), py::arg("x_max"), py::arg("alpha"));

  // One epoch of Hogwild AdaGrad over the triplets in their order; float32 -> summed loss
  m.def("glove_epoch", [](py::array& W, py::array& C, py::array& bw, py::array& bc, py::array& gW,
                          py::array& gC, py::array& gbw, py::array& gbc, index_t V, index_t D,
                          const py::array& rows, const py::array& cols, const py::array& vals,
                          double lr, double x_max, double alpha, int threads) {
    const index_t VD = dims("glove_epoch", {V, D});
    const index_t nnz = rows.size();
    float* p[8] = {out<float>(W, "W", VD), out<float>(C, "C", VD), out<float>(bw, "bw", V),
                   out<float>(bc, "bc", V), out<float>(gW, "gW", VD), out<float>(gC, "gC", VD),
                   out<float>(gbw, "gbw", V), out<float>(gbc, "gbc", V)};
    const std::int32_t* pr = indices<std::int32_t>(rows, "rows", nnz, V);
    const std::int32_t* pc = indices<std::int32_t>(cols, "cols", nnz, V);
    const float* pv = in<float>(vals, "vals", nnz);
    for (index_t k = 0; k < nnz; ++k)
      if (!(pv[k] > 0.0f) || !std::isfinite(pv[k])) throw py::value_error("vals: counts must be finite and > 0");
    py::gil_scoped_release nogil;
    return glove_epoch(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], D, pr, pc, pv, nnz,
                       float(lr), float(x_max), float(alpha), threads);
  }, py::arg("W"), py::arg("C"), py::arg("bw"), py::arg("bc"), py::arg("gW"), py::arg("gC"),
     py::arg("gbw"), py::arg("gbc"), py::arg("V"), py::arg("D"), py::arg("rows"), py::arg("cols"),
     py::arg("vals"), py::arg("lr"), py::arg("x_max"), py::arg("alpha"),
     py::arg("threads"));

  py::class_<GloveCooccur>(m, "GloveCooccur")
      .def(py::init<index_t, int, bool, int, index_t, std::size_t>(), py::arg("V"),
           py::arg("window"), py::arg("symmetric"), py::arg("slots"), py::arg("dense_words"),
           py::arg("buffer_pairs"))
      .def("add", &GloveCooccur::add, py::arg("slot"), py::arg("tokens"), py::arg("sent_off"),
           py::arg("lead"), py::arg("trail"))
      .def("finish", &GloveCooccur::finish);
}

}  // namespace nnkern::bind
