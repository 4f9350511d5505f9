"""``sampler.compile`` with inductor freezing: the frozen graph follows the weights.

Freezing folds the weights into the compiled graph as constants, so a graph built before the
weights change (training continues, a checkpoint is loaded) would keep computing with the old
ones. The wrapper must be rebuilt: after an in-place update the compiled logits equal the eager
logits of the NEW weights (to 1e-5), and differ from the old ones. The default path is untouched:
with ``compile: false`` ``_guided`` hands back the eager method itself.
"""

from __future__ import annotations

import pytest
import torch

from evaluators.core.config import load_config
from methods import get_method
from methods.momask import masking as M


def _smoke(compile_: bool):
    cfg = load_config("method", "momask", "smoke", ["render.n=0", f"sampler.compile={str(compile_).lower()}"])
    return get_method("momask")(cfg, seed=0)


def test_default_path_is_the_eager_method():
    m = _smoke(False)
    assert m._guided(m.mtrans.guided_logits) == m.mtrans.guided_logits


@pytest.mark.slow  # inductor compiles the masked transformer twice on the CPU (tens of seconds)
def test_frozen_graph_is_rebuilt_when_weights_change():
    m = _smoke(True)
    mt = m.mtrans.eval()
    b, n = 2, 6
    ids = torch.randint(0, mt.num_tokens + 1, (b, n), generator=torch.Generator().manual_seed(0))
    pad = M.lengths_to_pad(torch.tensor([6, 4]), n)
    cond = torch.randn(b, 1, mt.cond_emb.in_features, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        g = mt.guidance(cond, pad, None, 4.0)
        first = m._guided(mt.guided_logits)
        old = first(ids, g)
        assert first.compiled is not None, "torch.compile fell back to eager: nothing was compared"
        torch.testing.assert_close(old, mt.guided_logits(ids, g), rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        mt.output_process.poseFinal.bias.add_(torch.linspace(-1.0, 1.0, mt.num_tokens))  # in place
    with torch.inference_mode():
        again = m._guided(mt.guided_logits)
        assert again is not first
        new = again(ids, g)
        want = mt.guided_logits(ids, g)
    assert not torch.allclose(want, old, atol=1e-2)  # the update moved the logits
    torch.testing.assert_close(new, want, rtol=1e-5, atol=1e-5)
