"""The linear probe against independent references: a separable toy set and a float64 Newton fit."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import approx_fprime

from pixvox.evaluation.probe import class_counts, fit_linear_probe, probe_objective


def _one_hot(labels: np.ndarray, c: int) -> np.ndarray:
    y = np.zeros((labels.size, c))
    y[np.arange(labels.size), labels] = 1.0
    return y


def test_separable_toy_set_is_classified_perfectly_and_converges():
    rng = np.random.default_rng(0)
    centers = np.array([[4.0, 0.0], [-4.0, 0.0], [0.0, 4.0]])
    labels = rng.integers(0, 3, 300)
    x = centers[labels] + rng.uniform(-1, 1, (300, 2))  # boxes of half-width 1: separable by a margin
    probe = fit_linear_probe(x, _one_hot(labels, 3), l2=1e-6, grad_tol=1e-8)
    assert (probe.predict(x) == labels).all()
    conv = probe.convergence
    assert conv["converged"] and conv["grad_max"] < 1e-6
    # with a tiny penalty the optimum has a near-zero loss: nothing is left to gain
    assert conv["final_loss"] < 0.01


def _newton_reference(z: np.ndarray, counts: np.ndarray, l2: float) -> np.ndarray:
    """Newton's method with the exact Hessian, float64: an independent optimizer of the same objective."""
    d, c = z.shape[1], counts.shape[1]
    za = np.hstack([z, np.ones((z.shape[0], 1))])  # [V, D+1]: bias as a last feature
    theta = np.zeros((d + 1, c))
    n_row = counts.sum(1)
    total = n_row.sum()
    for _ in range(50):
        logits = za @ theta
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        grad = za.T @ (p * n_row[:, None] - counts) / total + l2 * theta
        # Hessian of the weighted softmax cross-entropy, blocks (c, c') of size (D+1)²
        h = np.zeros(((d + 1) * c, (d + 1) * c))
        for a in range(c):
            for b in range(c):
                w = n_row * p[:, a] * ((a == b) - p[:, b]) / total
                h[a::c, b::c] = (za * w[:, None]).T @ za
        h += l2 * np.eye(h.shape[0])
        step = np.linalg.solve(h, grad.ravel())
        theta -= step.reshape(d + 1, c)
        if np.abs(step).max() < 1e-13:
            break
    return theta


def test_matches_a_float64_newton_fit_on_a_non_separable_set():
    rng = np.random.default_rng(1)
    v, d, c = 400, 5, 4
    x = rng.normal(size=(v, d)) * rng.uniform(0.5, 3, d) + rng.normal(size=d)
    true_w = rng.normal(size=(d, c))
    logits = (x - x.mean(0)) @ true_w
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    # several labeled points per voxel, drawn from the softmax: classes overlap (not separable)
    counts = np.stack([rng.multinomial(rng.integers(1, 6), pi) for pi in p]).astype(np.float64)
    l2 = 1e-3
    probe = fit_linear_probe(x, counts, l2=l2, grad_tol=1e-9)
    z = (x - probe.mean) / probe.scale
    ref = _newton_reference(z, counts, l2)
    np.testing.assert_allclose(probe.weight, ref[:d], atol=2e-5)
    np.testing.assert_allclose(probe.bias, ref[d], atol=2e-5)
    assert probe.convergence["converged"]


def test_voxel_counts_give_the_per_point_loss():
    """Weighting voxels by their labeled points equals the mean loss over the points themselves."""
    rng = np.random.default_rng(2)
    n, v, d, c = 500, 60, 3, 5
    inverse = rng.integers(0, v, n)
    labels = rng.integers(-1, c, n)  # -1: ignored points
    z = rng.normal(size=(v, d))
    params = rng.normal(size=(d + 1) * c)
    counts = class_counts(labels, inverse, v, c)
    loss, _ = probe_objective(params, z, counts, 0.0)
    keep = labels >= 0
    logits = z[inverse[keep]] @ params[: d * c].reshape(d, c) + params[d * c :]
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    assert loss == pytest.approx(-logp[np.arange(keep.sum()), labels[keep]].mean(), rel=1e-12)


def test_gradient_matches_finite_differences():
    rng = np.random.default_rng(3)
    z, counts = rng.normal(size=(30, 3)), rng.integers(0, 3, (30, 4)).astype(np.float64)
    params = rng.normal(size=16)
    _, grad = probe_objective(params, z, counts, 0.01)
    num = approx_fprime(params, lambda p: probe_objective(p, z, counts, 0.01)[0], 1e-7)
    np.testing.assert_allclose(grad, num, atol=1e-5)


def test_no_labeled_rows_is_an_error():
    with pytest.raises(ValueError, match="no labeled rows"):
        fit_linear_probe(np.zeros((3, 2)), np.zeros((3, 4)))


def test_affine_form_gives_the_probe_logits_on_raw_features(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(3.0, 5.0, (200, 6)) * rng.uniform(0.1, 10, 6)
    counts = np.eye(3)[rng.integers(0, 3, 200)]
    probe = fit_linear_probe(x, counts)
    a, c = probe.affine()
    z = (x - probe.mean) / probe.scale  # the standardized form, written out
    np.testing.assert_allclose(x @ a + c, z @ probe.weight + probe.bias, rtol=1e-10, atol=1e-9)
