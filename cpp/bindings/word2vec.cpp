// word2vec bindings: the four single-example updates (nnkern.ops.word2vec_*) and the
// trainer object nnkern.embeddings.Word2Vec drives, one job per call with the GIL released.
#include <algorithm>
#include <type_traits>
#include <vector>

#include "bindings/util.hpp"
#include "kernels/word2vec.hpp"

namespace nnkern::bind {

namespace {

// A Huffman path: points (L,) int32 rows of syn1 (< V1) and codes (L,) uint8 0/1.
std::pair<const std::int32_t*, const std::uint8_t*> hs_path(const py::array& points,
                                                            const py::array& codes, index_t V1) {
  const index_t L = points.size();
  return {indices<std::int32_t>(points, "points", L, V1), indices<std::uint8_t>(codes, "codes", L, 2)};
}

// Dispatch on syn0's dtype, check both weight matrices, release the GIL and run
// f(syn0, out, work) with a 2*D scratch: the part every single-update binding shares.
template <class F>
double with_weights(const char* fn, py::array& syn0, py::array& outw, const char* out_name,
                    index_t V, index_t V1, index_t D, F&& f) {
  const index_t VD = dims(fn, {V, D}), V1D = dims(fn, {V1, D});
  return dispatch(syn0, "syn0", [&](auto t) {
    using T = decltype(t);
    T* p0 = out<T>(syn0, "syn0", VD);
    T* p1 = out<T>(outw, out_name, V1D);
    std::vector<T> work(2 * D);
    py::gil_scoped_release nogil;
    return f(p0, p1, work.data());
  });
}

void check_index(std::int64_t i, const char* name, index_t bound) {
  if (i < 0 || i >= bound)
    throw py::value_error(std::string(name) + ": index " + std::to_string(i) +
                          " out of range [0, " + std::to_string(bound) + ")");
}

std::vector<W2VAlias> pack_alias(const std::uint32_t* prob, const std::int32_t* idx, index_t V) {
  std::vector<W2VAlias> a(V);
  for (index_t i = 0; i < V; ++i) a[i] = {prob[i], idx[i]};
  return a;
}

// Holds the weights (by reference: they are the model's NumPy arrays, updated in place) and
// private copies of the sampling tables, all checked once, so train_job only checks tokens.
class W2VTrainer {
 public:
  W2VTrainer(py::array syn0, py::object syn1neg, py::object syn1, index_t V, index_t D,
             py::array keep, py::object alias_prob, py::object alias_idx, py::object code_off,
             py::object points, py::object codes, int window, int negative, bool sg, bool hs,
             bool cbow_mean, bool compute_loss, bool window_batch)
      : syn0_(syn0) {
    const index_t VD = dims("W2VTrainer", {V, D});
    if (V < 1 || D < 1 || V >= (index_t(1) << 31))
      throw py::value_error("W2VTrainer: need 1 <= V < 2^31 and D >= 1");
    if (window < 1) throw py::value_error("window: must be >= 1");
    if (negative < 0) throw py::value_error("negative: must be >= 0");
    if (!hs && negative == 0) throw py::value_error("W2VTrainer: need hs or negative > 0");
    m_.syn0 = out<float>(syn0_, "syn0", VD);
    m_.V = V;
    m_.D = D;
    const std::uint64_t* pk = indices<std::uint64_t>(keep, "keep", V, -1);
    keep_.assign(pk, pk + V);
    m_.keep = keep_.data();
    if (negative > 0) {
      syn1neg_ = syn1neg.cast<py::array>();
      m_.syn1neg = out<float>(syn1neg_, "syn1neg", VD);
      const std::uint32_t* ap = indices<std::uint32_t>(alias_prob.cast<py::array>(), "alias_prob", V, -1);
      const std::int32_t* ai = indices<std::int32_t>(alias_idx.cast<py::array>(), "alias_idx", V, V);
      alias_ = pack_alias(ap, ai, V);
      m_.alias = alias_.data();
    }
    if (hs) {
      const index_t inner = std::max<index_t>(V - 1, 1);
      syn1_ = syn1.cast<py::array>();
      m_.syn1 = out<float>(syn1_, "syn1", dims("W2VTrainer", {inner, D}));
      const std::int64_t* co = indices<std::int64_t>(code_off.cast<py::array>(), "code_off", V + 1, -1);
      if (co[0] != 0) throw py::value_error("code_off: must start at 0");
      for (index_t w = 0; w < V; ++w) {
        if (co[w + 1] < co[w]) throw py::value_error("code_off: must be non-decreasing");
        m_.longest_path = std::max<index_t>(m_.longest_path, co[w + 1] - co[w]);
      }
      const index_t total = co[V];
      const std::int32_t* pp = indices<std::int32_t>(points.cast<py::array>(), "points", total, inner);
      const std::uint8_t* pc = indices<std::uint8_t>(codes.cast<py::array>(), "codes", total, 2);
      code_off_.assign(co, co + V + 1);
      points_.assign(pp, pp + total);
      codes_.assign(pc, pc + total);
      m_.code_off = code_off_.data();
      m_.points = points_.data();
      m_.codes = codes_.data();
    }
    m_.window = window;
    m_.negative = negative;
    m_.sg = sg;
    m_.hs = hs;
    m_.cbow_mean = cbow_mean;
    m_.compute_loss = compute_loss;
    m_.window_batch = window_batch;
  }

