// Recurrent kernels (RNN, GRU, LSTM). nnkern.ops.recurrent validates the arguments with the
// twin's helpers and allocates every output and cache array; here each buffer's dtype, layout
// and size is checked against (T, B, I, H), and `lengths` against [0, T], before the GIL is
// released: a hand-made RecurrentCache with wrong arrays raises instead of reading out of bounds.
#include <string>

#include "bindings/util.hpp"
#include "kernels/recurrent.hpp"

namespace nnkern::bind {

namespace {

Cell cell_arg(const std::string& kind) {
  if (kind == "lstm") return Cell::lstm;
  if (kind == "gru") return Cell::gru;
  if (kind == "rnn") return Cell::rnn;
  throw py::value_error("kind: expected 'lstm', 'gru' or 'rnn', got '" + kind + "'");
}

Nonlinearity act_arg(const std::string& a) {
  if (a == "tanh") return Nonlinearity::tanh;
  if (a == "relu") return Nonlinearity::relu;
  if (a == "sigmoid") return Nonlinearity::sigmoid;
  throw py::value_error("nonlinearity: expected 'tanh', 'relu' or 'sigmoid', got '" + a + "'");
}

int num_gates(Cell c) { return c == Cell::lstm ? 4 : c == Cell::gru ? 3 : 1; }

py::array as_array(const py::object& o, const char* name) {
  if (!py::isinstance<py::array>(o))
    throw py::type_error(std::string(name) + ": expected a numpy.ndarray");
  return py::reinterpret_borrow<py::array>(o);
}

// An input the cell needs (None allowed only when `optional`).
template <class T>
const T* opt_in(const py::object& o, const char* name, index_t size, bool optional = true) {
  if (o.is_none()) {
    if (!optional) throw py::value_error(std::string(name) + ": required, got None");
    return nullptr;
  }
  return in<T>(as_array(o, name), name, size);
}

// An output the cell writes (required) or does not use (ignored).
template <class T>
T* cell_out(const py::object& o, const char* name, index_t size, bool used) {
  if (!used) return nullptr;
  if (o.is_none()) throw py::value_error(std::string(name) + ": required, got None");
  auto a = as_array(o, name);
  return out<T>(a, name, size);
}

// lengths: None, or (B,) int64 with every value in [0, T].
const index_t* lengths_arg(const py::object& o, index_t T, index_t B) {
  if (o.is_none()) return nullptr;
  auto a = as_array(o, "lengths");
  if (!a.dtype().is(py::dtype::of<std::int64_t>()))
    throw py::type_error("lengths: expected dtype int64, got " + std::string(py::str(a.dtype())));
  if (!(a.flags() & py::array::c_style)) throw py::value_error("lengths: must be C-contiguous");
  if (a.size() != B)
    throw py::value_error("lengths: expected " + std::to_string(B) + " elements, got " +
                          std::to_string(a.size()));
  const auto* p = static_cast<const index_t*>(a.data());
  for (index_t b = 0; b < B; ++b)
    if (p[b] < 0 || p[b] > T)
      throw py::value_error("lengths: expected values in [0, " + std::to_string(T) + "], got " +
                            std::to_string(p[b]) + " at index " + std::to_string(b));
  return p;
}

// Element counts of every array a recurrent call touches, each checked against int64
// overflow (the buffers are then checked against these sizes).
struct Sizes {
  index_t TBI, BH, GHI, GHH, GH, TBH, T1BH, TBGH;
};

Sizes sizes(const char* fn, index_t G, index_t T, index_t B, index_t I, index_t H) {
  return {dims(fn, {T, B, I}), dims(fn, {B, H}),        dims(fn, {G, H, I}),    dims(fn, {G, H, H}),
          dims(fn, {G, H}),    dims(fn, {T, B, H}),     dims(fn, {T + 1, B, H}), dims(fn, {T, B, G, H})};
}

}  // namespace

void bind_recurrent(py::module_& m) {
  // kind "lstm" | "gru" | "rnn"; x (T, B, I), h0, c0 (B, H), W_ih (G*H, I), W_hh (G*H, H),
  // b_ih, b_hh (G*H,) or None, lengths (B,) int64 or None -> out (T, B, H), hT, cT (B, H),
  // cache h, c (T+1, B, H), gates (T, B, G*H), hn (T, B, H). Unused arrays may be None.
  m.def("recurrent_forward",
        [](const std::string& kind, const std::string& nonlinearity, const py::array& x,
           const py::object& h0, const py::object& c0, const py::array& W_ih, const py::array& W_hh,
           const py::object& b_ih, const py::object& b_hh, const py::object& lengths, bool reverse,
           py::array& out_, py::array& hT, const py::object& cT, py::array& h, const py::object& c,
           const py::object& gates, const py::object& hn, index_t T, index_t B, index_t I, index_t H) {
          const Cell cell = cell_arg(kind);
          const Nonlinearity act = act_arg(nonlinearity);
          const index_t G = num_gates(cell);
          const Sizes z = sizes("recurrent_forward", G, T, B, I, H);
          const index_t TBI = z.TBI, BH = z.BH, GHI = z.GHI, GHH = z.GHH, GH = z.GH, TBH = z.TBH,
                        T1BH = z.T1BH, TBGH = z.TBGH;
          const bool lstm = cell == Cell::lstm, gru = cell == Cell::gru;
          const index_t* L = lengths_arg(lengths, T, B);
          dispatch(x, "x", [&](auto tag) {
            using S = decltype(tag);
            const S* px = in<S>(x, "x", TBI);
            const S* ph0 = opt_in<S>(h0, "h0", BH);
            const S* pc0 = lstm ? opt_in<S>(c0, "c0", BH) : nullptr;
            const S* pWih = in<S>(W_ih, "W_ih", GHI);
            const S* pWhh = in<S>(W_hh, "W_hh", GHH);
            const S* pbih = opt_in<S>(b_ih, "b_ih", GH);
            const S* pbhh = opt_in<S>(b_hh, "b_hh", GH);
            S* pout = out<S>(out_, "out", TBH);
            S* phT = out<S>(hT, "hT", BH);
            S* pcT = cell_out<S>(cT, "cT", BH, lstm);
            S* ph = out<S>(h, "h", T1BH);
            S* pc = cell_out<S>(c, "c", T1BH, lstm);
            S* pg = cell_out<S>(gates, "gates", TBGH, lstm || gru);
            S* phn = cell_out<S>(hn, "hn", TBH, gru);
            py::gil_scoped_release nogil;
            recurrent_forward<S>(cell, act, {T, B, I, H}, px, ph0, pc0, pWih, pWhh, pbih, pbhh, L,
                                 reverse, pout, phT, pcT, ph, pc, pg, phn);
          });
        });

  // Gradients from dout (T, B, H), dhT, dcT (B, H) (each None = zero) and the cache arrays
  // x, W_ih, W_hh, lengths, h, c, gates, hn -> dx, dh0, dc0, dW_ih, dW_hh, db_ih, db_hh.
  m.def("recurrent_backward",
        [](const std::string& kind, const std::string& nonlinearity, const py::object& dout,
           const py::object& dhT, const py::object& dcT, const py::array& x, const py::array& W_ih,
           const py::array& W_hh, const py::object& lengths, bool reverse, const py::array& h,
           const py::object& c, const py::object& gates, const py::object& hn, py::array& dx,
           py::array& dh0, const py::object& dc0, py::array& dW_ih, py::array& dW_hh,
           py::array& db_ih, py::array& db_hh, index_t T, index_t B, index_t I, index_t H) {
          const Cell cell = cell_arg(kind);
          const Nonlinearity act = act_arg(nonlinearity);
          const index_t G = num_gates(cell);
          const Sizes z = sizes("recurrent_backward", G, T, B, I, H);
          const index_t TBI = z.TBI, BH = z.BH, GHI = z.GHI, GHH = z.GHH, GH = z.GH, TBH = z.TBH,
                        T1BH = z.T1BH, TBGH = z.TBGH;
          const bool lstm = cell == Cell::lstm, gru = cell == Cell::gru;
          const index_t* L = lengths_arg(lengths, T, B);
          dispatch(x, "x", [&](auto tag) {
            using S = decltype(tag);
            const S* pdout = opt_in<S>(dout, "dout", TBH);
            const S* pdhT = opt_in<S>(dhT, "dhT", BH);
            const S* pdcT = lstm ? opt_in<S>(dcT, "dcT", BH) : nullptr;
            const S* px = in<S>(x, "x", TBI);
            const S* pWih = in<S>(W_ih, "W_ih", GHI);
            const S* pWhh = in<S>(W_hh, "W_hh", GHH);
            const S* ph = in<S>(h, "h", T1BH);
            const S* pc = lstm ? opt_in<S>(c, "c", T1BH, false) : nullptr;
            const S* pg = (lstm || gru) ? opt_in<S>(gates, "gates", TBGH, false) : nullptr;
            const S* phn = gru ? opt_in<S>(hn, "hn", TBH, false) : nullptr;
            S* pdx = out<S>(dx, "dx", TBI);
            S* pdh0 = out<S>(dh0, "dh0", BH);
            S* pdc0 = cell_out<S>(dc0, "dc0", BH, lstm);
            S* pdWih = out<S>(dW_ih, "dW_ih", GHI);
            S* pdWhh = out<S>(dW_hh, "dW_hh", GHH);
            S* pdbih = out<S>(db_ih, "db_ih", GH);
            S* pdbhh = out<S>(db_hh, "db_hh", GH);
            py::gil_scoped_release nogil;
            recurrent_backward<S>(cell, act, {T, B, I, H}, pdout, pdhT, pdcT, px, pWih, pWhh, L,
                                  reverse, ph, pc, pg, phn, pdx, pdh0, pdc0, pdWih, pdWhh, pdbih,
                                  pdbhh);
          });
        });
}

}  // namespace nnkern::bind
