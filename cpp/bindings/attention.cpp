#include "bindings/util.hpp"
#include "kernels/attention.hpp"

namespace nnkern::bind {

namespace {

// The mask as bytes (B, Tq, Tk) or (B, Tk), or nullptr; sets per_query.
inline const std::uint8_t* mask_ptr(const py::object& mask, index_t B, index_t Tq, index_t Tk,
                                    bool& per_query) {
  per_query = false;
  if (mask.is_none()) return nullptr;
  const py::array m = mask.cast<py::array>();
  if (!m.dtype().is(py::dtype::of<std::uint8_t>()))
    throw py::type_error("mask: expected dtype uint8 (a boolean mask viewed as bytes), got " +
                         std::string(py::str(m.dtype())));
  if (!(m.flags() & py::array::c_style)) throw py::value_error("mask: must be C-contiguous");
  const index_t full = dims("attention", {B, Tq, Tk}), keys = dims("attention", {B, Tk});
  if (m.size() == full && m.ndim() == 3) per_query = true;
  else if (!(m.size() == keys && m.ndim() == 2))
    throw py::value_error("mask: expected (B, Tq, Tk) or (B, Tk) elements");
  return static_cast<const std::uint8_t*>(m.data());
}

}  // namespace

void bind_attention(py::module_& m) {
  // q (B,Tq,D) k (B,Tk,D) v (B,Tk,Dv) -> out (B,Tq,Dv), P (B,Tq,Tk)
  m.def("sdpa_forward", [](const py::array& q, const py::array& k, const py::array& v,
                           const py::object& mask, double scale, py::array& out_, py::array& P,
                           index_t B, index_t Tq, index_t Tk, index_t D, index_t Dv) {
    const index_t nq = dims("sdpa_forward", {B, Tq, D}), nk = dims("sdpa_forward", {B, Tk, D}),
                  nv = dims("sdpa_forward", {B, Tk, Dv}), no = dims("sdpa_forward", {B, Tq, Dv}),
                  np_ = dims("sdpa_forward", {B, Tq, Tk});
    bool per_query;
    const std::uint8_t* pm = mask_ptr(mask, B, Tq, Tk, per_query);
    dispatch(q, "q", [&](auto t) {
      using T = decltype(t);
      const T *pq = in<T>(q, "q", nq), *pk = in<T>(k, "k", nk), *pv = in<T>(v, "v", nv);
      T *po = out<T>(out_, "out", no), *pp = out<T>(P, "weights", np_);
      py::gil_scoped_release nogil;
      sdpa_forward<T>({B, Tq, Tk, D, Dv}, pq, pk, pv, pm, per_query, T(scale), po, pp);
    });
  }, py::arg("q"), py::arg("k"), py::arg("v"), py::arg("mask"), py::arg("scale"), py::arg("out"),
     py::arg("weights"), py::arg("B"), py::arg("Tq"), py::arg("Tk"), py::arg("D"), py::arg("Dv"));

  m.def("sdpa_backward", [](const py::array& dout, const py::array& q, const py::array& k,
                            const py::array& v, const py::array& P, double scale, py::array& dq,
                            py::array& dk, py::array& dv, index_t B, index_t Tq, index_t Tk,
                            index_t D, index_t Dv) {
    const index_t nq = dims("sdpa_backward", {B, Tq, D}), nk = dims("sdpa_backward", {B, Tk, D}),
                  nv = dims("sdpa_backward", {B, Tk, Dv}), no = dims("sdpa_backward", {B, Tq, Dv}),
                  np_ = dims("sdpa_backward", {B, Tq, Tk});
    dispatch(dout, "dout", [&](auto t) {
      using T = decltype(t);
      const T *pg = in<T>(dout, "dout", no), *pq = in<T>(q, "q", nq), *pk = in<T>(k, "k", nk),
              *pv = in<T>(v, "v", nv), *pp = in<T>(P, "weights", np_);
      T *pdq = out<T>(dq, "dq", nq), *pdk = out<T>(dk, "dk", nk), *pdv = out<T>(dv, "dv", nv);
      py::gil_scoped_release nogil;
      sdpa_backward<T>({B, Tq, Tk, D, Dv}, pg, pq, pk, pv, pp, T(scale), pdq, pdk, pdv);
    });
  }, py::arg("dout"), py::arg("q"), py::arg("k"), py::arg("v"), py::arg("weights"), py::arg("scale"),
     py::arg("dq"), py::arg("dk"), py::arg("dv"), py::arg("B"), py::arg("Tq"), py::arg("Tk"),
     py::arg("D"), py::arg("Dv"));

  m.def("additive_forward", [](const py::array& q, const py::array& k, const py::array& v,
                               const py::array& W_q, const py::array& W_k, const py::array& w_v,
                               const py::object& mask, py::array& out_, py::array& P,
                               py::array& hidden, index_t B, index_t Tq, index_t Tk, index_t Dq,
                               index_t Dk, index_t Dv, index_t A) {
    const char* fn = "additive_forward";
    const index_t nq = dims(fn, {B, Tq, Dq}), nk = dims(fn, {B, Tk, Dk}), nv = dims(fn, {B, Tk, Dv}),
                  no = dims(fn, {B, Tq, Dv}), np_ = dims(fn, {B, Tq, Tk}), nh = dims(fn, {B, Tq, Tk, A}),
                  nwq = dims(fn, {A, Dq}), nwk = dims(fn, {A, Dk});
    bool per_query;
    const std::uint8_t* pm = mask_ptr(mask, B, Tq, Tk, per_query);
    dispatch(q, "q", [&](auto t) {
      using T = decltype(t);
      const T *pq = in<T>(q, "q", nq), *pk = in<T>(k, "k", nk), *pv = in<T>(v, "v", nv),
              *pwq = in<T>(W_q, "W_q", nwq), *pwk = in<T>(W_k, "W_k", nwk), *pw = in<T>(w_v, "w_v", A);
      T *po = out<T>(out_, "out", no), *pp = out<T>(P, "weights", np_), *ph = out<T>(hidden, "hidden", nh);
      py::gil_scoped_release nogil;
      additive_forward<T>({B, Tq, Tk, Dq, Dv}, Dk, A, pq, pk, pv, pwq, pwk, pw, pm, per_query, po, pp, ph);
    });
  }, py::arg("q"), py::arg("k"), py::arg("v"), py::arg("W_q"), py::arg("W_k"), py::arg("w_v"),
     py::arg("mask"), py::arg("out"), py::arg("weights"), py::arg("hidden"), py::arg("B"),
     py::arg("Tq"), py::arg("Tk"), py::arg("Dq"), py::arg("Dk"), py::arg("Dv"), py::arg("A"));

  m.def("additive_backward", [](const py::array& dout, const py::array& q, const py::array& k,
                                const py::array& v, const py::array& W_q, const py::array& W_k,
                                const py::array& w_v, const py::array& P, const py::array& hidden,
                                py::array& dq, py::array& dk, py::array& dv, py::array& dW_q,
                                py::array& dW_k, py::array& dw_v, index_t B, index_t Tq,
                                index_t Tk, index_t Dq, index_t Dk, index_t Dv, index_t A) {
    const char* fn = "additive_backward";
    const index_t nq = dims(fn, {B, Tq, Dq}), nk = dims(fn, {B, Tk, Dk}), nv = dims(fn, {B, Tk, Dv}),
                  no = dims(fn, {B, Tq, Dv}), np_ = dims(fn, {B, Tq, Tk}), nh = dims(fn, {B, Tq, Tk, A}),
                  nwq = dims(fn, {A, Dq}), nwk = dims(fn, {A, Dk});
    dispatch(dout, "dout", [&](auto t) {
      using T = decltype(t);
      const T *pg = in<T>(dout, "dout", no), *pq = in<T>(q, "q", nq), *pk = in<T>(k, "k", nk),
              *pv = in<T>(v, "v", nv), *pwq = in<T>(W_q, "W_q", nwq), *pwk = in<T>(W_k, "W_k", nwk),
              *pw = in<T>(w_v, "w_v", A), *pp = in<T>(P, "weights", np_), *ph = in<T>(hidden, "hidden", nh);
      T *pdq = out<T>(dq, "dq", nq), *pdk = out<T>(dk, "dk", nk), *pdv = out<T>(dv, "dv", nv),
        *pdwq = out<T>(dW_q, "dW_q", nwq), *pdwk = out<T>(dW_k, "dW_k", nwk), *pdw = out<T>(dw_v, "dw_v", A);
      py::gil_scoped_release nogil;
      additive_backward<T>({B, Tq, Tk, Dq, Dv}, Dk, A, pg, pq, pk, pv, pwq, pwk, pw, pp, ph, pdq, pdk,
                           pdv, pdwq, pdwk, pdw);
    });
  }, py::arg("dout"), py::arg("q"), py::arg("k"), py::arg("v"), py::arg("W_q"), py::arg("W_k"),
     py::arg("w_v"), py::arg("weights"), py::arg("hidden"), py::arg("dq"), py::arg("dk"), py::arg("dv"),
     py::arg("dW_q"), py::arg("dW_k"), py::arg("dw_v"), py::arg("B"), py::arg("Tq"), py::arg("Tk"),
     py::arg("Dq"), py::arg("Dk"), py::arg("Dv"), py::arg("A"));
}

}  // namespace nnkern::bind
