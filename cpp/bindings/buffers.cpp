// A cache of large output buffers. Every kernel returns fresh arrays, and in a training loop
// the same shapes come back every step. From the allocator, a large block arrives as fresh
// pages from the OS (glibc hands back freed blocks above its trim threshold), which are
// faulted in and zeroed on first touch: for a 16 MiB batch-norm output that costs about as
// much as the kernel itself. Here a freed block waits, idle, for the next request of the
// same rounded size, up to a cap on the idle bytes (least recently freed blocks go first).
// Arrays made here are ordinary writeable ndarrays whose base is a capsule that gives the
// block back when the last view of it dies.
#include <cstdlib>
#include <mutex>
#include <new>
#include <vector>

#include <pybind11/stl.h>

#include "bindings/util.hpp"

namespace nnkern::bind {

namespace {

constexpr size_t kRound = size_t(64) << 10;  // sizes are kept in 64 KiB classes (2 MiB for huge blocks)

class BufferPool {
 public:
  struct Stats {
    size_t idle_bytes, idle_blocks, max_idle_bytes, hits, misses;
  };

  void* acquire(size_t& bytes) {
    bytes = rounded(bytes);
    {
      std::lock_guard<std::mutex> lock(mu_);
      // the most recently freed block of this size: it is the likeliest to be in cache
      for (size_t i = idle_.size(); i-- > 0;)
        if (idle_[i].bytes == bytes) {
          void* p = idle_[i].p;
          idle_.erase(idle_.begin() + std::ptrdiff_t(i));
          idle_bytes_ -= bytes;
          ++hits_;
          return p;
        }
      ++misses_;
    }
    return alloc_block(bytes);  // bytes is already a multiple of its alignment
  }

  void release(void* p, size_t bytes) {
    std::vector<void*> drop;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (bytes > max_idle_) {
        drop.push_back(p);
      } else {
        idle_.push_back({p, bytes});
        idle_bytes_ += bytes;
        evict(drop);
      }
    }
    for (void* q : drop) std::free(q);
  }

  void set_max_idle(size_t bytes) {
    std::vector<void*> drop;
    {
      std::lock_guard<std::mutex> lock(mu_);
      max_idle_ = bytes;
      evict(drop);
    }
    for (void* q : drop) std::free(q);
  }

  Stats stats() {
    std::lock_guard<std::mutex> lock(mu_);
    return {idle_bytes_, idle_.size(), max_idle_, hits_, misses_};
  }

 private:
  struct Block {
    void* p;
    size_t bytes;
  };

  static size_t rounded(size_t bytes) {
    const size_t r = bytes >= kHugeBytes ? kHugeAlign : kRound;
    return (std::max<size_t>(bytes, 1) + r - 1) / r * r;
  }

  // oldest first, until the idle blocks fit under the cap (caller holds the lock)
  void evict(std::vector<void*>& drop) {
    size_t k = 0;
    while (idle_bytes_ > max_idle_ && k < idle_.size()) {
      drop.push_back(idle_[k].p);
      idle_bytes_ -= idle_[k].bytes;
      ++k;
    }
    idle_.erase(idle_.begin(), idle_.begin() + std::ptrdiff_t(k));
  }

  std::mutex mu_;
  std::vector<Block> idle_;  // in the order they were freed
  size_t idle_bytes_ = 0, max_idle_ = size_t(512) << 20, hits_ = 0, misses_ = 0;
};

// Never destroyed: arrays alive at interpreter exit still give their blocks back to it.
BufferPool& pool() {
  static BufferPool* p = new BufferPool;
  return *p;
}

struct Owned {
  void* p;
  size_t bytes;
};

}  // namespace

void bind_buffers(py::module_& m) {
  m.def(
      "empty",
      [](const std::vector<index_t>& shape, const py::dtype& dt) {
        index_t n = 1;
        for (index_t d : shape) {
          if (d < 0) throw py::value_error("shape: negative dimension " + std::to_string(d));
          if (__builtin_mul_overflow(n, d, &n))
            throw py::value_error("shape: dimensions overflow int64");
        }
        index_t nbytes;
        if (__builtin_mul_overflow(n, index_t(dt.itemsize()), &nbytes))
          throw py::value_error("shape: size in bytes overflows int64");
        size_t bytes = size_t(nbytes);
        void* p;
        try {
          p = pool().acquire(bytes);
        } catch (const std::bad_alloc&) {
          PyErr_SetString(PyExc_MemoryError, ("shape: cannot allocate an array of " +
                                              std::to_string(nbytes) + " bytes").c_str());
          throw py::error_already_set();
        }
        Owned* own;
        try {
          own = new Owned{p, bytes};
        } catch (...) {
          pool().release(p, bytes);
          throw;
        }
        py::capsule base(own, [](void* q) {
          auto* o = static_cast<Owned*>(q);
          pool().release(o->p, o->bytes);
          delete o;
        });
        return py::array(dt, shape, p, base);
      },
      py::arg("shape"), py::arg("dtype"),
      "An uninitialised C-contiguous array whose block comes from the buffer cache.");
  m.def("set_buffer_cache", [](index_t max_bytes) {
    if (max_bytes < 0)
      throw py::value_error("max_bytes: must be >= 0, got " + std::to_string(max_bytes));
    pool().set_max_idle(size_t(max_bytes));
  });
  m.def("buffer_cache_info", []() {
    const auto s = pool().stats();
    py::dict d;
    d["idle_bytes"] = s.idle_bytes;
    d["idle_blocks"] = s.idle_blocks;
    d["max_idle_bytes"] = s.max_idle_bytes;
    d["hits"] = s.hits;
    d["misses"] = s.misses;
    return d;
  });
}

}  // namespace nnkern::bind
