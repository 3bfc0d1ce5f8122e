// Recurrent layers (vanilla RNN, GRU, LSTM), forward and backward, in PyTorch's layout:
// gates stacked [i|f|g|o] (LSTM), [r|z|n] (GRU, r applied to W_hn h + b_hn), one (RNN);
// W_ih (G*H, I), W_hh (G*H, H), b_ih, b_hh (G*H,). Time-major x (T, B, I).
// https://pytorch.org/docs/stable/generated/torch.nn.LSTM.html (and .GRU, .RNN).
//
// The saved activations follow nnkern/_cache.py (RecurrentCache): every per-step array is
// indexed by the step s in processing order; step s of sequence b is time
//   t = s (forward) or t = L_b - 1 - s (reverse) for s < L_b, and padding for s >= L_b,
// where the state is carried unchanged (h[s+1, b] = h[s, b]). Only `out` is in time order.
// A cache written by nnkern.reference works with these backwards and the other way round.
//
// Threads: nnkern::get_num_threads() (OpenMP); results are bitwise the same for any number.
// Scratch (packed weights, gate gradients) is kept per calling thread between calls and only
// grows, as a framework's workspace: see Scratch in recurrent.cpp.
#pragma once

#include "kernels/common.hpp"

namespace nnkern {

enum class Cell { lstm, gru, rnn };
enum class Nonlinearity { tanh, relu, sigmoid };  // the RNN's activation

struct RecurrentDims {
  index_t T, B, I, H;
};

// Forward.
//   x (T, B, I)  h0, c0 (B, H)  W_ih (G*H, I)  W_hh (G*H, H)  b_ih, b_hh (G*H,) or nullptr
//   lengths (B,) int64 in [0, T] or nullptr (every length T)
// Writes out (T, B, H) in time order (zero at padding), hT, cT (B, H), and the cache:
//   h (T+1, B, H), c (T+1, B, H) [LSTM], gates (T, B, G*H) activations [LSTM, GRU; zero at
//   padding steps], hn (T, B, H) = W_hn h[s] + b_hn [GRU; zero at padding steps].
// Pointers a cell does not use (c0, cT, c, gates, hn) may be nullptr; h0, c0 nullptr is zeros.
template <class T>
void recurrent_forward(Cell cell, Nonlinearity act, RecurrentDims d, const T* x, const T* h0,
                       const T* c0, const T* W_ih, const T* W_hh, const T* b_ih, const T* b_hh,
                       const index_t* lengths, bool reverse, T* out, T* hT, T* cT, T* h, T* c,
                       T* gates, T* hn);

// Backward from the cache of a forward (same cell, act, dims, lengths, reverse).
//   dout (T, B, H), dhT, dcT (B, H): upstream gradients, nullptr = zero.
// Writes (overwriting) dx (T, B, I), dh0, dc0 (B, H) [dc0 LSTM], dW_ih (G*H, I),
// dW_hh (G*H, H), db_ih, db_hh (G*H,).
template <class T>
void recurrent_backward(Cell cell, Nonlinearity act, RecurrentDims d, const T* dout, const T* dhT,
                        const T* dcT, const T* x, const T* W_ih, const T* W_hh,
                        const index_t* lengths, bool reverse, const T* h, const T* c,
                        const T* gates, const T* hn, T* dx, T* dh0, T* dc0, T* dW_ih, T* dW_hh,
                        T* db_ih, T* db_hh);

}  // namespace nnkern
