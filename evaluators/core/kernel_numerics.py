"""Which rounding this machine's math kernels produce: an id that tells whether two machines can give
the same numbers bit for bit.

The same seed, code and lock give the same weights only where every kernel a run calls rounds the
same way. That holds on one machine, and it does not hold across CPU vendors or instruction sets:
oneMKL picks its code by CPU (on an AMD EPYC with AVX-512 its verbose log names no AVX-512 path, and
asking for one changes no SGEMM bit), oneDNN's kernels follow the ISA it detects (capping it changes
convolution and GELU bits) and so do ATen's vectorised functions (softmax), so a training
chain that starts from the same seed ends at different weights (measured: the published
heatmap_baseline smoke AP 0.272 on an Intel Xeon, 0.268 on an AMD EPYC, same commit and lock).
:func:`kernel_numerics` runs one small fixed input through each family of kernel the suite's
methods use (BLAS matrix products, oneDNN convolutions forward and backward, ATen's vectorised
transcendental and normalising functions, a threaded reduction, attention, numpy's ufuncs and its
own BLAS and LAPACK) and hashes the bits that come out. Equal ids: the kernels round alike here and
there. Different ids: numbers from there cannot be expected here bit for bit, only statistically.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any

import numpy as np


def kernel_numerics(threads: int | None = None) -> dict[str, Any]:
    """``{"id": 12 hex, "threads", "cpu_capability"}`` for ``threads`` intra-op threads (default: the
    current count, which the id depends on: a threaded reduction splits its sum by thread).
    The global random generators are left untouched."""
    import torch  # lazy: records import this module, and reading records must not pay torch's import

    n = int(threads or torch.get_num_threads())
    full, _, capability = _at_threads(n)
    return {"id": full, "threads": n, "cpu_capability": capability}


def torch_kernels_id(threads: int | None = None) -> str:
    """The part of the id that torch's kernels alone decide (12 hex): what a model trained with torch
    depends on. numpy's BLAS, which :func:`kernel_numerics` also hashes, takes its thread count from
    the environment at start-up, so two processes of one machine can differ there and still train
    the same weights; a cache of trained models is named by this id, not retrained for that."""
    import torch  # lazy: as in kernel_numerics

    return _at_threads(int(threads or torch.get_num_threads()))[1]


@functools.lru_cache(maxsize=8)
def _at_threads(n: int) -> tuple[str, str, str]:
    """(full id, torch-only id, ATen's CPU capability) at ``n`` intra-op threads."""
    import torch  # lazy: as in kernel_numerics

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        torch_outs = _torch_outputs()
    finally:
        torch.set_num_threads(before)
    return (_digest(torch_outs + _numpy_outputs(), numpy=True), _digest(torch_outs, numpy=False),
            torch.backends.cpu.get_cpu_capability())


def _digest(outs: list[np.ndarray], numpy: bool) -> str:
    import torch  # lazy: as in kernel_numerics

    h = hashlib.sha256(f"torch {torch.__version__}{f' numpy {np.__version__}' if numpy else ''}".encode())
    for out in outs:
        h.update(np.ascontiguousarray(out).tobytes())
    return h.hexdigest()[:12]


def _torch_outputs() -> list[np.ndarray]:
    import torch  # lazy: as in kernel_numerics
    import torch.nn.functional as F  # lazy: as above

    g = torch.Generator().manual_seed(0)

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g)

    a, b = rand(257, 333), rand(333, 129)
    x = rand(4, 16, 24, 24).requires_grad_(True)
    w = rand(32, 16, 3, 3).requires_grad_(True)
    q, k, v = rand(2, 4, 33, 16), rand(2, 4, 33, 16), rand(2, 4, 33, 16)
    big = rand(1 << 20)
    with torch.enable_grad():
        y = F.conv2d(x, w, padding=1)
        gx, gw = torch.autograd.grad(y.square().sum(), (x, w))
    with torch.no_grad():
        outs = [a @ b, F.linear(a, b.T), torch.bmm(rand(3, 17, 65), rand(3, 65, 19)), y, gx, gw,
                F.conv1d(rand(2, 8, 50), rand(12, 8, 5), padding=2),
                F.gelu(a), torch.softmax(a, 1), F.layer_norm(a, (333,)), a.exp(), a.abs().log(), a.sin(),
                a.cos(), a.tanh(), a.sigmoid(), big.sum().reshape(1), big.square().mean().reshape(1),
                F.scaled_dot_product_attention(q, k, v)]
    return [t.detach().numpy() for t in outs]


def _numpy_outputs() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((129, 65))
    m = rng.standard_normal((3, 3))
    return [a @ a.T, np.exp(a), np.sin(a), np.cos(a), np.arctan2(a, a[::-1]), np.log1p(np.abs(a)),
            *np.linalg.svd(m), a.astype(np.float32) @ a.T.astype(np.float32)]
