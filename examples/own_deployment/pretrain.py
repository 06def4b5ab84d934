"""Pre-train ``nets:build`` on patches the clients do not hold, and save the starting checkpoint ``start.pt``.

The clients' image folder is cut with seed 0; pre-training uses 200 other patches per
class (seed 1), normalised with the statistics ``leakage`` computes from the image folder,
so the checkpoint is what a team would fine-tune from. 30 epochs of SGD with momentum,
batches of 32, one torch thread: a few seconds here.

Usage: python examples/own_deployment/pretrain.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from leakage import load_dataset
from nets import build
from patches import CLASSES, cut_patches

HERE = Path(__file__).resolve().parent


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(1)
    folder = load_dataset("folder", path=str(HERE / "images"), size=[32, 32])  # its normalisation
    patches = cut_patches(per_class=200, seed=1)
    raw = np.stack([p for name in CLASSES for p in patches[name]]).astype(np.float32) / 255.0
    inputs = (torch.from_numpy(raw).permute(0, 3, 1, 2) - folder.mean) / folder.std
    targets = torch.arange(len(CLASSES)).repeat_interleave(200)
    model = build(folder.input_shape, folder.num_classes)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(30):
        order = torch.randperm(len(inputs))
        for start in range(0, len(order), 32):
            batch = order[start : start + 32]
            optimizer.zero_grad()
            F.cross_entropy(model(inputs[batch]), targets[batch]).backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(folder.inputs).argmax(1) == folder.targets).float().mean()
    torch.save(model.state_dict(), HERE / "start.pt")
    print(f"wrote {HERE / 'start.pt'}; accuracy on the clients' image folder: {float(accuracy):.3f}")


if __name__ == "__main__":
    main()
