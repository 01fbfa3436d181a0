"""The few CUDA runtime calls the engine path needs, through cuda-python (pycuda is gone from
TensorRT 10.14): device buffers, a stream, copies. Imported only where a GPU is used."""

from __future__ import annotations

import numpy as np

from siamese_edge.tensorrt.errors import GpuUnavailableError, TensorRTUnavailableError


def cudart():
    """``cuda.bindings.runtime`` (cuda-python >= 12.6), else the older ``cuda.cudart``."""
    try:
        from cuda.bindings import runtime
        return runtime
    except ImportError:
        pass
    try:
        from cuda import cudart as runtime
        return runtime
    except ImportError:
        raise TensorRTUnavailableError("cuda-python is not installed ('pip install "
                                       "cuda-python'); TensorRT needs it for GPU memory") from None


def check(result):
    """cuda-python returns ``(error, *values)``: raise on error, return the values."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        rt = cudart()
        _, name = rt.cudaGetErrorName(err)
        name = name.decode() if isinstance(name, bytes) else str(name)
        raise GpuUnavailableError(f"CUDA call failed: {name}")
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


class DeviceBuffer:
    """``nbytes`` of device memory, freed by :meth:`free`."""

    def __init__(self, nbytes: int) -> None:
        self.nbytes = int(nbytes)
        self.ptr = int(check(cudart().cudaMalloc(max(1, self.nbytes))))

    def upload(self, array: np.ndarray, stream: int) -> None:
        rt = cudart()
        array = np.ascontiguousarray(array)
        check(rt.cudaMemcpyAsync(self.ptr, array.ctypes.data, array.nbytes,
                                 rt.cudaMemcpyKind.cudaMemcpyHostToDevice, stream))

    def download(self, array: np.ndarray, stream: int) -> None:
        rt = cudart()
        check(rt.cudaMemcpyAsync(array.ctypes.data, self.ptr, array.nbytes,
                                 rt.cudaMemcpyKind.cudaMemcpyDeviceToHost, stream))

    def free(self) -> None:
        if self.ptr:
            check(cudart().cudaFree(self.ptr))
            self.ptr = 0


def device_count() -> int:
    """Number of visible CUDA devices; 0 where cuda-python or the driver is missing."""
    try:
        err, count = cudart().cudaGetDeviceCount()
        return int(count) if int(err) == 0 else 0
    except Exception:
        return 0


def create_stream() -> int:
    return int(check(cudart().cudaStreamCreate()))


def synchronize(stream: int) -> None:
    check(cudart().cudaStreamSynchronize(stream))


def destroy_stream(stream: int) -> None:
    check(cudart().cudaStreamDestroy(stream))
