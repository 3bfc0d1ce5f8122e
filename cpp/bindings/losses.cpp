#include "bindings/util.hpp"

namespace nnkern::bind {
void bind_losses(py::module_& m) {}
}  // namespace nnkern::bind
