"""The output-buffer cache: large kernel outputs reuse freed blocks, never live ones."""

import gc
import pickle

import numpy as np
import pytest

import nnkern
from nnkern import _buffers, ops, reference

BIG = (512, 1024)  # 2 MiB of float32: above the cache's 1 MiB floor


@pytest.fixture(autouse=True)
def default_cap():
    nnkern.set_buffer_cache(512 << 20)
    yield
    nnkern.set_buffer_cache(512 << 20)


def _addr(a):
    return a.__array_interface__["data"][0]


def test_large_outputs_come_from_the_cache_and_behave_like_np_empty():
    x = np.random.default_rng(0).standard_normal(BIG).astype(np.float32)
    y = ops.relu(x)
    assert isinstance(y, np.ndarray) and y.shape == BIG and y.dtype == np.float32
    assert y.flags.c_contiguous and y.flags.writeable and y.flags.aligned
    assert not y.flags.owndata and y.base is not None  # the capsule holding the block
    np.testing.assert_array_equal(y, reference.relu(x))
    y[0, 0] = 7.0  # writeable, and a plain ndarray everywhere else
    assert pickle.loads(pickle.dumps(y))[0, 0] == 7.0
    assert np.copy(y).flags.owndata


def test_small_outputs_are_plain_numpy_arrays():
    y = ops.relu(np.ones(10, np.float32))
    assert y.flags.owndata


def test_a_freed_block_is_reused_for_the_same_size():
    x = np.ones(BIG, np.float32)
    y = ops.relu(x)
    addr = _addr(y)
    del y
    gc.collect()
    before = nnkern.buffer_cache_info()
    assert before["idle_blocks"] >= 1
    z = ops.relu(x)
    after = nnkern.buffer_cache_info()
    assert after["hits"] == before["hits"] + 1
    assert _addr(z) == addr
    np.testing.assert_array_equal(z, x)


def test_live_arrays_and_views_keep_their_blocks():
    x = np.random.default_rng(1).standard_normal(BIG).astype(np.float32)
    outs = [ops.relu(x) for _ in range(3)]
    assert len({_addr(o) for o in outs}) == 3
    view = outs[0][10:20]  # the only reference left to the first block
    expect = view.copy()
    del outs
    gc.collect()
    again = [ops.tanh(x) for _ in range(3)]
    assert _addr(view) - 10 * BIG[1] * 4 not in {_addr(a) for a in again}
    np.testing.assert_array_equal(view, expect)


def test_cap_zero_keeps_nothing_and_cap_evicts_oldest():
    nnkern.set_buffer_cache(0)
    y = _buffers.empty(BIG, np.float32)
    del y
    gc.collect()
    assert nnkern.buffer_cache_info()["idle_bytes"] == 0
    nnkern.set_buffer_cache(5 << 20)  # room for two 2 MiB blocks, not three
    arrays = [_buffers.empty(BIG, np.float32) for _ in range(3)]
    del arrays
    gc.collect()
    info = nnkern.buffer_cache_info()
    assert info["idle_blocks"] == 2 and info["idle_bytes"] == 4 << 20
    assert info["max_idle_bytes"] == 5 << 20


def test_every_kernel_output_size_rounding_and_dtypes():
    for dtype in (np.float32, np.float64, np.uint8, bool):
        for shape in ((1 << 20,), (1023, 1025), (3, 5, 70001)):
            a = _buffers.empty(shape, dtype)
            assert a.shape == shape and a.dtype == np.dtype(dtype)
            a.reshape(-1)[-1] = 1  # the whole block is addressable
    assert _buffers.empty(5, np.float32).shape == (5,)
    assert _buffers.empty((0, 1 << 22), np.float32).size == 0


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="max_bytes"):
        nnkern.set_buffer_cache(-1)
    with pytest.raises(TypeError, match="max_bytes"):
        nnkern.set_buffer_cache(1.5)
    with pytest.raises(ValueError, match="shape"):
        nnkern._core.empty([1 << 40, 1 << 40], np.dtype(np.float32))
    with pytest.raises(ValueError, match="shape"):
        nnkern._core.empty([-1, 4], np.dtype(np.float32))
    with pytest.raises(MemoryError, match="shape: cannot allocate"):
        _buffers.empty((1 << 46,), np.float32)  # 256 TiB: more than any address space


def test_training_step_outputs_stay_correct_across_reuse():
    # the same shapes every step: outputs reuse blocks, results match the twins each time
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2048, 256)).astype(np.float32)
    dy = rng.standard_normal((2048, 256)).astype(np.float32)
    g, b = np.ones(256, np.float32), np.zeros(256, np.float32)
    ref_y, ref_cache = reference.batchnorm_forward(x, g, b, None, None)
    ref_dx = reference.batchnorm_backward(dy, ref_cache)[0]
    for _ in range(4):
        y, cache = ops.batchnorm_forward(x, g, b, None, None)
        dx = ops.batchnorm_backward(dy, cache)[0]
        np.testing.assert_allclose(y, ref_y, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(dx, ref_dx, rtol=1e-4, atol=1e-4)
        assert not np.shares_memory(y, dx)