  // -> (loss, examples, words kept)
  py::tuple train_job(const py::array& tokens, const py::array& sent_off, index_t lead,
                      index_t trail, double alpha0, double alpha1, std::uint64_t seed) {
    W2VJob job;
    job.n = tokens.size();
    job.S = sent_off.size() - 1;
    if (job.S < 0) throw py::value_error("sent_off: needs at least one element");
    job.tokens = indices<std::int32_t>(tokens, "tokens", job.n, m_.V);
    job.sent_off = indices<std::int64_t>(sent_off, "sent_off", job.S + 1, -1);
    if (job.sent_off[0] != 0 || job.sent_off[job.S] != job.n)
      throw py::value_error("sent_off: must run from 0 to len(tokens)");
    for (index_t s = 0; s < job.S; ++s)
      if (job.sent_off[s + 1] < job.sent_off[s])
        throw py::value_error("sent_off: must be non-decreasing");
    if (lead < 0 || trail < 0 || (job.S > 0 && lead > job.sent_off[1] - job.sent_off[0]) ||
        (job.S > 0 && trail > job.sent_off[job.S] - job.sent_off[job.S - 1]) ||
        (job.S == 1 && lead + trail > job.n))
      throw py::value_error("lead/trail: must fit inside the first/last sentence");
    job.lead = lead;
    job.trail = trail;
    job.alpha0 = alpha0;
    job.alpha1 = alpha1;
    job.seed = seed;
    W2VResult r;
    {
      py::gil_scoped_release nogil;
      r = w2v_train_job<float>(m_, job);
    }
    return py::make_tuple(r.loss, r.examples, r.words);
  }

