// Batch normalization over the channels of x (N, C, L), as torch.nn.BatchNorm1d
// (https://pytorch.org/docs/stable/generated/torch.nn.BatchNorm1d.html); an (N, C) input is
// passed with L = 1. Channel c holds the K = N L values x[:, c, :].
//
// Statistics are summed in double over fixed blocks of rows combined in order, so results do
// not depend on the thread count. The forward saves the mean and inverse standard deviation it
// normalized with (batch statistics in training mode, running ones in eval mode); the
// backward recomputes x_hat = (x - mean) invstd from x instead of storing it.
#pragma once

#include "kernels/common.hpp"

namespace nnkern {

// x, y (N, C, L); gamma, beta (C,) or nullptr (1 and 0); running_mean, running_var (C,) or
// nullptr; save_mean, save_invstd (C,) written.
// batch_stats: normalize with this batch's mean and biased variance (training, or no running
// statistics), else with the running ones. update_running: running = (1 - momentum) running
// + momentum batch, with the unbiased variance K / (K - 1) var (needs K > 1).
template <class T>
void batchnorm_forward(const T* x, const T* gamma, const T* beta, T* running_mean, T* running_var,
                       T* y, T* save_mean, T* save_invstd, index_t N, index_t C, index_t L,
                       bool batch_stats, bool update_running, double momentum, double eps);

// dy, x, dx (N, C, L); mean, invstd (C,) as saved by the forward; gamma (C,) or nullptr.
// dgamma = sum dy x_hat, dbeta = sum dy (C,). With batch statistics the mean and variance
// depend on x:  dx = gamma invstd (dy - mean(dy) - x_hat mean(dy x_hat));  else
// dx = gamma invstd dy.
template <class T>
void batchnorm_backward(const T* dy, const T* x, const T* mean, const T* invstd, const T* gamma,
                        T* dx, T* dgamma, T* dbeta, index_t N, index_t C, index_t L, bool batch_stats);

}  // namespace nnkern
