"""DiffusionPose parts against hand-computed cases: forward process, rendering, masks, SC-CA, SGDD, sampler."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from evaluators.datasets.pose2d.transforms import COCO_SKELETON
from methods.diffusionpose.model import (
    SGDD,
    SCCrossAttention,
    cosine_gammas,
    draw_masks,
    noisy_to_pixels,
    q_sample,
    render_heatmaps,
    to_unit,
)
from methods.diffusionpose.network import DiffusionPoseNet


def test_cosine_gammas_match_closed_form():
    g = cosine_gammas(1000)

    def abar(t):
        return math.cos((t / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2

    for t in (0, 10, 500, 900):  # no beta clipping before t ~ 990
        assert g[t].item() == pytest.approx(abar(t + 1) / abar(0), rel=1e-4)
    assert g[-1] < 1e-4


def test_q_sample_hand_case():
    gam = torch.tensor([0.25, 0.64])
    y0 = torch.tensor([[[0.5, -1.0]], [[0.5, -1.0]]])
    eps = torch.tensor([[[1.0, 2.0]], [[-1.0, 0.0]]])
    yt = q_sample(y0, torch.tensor([0, 1]), gam, zeta=2.0, noise=eps)
    # sqrt(.25)*2*y0 + sqrt(.75)*eps ; sqrt(.64)*2*y0 + sqrt(.36)*eps
    expect = torch.tensor([[[0.5 + 0.75 ** 0.5, -1.0 + 2 * 0.75 ** 0.5]], [[0.8 - 0.6, -1.6]]])
    torch.testing.assert_close(yt, expect)


def test_unit_mapping_and_clamp():
    xy = torch.tensor([[[0.0, 0.0], [11.0, 15.0], [5.5, 7.5]]])
    u = to_unit(xy, (12, 16))
    torch.testing.assert_close(u, torch.tensor([[[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0]]]))
    px = noisy_to_pixels(torch.tensor([[[10.0, -10.0], [0.0, 1.0]]]), zeta=2.0, size_wh=(12, 16))
    torch.testing.assert_close(px, torch.tensor([[[11.0, 0.0], [5.5, 11.25]]]))


def test_render_heatmaps_values():
    hm = render_heatmaps(torch.tensor([[[2.0, 1.5]]]), (5, 4), sigma=1.0)
    assert hm.shape == (1, 1, 4, 5)
    for x, y in [(2, 1), (0, 3), (4, 2)]:
        assert hm[0, 0, y, x].item() == pytest.approx(math.exp(-((x - 2) ** 2 + (y - 1.5) ** 2) / 2), rel=1e-6)


def test_draw_masks_hand_case():
    xy = torch.tensor([[[1.0, 1.0], [3.0, 1.0]]])
    m_kps, m_ske = draw_masks(xy, [(0, 1)], (5, 4), delta_kps=0.5, delta_ske=0.5)
    kps = np.zeros((4, 5))
    kps[1, 1] = kps[1, 3] = 1
    ske = np.zeros((4, 5))
    ske[1, 1:4] = 1
    np.testing.assert_array_equal(m_kps[0, 0].numpy(), kps)
    np.testing.assert_array_equal(m_ske[0, 0].numpy(), ske)
    m_kps, m_ske = draw_masks(xy, [(0, 1)], (5, 4), delta_kps=1.0, delta_ske=1.0)
    assert m_kps[0, 0].sum() == 9  # union of two plus-shaped discs (5 pixels each, sharing (2, 1))
    np.testing.assert_array_equal(m_ske[0, 0].numpy()[:3, 1:4], np.ones((3, 3)))
    assert m_ske[0, 0, 3].sum() == 0 and m_ske[0, 0, :, 0].tolist() == [0, 1, 0, 0]


def test_scca_spatial_attention_is_window_local_and_channel_matches_manual():
    torch.manual_seed(0)
    att = SCCrossAttention(dim=8, heads=2, window=4).eval()
    q, kv = torch.randn(1, 8, 8, 6), torch.randn(1, 8, 8, 6)
    qs, kvs = q.flatten(2).transpose(1, 2), kv.flatten(2).transpose(1, 2)
    base = att.spatial(qs, kvs, 8, 6)
    kv2 = kv.clone()
    kv2[:, :, 0, 0] += 5.0  # inside window (rows 0-3, cols 0-3)
    moved = att.spatial(qs, kv2.flatten(2).transpose(1, 2), 8, 6).view(1, 8, 6, 8)
    diff = (moved - base.view(1, 8, 6, 8)).abs().sum(-1)[0]
    assert diff[:4, :4].min() > 0 and diff[4:].max() == 0 and diff[:4, 4:].max() == 0
    # channel attention: channels of Q attend to channels of K over the N positions (head by head)
    b, n, c = qs.shape
    qh = att.q_c(qs).view(b, n, 2, 4).permute(0, 2, 3, 1)
    k, v = att.kv_c(kvs).view(b, n, 2, 2, 4).permute(2, 0, 3, 4, 1)
    w = torch.softmax(qh @ k.transpose(-1, -2) / math.sqrt(n), dim=-1)
    manual = att.proj_c((w @ v).permute(0, 3, 1, 2).reshape(b, n, c))
    torch.testing.assert_close(att.channel(qs, kvs), manual, atol=1e-5, rtol=1e-4)
    assert att(q, kv).shape == q.shape


def test_sgdd_shapes_and_bottleneck():
    dec = SGDD(17, 64, width=64, mults=(1, 1, 2, 2), blocks=2)
    seen = {}
    dec.mid.register_forward_hook(lambda m, i, o: seen.update(mid=o.shape))
    out = dec(torch.zeros(2, 17, 64, 48), torch.zeros(2, 64, 64, 48), torch.tensor([3, 999]))
    assert out.shape == (2, 17, 64, 48)
    assert seen["mid"] == (2, 128, 8, 6)  # 2C x H/8 x W/8 (paper)
    odd = SGDD(16, 8, width=8, mults=(1, 2, 2), blocks=1)
    assert odd(torch.zeros(1, 16, 15, 11), torch.zeros(1, 8, 15, 11), torch.tensor([0])).shape == (1, 16, 15, 11)


def test_sampler_schedule_and_init():
    net = DiffusionPoseNet(17, COCO_SKELETON, arch="tiny", heatmap_size=(12, 16), sigma=1.0, width=8,
                           mults=(1, 2), blocks=1, heads=2, window=4).eval()
    assert net.timesteps_for(5) == [999, 749, 500, 250, 0]
    img = torch.randn(2, 3, 64, 48)
    _, coarse = net.features(img)
    torch.testing.assert_close(net.heatmaps(img, 0), coarse)  # steps=0: the conv initialisation
    assert net.heatmaps(img, 3).shape == (2, 17, 16, 12)
    batch = {"img": img, "target": torch.rand(2, 17, 16, 12), "target_weight": torch.ones(2, 17),
             "keypoints_hm": torch.rand(2, 17, 2) * 10}
    loss, logs = net.loss(batch, torch.Generator().manual_seed(0))
    assert loss.item() == pytest.approx(logs["loss_dec"] + logs["loss_hm"], rel=1e-5)


def test_high_resolution_sgdd_heatmap_scale_2():
    net = DiffusionPoseNet(16, [(0, 1), (1, 2)], arch="tiny", heatmap_size=(24, 32), sigma=2.0, width=8,
                           mults=(1, 2), blocks=1, heads=2, window=4)
    img = torch.randn(2, 3, 64, 48)  # s = 2: heatmaps at 32 x 24 while HRNet features are 16 x 12
    fea, coarse = net.features(img)
    assert fea.shape[-2:] == (32, 24) and coarse.shape == (2, 16, 32, 24)
    batch = {"img": img, "target": torch.rand(2, 16, 32, 24), "target_weight": torch.ones(2, 16),
             "keypoints_hm": torch.rand(2, 16, 2) * 20}
    assert torch.isfinite(net.loss(batch)[0])
    assert net.eval().heatmaps(img, 2).shape == (2, 16, 32, 24)
