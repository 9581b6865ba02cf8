"""The linear probe: multinomial logistic regression on frozen features, trained to convergence.

Deterministic full-batch L-BFGS (scipy's L-BFGS-B, no bounds) in float64 on the softmax cross-entropy
of every labeled point plus ``l2 / 2 · (‖W‖² + ‖b‖²)``. The penalty on the bias too makes the
objective strictly convex, so the optimum is unique and the fit is the same on every machine up to
rounding; it also keeps classes absent from the training rooms at a finite score.

Points inside one voxel share its feature, so the per-point loss is computed exactly from per-voxel
class counts: ``Σ_v Σ_c n_vc · (−log softmax(W x_v + b)_c) / Σ n`` (a voxel's features enter once,
weighted by its labeled points). Features are standardized with the training rows' mean and
standard deviation (count-weighted) before the fit; :class:`LinearProbe` keeps them for prediction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize

DEFAULT_L2 = 1e-4  #: small: the probe measures the features, not the regularizer
DEFAULT_MAX_ITER = 1000
GRAD_TOL = 1e-5  #: stop when the largest gradient component is below this (the loss is ~1-3 nats)


@dataclass
class LinearProbe:
    """A fitted probe. ``weight`` float64 ``[D, C]``, ``bias`` ``[C]``, applied to standardized features."""

    weight: np.ndarray
    bias: np.ndarray
    mean: np.ndarray  #: ``[D]`` feature mean of the training rows
    scale: np.ndarray  #: ``[D]`` their standard deviation (1 where constant)
    convergence: dict[str, float | int | bool | str] = field(default_factory=dict)

    def logits(self, x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x, np.float64) - self.mean) / self.scale
        return z @ self.weight + self.bias

    def affine(self) -> tuple[np.ndarray, np.ndarray]:
        """The probe on raw (unstandardized) features: ``(A [D, C], c [C])`` float64 with
        ``x @ A + c == logits(x)``, e.g. to load it into a network's linear layer."""
        a = self.weight / self.scale[:, None]
        return a, self.bias - self.mean @ a

    def predict(self, x: np.ndarray) -> np.ndarray:
        """int64 ``[N]`` class of every row of ``x`` ``[N, D]``."""
        return self.logits(x).argmax(1).astype(np.int64)


def class_counts(labels: np.ndarray, inverse: np.ndarray, num_rows: int, num_classes: int) -> np.ndarray:
    """``[num_rows, C]`` float64 count of labeled points (label ≥ 0) per row (voxel) and class.

    ``labels`` int ``[N]`` per point (-1 ignored), ``inverse`` int ``[N]`` each point's row."""
    keep = labels >= 0
    flat = inverse[keep].astype(np.int64) * num_classes + labels[keep].astype(np.int64)
    return (
        np.bincount(flat, minlength=num_rows * num_classes).reshape(num_rows, num_classes).astype(np.float64)
    )


def probe_objective(
    params: np.ndarray, z: np.ndarray, counts: np.ndarray, l2: float
) -> tuple[float, np.ndarray]:
    """(loss, gradient) of the flattened ``[W; b]`` (``(D + 1) · C``) for standardized ``z`` ``[V, D]``
    and class counts ``[V, C]`` (see the module doc)."""
    d, c = z.shape[1], counts.shape[1]
    w, b = params[: d * c].reshape(d, c), params[d * c :]
    logits = z @ w + b
    logits -= logits.max(1, keepdims=True)
    log_norm = np.log(np.exp(logits).sum(1, keepdims=True))
    log_p = logits - log_norm
    n_row = counts.sum(1, keepdims=True)
    total = float(n_row.sum())
    loss = -float((counts * log_p).sum()) / total + 0.5 * l2 * float(params @ params)
    g_logits = (np.exp(log_p) * n_row - counts) / total  # d loss / d logits
    grad = np.concatenate([(z.T @ g_logits).ravel(), g_logits.sum(0)]) + l2 * params
    return loss, grad


def fit_linear_probe(
    x: np.ndarray,
    counts: np.ndarray,
    *,
    l2: float = DEFAULT_L2,
    max_iter: int = DEFAULT_MAX_ITER,
    grad_tol: float = GRAD_TOL,
) -> LinearProbe:
    """Fit the probe on features ``x`` ``[V, D]`` with class counts ``counts`` ``[V, C]`` (rows without
    labels are dropped) until the largest gradient component is below ``grad_tol``.

    ``convergence`` records ``iterations``, ``final_loss``, ``grad_norm`` (L2 norm of the final
    gradient), ``grad_max``, ``last_loss_change`` (between the last two iterations), ``converged``
    (scipy's verdict) and scipy's ``message``."""
    x = np.asarray(x, np.float64)
    counts = np.asarray(counts, np.float64)
    if x.ndim != 2 or counts.ndim != 2 or x.shape[0] != counts.shape[0]:
        raise ValueError(f"features {x.shape} and counts {counts.shape} need the same number of rows")
    rows = counts.sum(1) > 0
    if not rows.any():
        raise ValueError("no labeled rows to fit the probe on")
    x, counts = x[rows], counts[rows]
    w_row = counts.sum(1) / counts.sum()
    mean = w_row @ x
    scale = np.sqrt(w_row @ (x - mean) ** 2)
    scale[scale < 1e-12] = 1.0
    z = (x - mean) / scale
    d, c = z.shape[1], counts.shape[1]
    history: list[float] = []

    def fun(p: np.ndarray) -> tuple[float, np.ndarray]:
        return probe_objective(p, z, counts, l2)

    def record(intermediate_result) -> None:  # scipy ≥ 1.11 passes an OptimizeResult
        history.append(float(intermediate_result.fun))

    res = minimize(
        fun,
        np.zeros((d + 1) * c),
        jac=True,
        method="L-BFGS-B",
        callback=record,
        options={"maxiter": max_iter, "gtol": grad_tol, "ftol": 1e-15, "maxcor": 20},
    )
    loss, grad = fun(res.x)
    change = abs(history[-1] - history[-2]) if len(history) >= 2 else float("nan")
    conv = {
        "method": "L-BFGS-B (scipy), float64, full batch",
        "l2": l2,
        "iterations": int(res.nit),
        "final_loss": float(loss),
        "grad_norm": float(np.linalg.norm(grad)),
        "grad_max": float(np.abs(grad).max()),
        "last_loss_change": float(change),
        "converged": bool(res.success),
        "message": str(res.message),
    }
    return LinearProbe(res.x[: d * c].reshape(d, c), res.x[d * c :], mean, scale, conv)
