"""torchvision's ImageNet ResNet-18 in plain torch, without its classifier (512-d features).

Parameter names are torchvision's, so its ``resnet18-f37072fd.pth`` loads as is (``fc.*`` is
accepted and dropped).  torchvision itself is not needed.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from tilesearch.errors import ModelError

WEIGHTS_FILE = "resnet18-f37072fd.pth"
WEIGHTS_URL = f"https://download.pytorch.org/models/{WEIGHTS_FILE}"
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        skip = x if self.downsample is None else self.downsample(x)
        return F.relu(y + skip)


class ResNet18(nn.Module):
    """ResNet-18 trunk; ``forward`` returns the 512-d average-pooled features."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.layer1 = _layer(64, 64, 1)
        self.layer2 = _layer(64, 128, 2)
        self.layer3 = _layer(128, 256, 2)
        self.layer4 = _layer(256, 512, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return x.mean(dim=(2, 3))


def _layer(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1))


def normalise(x: torch.Tensor) -> torch.Tensor:
    """uint8-valued float NCHW -> ImageNet-normalised input."""
    mean = torch.tensor(MEAN, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(STD, dtype=x.dtype).view(1, 3, 1, 1)
    return (x / 255.0 - mean) / std


def build(state_dict: dict[str, torch.Tensor]) -> ResNet18:
    """An eval-mode ResNet-18 holding `state_dict` (strict, except ``fc.*`` is ignored)."""
    trunk = {k: v for k, v in state_dict.items() if not k.startswith("fc.")}
    model = ResNet18()
    try:
        model.load_state_dict(trunk, strict=True)
    except RuntimeError as exc:
        raise ModelError(f"weights do not fit ResNet-18: {exc}") from exc
    return model.eval()


def download_weights() -> Path:
    """Fetch the ImageNet weights into the torch hub cache; ModelError says what to do if not."""
    cached = Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILE
    try:
        torch.hub.load_state_dict_from_url(WEIGHTS_URL, map_location="cpu", progress=False)
    except Exception as exc:
        raise ModelError(
            f"ResNet-18 ImageNet weights are not available and cannot be downloaded "
            f"({exc.__class__.__name__}: {exc}). Pass --weights PATH (weights= in Python) "
            f"pointing at {WEIGHTS_FILE}, or place that file at {cached} "
            f"(it is {WEIGHTS_URL})."
        ) from exc
    if not cached.is_file():
        raise ModelError(f"downloaded ResNet-18 weights but cannot find them at {cached}")
    return cached