 private:
  py::array syn0_, syn1neg_, syn1_;
  std::vector<std::uint64_t> keep_;
  std::vector<W2VAlias> alias_;
  std::vector<std::int64_t> code_off_;
  std::vector<std::int32_t> points_;
  std::vector<std::uint8_t> codes_;
  W2VModel<float> m_;
};

}  // namespace

void bind_word2vec(py::module_& m) {
  // syn0 (V, D), syn1neg (V, D), word, context, neg (K,) -> loss; syn0/syn1neg updated in place
  m.def("word2vec_sg_ns", [](py::array& syn0, py::array& syn1neg, index_t V, index_t D,
                             std::int64_t word, std::int64_t context, const py::array& neg,
                             double alpha) {
    check_index(word, "word", V);
    check_index(context, "context", V);
    const std::int64_t* pn = indices<std::int64_t>(neg, "negatives", neg.size(), V);
    return with_weights("word2vec_sg_ns", syn0, syn1neg, "syn1neg", V, V, D, [&](auto* p0, auto* p1, auto* w) {
      using T = std::remove_pointer_t<decltype(p0)>;
      return word2vec_sg_ns<T>(p0, p1, D, word, context, pn, neg.size(), T(alpha), w);
    });
  }, py::arg("syn0"), py::arg("syn1neg"), py::arg("V"), py::arg("D"), py::arg("word"),
     py::arg("context"), py::arg("negatives"), py::arg("alpha"));
  // syn0 (V, D), syn1 (V1, D), context, points (L,), codes (L,) -> loss
  m.def("word2vec_sg_hs", [](py::array& syn0, py::array& syn1, index_t V, index_t V1, index_t D,
                             std::int64_t context, const py::array& points,
                             const py::array& codes, double alpha) {
    check_index(context, "context", V);
    const index_t L = points.size();
    const auto [pp, pc] = hs_path(points, codes, V1);
    return with_weights("word2vec_sg_hs", syn0, syn1, "syn1", V, V1, D, [&](auto* p0, auto* p1, auto* w) {
      using T = std::remove_pointer_t<decltype(p0)>;
      return word2vec_sg_hs<T>(p0, p1, D, context, pp, pc, L, T(alpha), w);
    });
  }, py::arg("syn0"), py::arg("syn1"), py::arg("V"), py::arg("V1"), py::arg("D"),
     py::arg("context"), py::arg("points"), py::arg("codes"), py::arg("alpha"));
  m.def("word2vec_cbow_ns", [](py::array& syn0, py::array& syn1neg, index_t V, index_t D,
                               std::int64_t word, const py::array& ctx, const py::array& neg,
                               double alpha, bool cbow_mean) {
    check_index(word, "word", V);
    const std::int64_t* pc = indices<std::int64_t>(ctx, "context", ctx.size(), V);
    const std::int64_t* pn = indices<std::int64_t>(neg, "negatives", neg.size(), V);
    return with_weights("word2vec_cbow_ns", syn0, syn1neg, "syn1neg", V, V, D, [&](auto* p0, auto* p1, auto* w) {
      using T = std::remove_pointer_t<decltype(p0)>;
      return word2vec_cbow_ns<T>(p0, p1, D, word, pc, ctx.size(), pn, neg.size(), T(alpha),
                                 cbow_mean, w);
    });
  }, py::arg("syn0"), py::arg("syn1neg"), py::arg("V"), py::arg("D"), py::arg("word"),
     py::arg("context"), py::arg("negatives"), py::arg("alpha"), py::arg("cbow_mean"));
  m.def("word2vec_cbow_hs", [](py::array& syn0, py::array& syn1, index_t V, index_t V1,
                               index_t D, const py::array& ctx, const py::array& points,
                               const py::array& codes, double alpha, bool cbow_mean) {
    const std::int64_t* px = indices<std::int64_t>(ctx, "context", ctx.size(), V);
    const index_t L = points.size();
    const auto [pp, pc] = hs_path(points, codes, V1);
    return with_weights("word2vec_cbow_hs", syn0, syn1, "syn1", V, V1, D, [&](auto* p0, auto* p1, auto* w) {
      using T = std::remove_pointer_t<decltype(p0)>;
      return word2vec_cbow_hs<T>(p0, p1, D, px, ctx.size(), pp, pc, L, T(alpha), cbow_mean, w);
    });
  }, py::arg("syn0"), py::arg("syn1"), py::arg("V"), py::arg("V1"), py::arg("D"),
     py::arg("context"), py::arg("points"), py::arg("codes"), py::arg("alpha"),
     py::arg("cbow_mean"));

  // syn0 (V, D), syn1 (V1, D), contexts (C,), points (L,) distinct, codes (L,) -> loss
  m.def("word2vec_sg_hs_window", [](py::array& syn0, py::array& syn1, index_t V, index_t V1,
                                    index_t D, const py::array& ctx, const py::array& points,
                                    const py::array& codes, double alpha) {
    const std::int64_t* px = indices<std::int64_t>(ctx, "contexts", ctx.size(), V);
    const index_t C = ctx.size(), L = points.size();
    const auto [pp, pc] = hs_path(points, codes, V1);
    if (!all_distinct(pp, L)) throw py::value_error("points: the nodes of a path must be distinct");
    return with_weights("word2vec_sg_hs_window", syn0, syn1, "syn1", V, V1, D, [&](auto* p0, auto* p1, auto*) {
      using T = std::remove_pointer_t<decltype(p0)>;
      std::vector<T> work(C * (kW2VChunk + L));
      return w2v_sg_hs_window<T>(p0, p1, D, px, C, pp, pc, L, T(alpha), true, work.data());
    });
  }, py::arg("syn0"), py::arg("syn1"), py::arg("V"), py::arg("V1"), py::arg("D"),
     py::arg("contexts"), py::arg("points"), py::arg("codes"), py::arg("alpha"));

  // alias_prob (V,) uint32, alias_idx (V,) int32 -> n draws (int64), as training draws them
  m.def("w2v_draw_negatives", [](const py::array& alias_prob, const py::array& alias_idx,
                                 std::uint64_t seed, index_t n) {
    const index_t V = alias_prob.size();
    if (V < 1 || V >= (index_t(1) << 31)) throw py::value_error("alias_prob: need 1 <= V < 2^31");
    if (n < 0) throw py::value_error("n: must be >= 0");
    const std::uint32_t* ap = indices<std::uint32_t>(alias_prob, "alias_prob", V, -1);
    const std::int32_t* ai = indices<std::int32_t>(alias_idx, "alias_idx", V, V);
    const std::vector<W2VAlias> alias = pack_alias(ap, ai, V);
    py::array_t<std::int64_t> out(n);
    std::int64_t* po = out.mutable_data();
    {
      py::gil_scoped_release nogil;
      w2v_draw_negatives(alias.data(), V, seed, po, n);
    }
    return out;
  }, py::arg("alias_prob"), py::arg("alias_idx"), py::arg("seed"), py::arg("n"));

  py::class_<W2VTrainer>(m, "W2VTrainer")
      .def(py::init<py::array, py::object, py::object, index_t, index_t, py::array, py::object,
                    py::object, py::object, py::object, py::object, int, int, bool, bool, bool,
                    bool, bool>(),
           py::arg("syn0"), py::arg("syn1neg"), py::arg("syn1"), py::arg("V"), py::arg("D"),
           py::arg("keep"), py::arg("alias_prob"), py::arg("alias_idx"), py::arg("code_off"),
           py::arg("points"), py::arg("codes"), py::arg("window"), py::arg("negative"),
           py::arg("sg"), py::arg("hs"), py::arg("cbow_mean"), py::arg("compute_loss"),
           py::arg("window_batch") = true)
      .def("train_job", &W2VTrainer::train_job, py::arg("tokens"), py::arg("sent_off"),
           py::arg("lead"), py::arg("trail"), py::arg("alpha0"), py::arg("alpha1"),
           py::arg("seed"));
}

}  // namespace nnkern::bind
