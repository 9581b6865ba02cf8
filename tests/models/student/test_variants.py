"""Variant registry: parameter counts agree with an independent formula and with docs/models.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from pixvox.models import STUDENT_VARIANTS, build_student

DOCS = Path(__file__).resolve().parents[3] / "docs" / "models.md"
IN_CHANNELS, OUT_CHANNELS = 3, 20  # the docs table's convention: RGB in, ScanNet-20 head


def expected_parameter_count(
    block: str, layers, planes, init_dim: int, cin: int, cout: int, k: int = 3
) -> int:
    """Parameter count of a Res16UNet written out from the architecture description alone."""

    def conv(kernel: int, a: int, b: int) -> int:
        return kernel**3 * a * b

    def bn(c: int) -> int:
        return 2 * c  # weight and bias

    expansion = 1 if block == "basic" else 4

    def stage(inplanes: int, p: int, n: int) -> int:
        total, width = 0, inplanes
        for _ in range(n):
            if block == "basic":
                total += conv(k, width, p) + bn(p) + conv(k, p, p) + bn(p)
            else:
                total += conv(1, width, p) + bn(p) + conv(k, p, p) + bn(p) + conv(1, p, 4 * p) + bn(4 * p)
            if width != p * expansion:
                total += conv(1, width, p * expansion) + bn(p * expansion)
            width = p * expansion
        return total

    total = conv(3, cin, init_dim) + bn(init_dim)
    skips, width = [init_dim], init_dim
    for s in range(4):
        total += conv(2, width, width) + bn(width) + stage(width, planes[s], layers[s])
        width = planes[s] * expansion
        skips.append(width)
    for s in range(4, 8):
        up = planes[s]
        total += conv(2, width, up) + bn(up)
        total += stage(up + skips[7 - s], planes[s], layers[s])
        width = planes[s] * expansion
    return total + width * cout + cout


@pytest.fixture(scope="module")
def measured() -> dict[str, int]:
    counts = {}
    for name in STUDENT_VARIANTS:
        model = build_student(name, IN_CHANNELS, OUT_CHANNELS)
        counts[name] = sum(p.numel() for p in model.parameters())
        del model
    return counts


def test_counts_match_formula(measured):
    for name, spec in STUDENT_VARIANTS.items():
        want = expected_parameter_count(
            spec.block, spec.layers, spec.planes, spec.init_dim, IN_CHANNELS, OUT_CHANNELS
        )
        assert measured[name] == want, f"{name}: model has {measured[name]:,} parameters, formula {want:,}"


def test_docs_table_lists_measured_counts(measured):
    rows, column = {}, None
    for line in DOCS.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == "variant" and "parameters" in cells:
            column = cells.index("parameters")
        m = re.fullmatch(r"`(Res16UNet\w+)`", cells[0])
        if m and column is not None:
            rows[m.group(1)] = int(cells[column].replace(",", ""))
    assert set(rows) == set(STUDENT_VARIANTS), "docs/models.md variant table out of sync with the registry"
    wrong = {n: (rows[n], measured[n]) for n in rows if rows[n] != measured[n]}
    assert not wrong, f"docs/models.md parameter counts (docs, measured) differ: {wrong}"


def test_34c_is_the_standard_pretraining_backbone(measured):
    spec = STUDENT_VARIANTS["Res16UNet34C"]
    assert spec.layers == (2, 3, 4, 6, 2, 2, 2, 2)
    assert spec.planes == (32, 64, 128, 256, 256, 128, 96, 96)
    # ~37.85 M with a 20-class head, the figure commonly quoted for MinkUNet34C / Res16UNet34C
    assert 37.8e6 < measured["Res16UNet34C"] < 37.9e6


def test_overrides_reach_the_network():
    model = build_student("Res16UNet14", 3, 5, planes=(8, 8, 16, 16, 16, 16, 8, 8), init_dim=8, kernel_size=5)
    assert model.config["planes"] == (8, 8, 16, 16, 16, 16, 8, 8)
    assert model.block1[0].conv1.kernel.shape == (5**3, 8, 8)
    assert model.feature_channels == 8
    assert torch.Size(model.final.kernel.shape) == (8, 5)
