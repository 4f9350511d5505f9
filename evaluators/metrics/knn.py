"""Weighted k-nearest-neighbour classification of frozen features (a representation's kNN probe).

Wu et al. 2018 (InstDisc) as DINO ``eval_knn.py::knn_classifier`` implements it: features
L2-normalised, cosine similarity of each test feature to every training feature, the ``k`` most
similar training samples vote for their class with weight ``exp(similarity / temperature)``;
top-1 is the share of test samples whose highest-voted class is their label.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def knn_top1(train: torch.Tensor, train_labels: torch.Tensor, test: torch.Tensor, test_labels: torch.Tensor,
             num_classes: int, k: int = 20, temperature: float = 0.07, chunk: int = 1024) -> float:
    """Top-1 accuracy (percent) of the weighted kNN classifier (DINO ``knn_classifier``)."""
    tr = F.normalize(torch.as_tensor(train).double(), dim=1)
    te = F.normalize(torch.as_tensor(test).double(), dim=1)
    ytr = torch.as_tensor(train_labels).long()
    yte = torch.as_tensor(test_labels).long()
    k = min(int(k), len(tr))
    correct = 0
    for s in range(0, len(te), chunk):
        sim, idx = (te[s:s + chunk] @ tr.T).topk(k, dim=1)
        votes = torch.zeros(len(idx), num_classes, dtype=torch.float64)
        votes.scatter_add_(1, ytr[idx], (sim / temperature).exp())
        correct += int((votes.argmax(1) == yte[s:s + chunk]).sum())
    return 100.0 * correct / max(len(te), 1)
