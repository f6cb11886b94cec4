"""Predict final accuracy from early training and score the predictions against the truth.

Predictors (all see only the first ``early`` epochs of a candidate):

- ``capacitance`` — Jiang et al. 2024: Bayesian ridge regression of validation accuracy on β_eff
  over the early epochs, extrapolated to β_eff = 0 (the converged state), with its uncertainty;
- ``early_accuracy`` — the validation accuracy at the last early epoch;
- ``curve_fit`` — learning-curve extrapolation: ``acc(t) = a − b·t^(−c)`` fitted to the early
  validation accuracies, predicting the asymptote a;
- ``n_params`` — the backbone's parameter count (bigger ranks higher);
- ``logme`` — LogME of the backbone's features on the target (You et al., ICML 2021);
- ``naswot`` — log|K_H| of the backbone's activation patterns on target inputs (Mellor et al.,
  ICML 2021), computed here on the trained backbone rather than at initialisation;
- ``neg_alpha_hat`` — minus WeightWatcher's α̂ (Martin & Mahoney, Nat. Commun. 2021), a data-free
  heavy-tail metric of the backbone's weight spectra (lower α̂ is better, so its negative ranks).

Scores over candidates: Kendall τ and Spearman ρ against the true final accuracy, top-1 regret
(true accuracy of the best candidate minus that of the one picked) and, for predictors of accuracy,
the mean absolute error; each with a bootstrap 95 % interval over candidates.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

ACCURACY_METHODS = ("capacitance", "early_accuracy", "curve_fit")


def capacitance_prediction(beta: np.ndarray, accuracy: np.ndarray) -> tuple[float, float]:
    """(predicted accuracy at β_eff = 0, its standard deviation) by Bayesian ridge regression."""
    from sklearn.linear_model import BayesianRidge

    beta, accuracy = np.asarray(beta, float), np.asarray(accuracy, float)
    ok = np.isfinite(beta) & np.isfinite(accuracy)
    if ok.sum() < 2:
        return math.nan, math.nan
    model = BayesianRidge().fit(beta[ok, None], accuracy[ok])
    mean, std = model.predict(np.zeros((1, 1)), return_std=True)
    return float(mean[0]), float(std[0])


def curve_fit_prediction(epochs: np.ndarray, accuracy: np.ndarray) -> float:
    """Asymptote a of ``acc(t) = a − b t^(−c)`` fitted to the early curve (the last value when
    fewer than three points or the fit fails), capped to [0, 1]."""
    t, acc = np.asarray(epochs, float), np.asarray(accuracy, float)
    if len(t) < 3:
        return float(acc[-1])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            (a, _, _), _ = optimize.curve_fit(lambda x, a, b, c: a - b * x ** (-c), t, acc,
                                              p0=(min(1.0, acc[-1] + 0.05), max(1e-3, acc[-1] - acc[0]), 1.0),
                                              bounds=([0, 0, 0.05], [1, 10, 5]), maxfev=5000)
    except (RuntimeError, ValueError):
        return float(acc[-1])
    return float(np.clip(a, 0, 1))


def logme(features: np.ndarray, labels: np.ndarray) -> float:
    """LogME (You, Liu, Wang & Long, ICML 2021): the mean over classes of the maximised log
    evidence per sample of a Bayesian linear model from features to one-hot labels. Higher is better."""
    f = np.asarray(features, np.float64)
    n, d = f.shape
    v, s, _ = np.linalg.svd(f.T @ f)
    evidences = []
    for k in np.unique(labels):
        y = (labels == k).astype(np.float64)
        projected = v.T @ (f.T @ y)
        alpha, beta, lam = 1.0, 1.0, 1.0
        for _ in range(11):
            gamma = float((s / (s + lam)).sum())
            m = v @ (projected * beta / (alpha + beta * s))
            alpha_de = float(m @ m)
            alpha = gamma / (alpha_de + 1e-5)
            beta_de = float(((y - f @ m) ** 2).sum())
            beta = (n - gamma) / (beta_de + 1e-5)
            new_lam = alpha / beta
            if abs(new_lam - lam) / lam < 0.01:
                break
            lam = new_lam
        evidence = (d / 2 * math.log(alpha) + n / 2 * math.log(beta) - 0.5 * float(np.log(alpha + beta * s).sum())
                    - beta / 2 * (beta_de + 1e-5) - alpha / 2 * (alpha_de + 1e-5) - n / 2 * math.log(2 * math.pi))
        evidences.append(evidence / n)
    return float(np.mean(evidences))


def naswot(codes: np.ndarray) -> float:
    """log|K_H| with ``K_H = C Cᵀ + (1 − C)(1 − C)ᵀ`` for binary activation codes C (inputs × units):
    inputs that the network separates into different linear regions give a larger determinant."""
    c = np.asarray(codes, np.float64)
    sign, logdet = np.linalg.slogdet(c @ c.T + (1 - c) @ (1 - c).T)
    return float(logdet) if sign > 0 else -math.inf


def layer_alpha(weight: np.ndarray) -> tuple[float, float]:
    """(α, λ_max) of one layer: the power-law exponent of the tail of the eigenvalues of
    ``WᵀW / N`` (convolutions reshaped to out × in·taps), fitted by maximum likelihood with the
    tail start chosen to minimise the Kolmogorov–Smirnov distance (Clauset et al. 2009)."""
    W = np.asarray(weight, np.float64).reshape(weight.shape[0], -1)
    if min(W.shape) < 4:
        return math.nan, math.nan
    lam = np.sort(np.linalg.svd(W, compute_uv=False) ** 2 / max(W.shape))
    lam = lam[lam > 1e-12 * lam[-1]]
    best = (math.inf, math.nan)
    for i in range(len(lam) // 2, len(lam) - 2):  # candidate tail starts: the upper half
        tail = lam[i:]
        alpha = 1 + len(tail) / np.log(tail / tail[0]).sum()
        empirical = np.arange(len(tail)) / len(tail)
        model = 1 - (tail / tail[0]) ** (1 - alpha)
        ks = float(np.abs(empirical - model).max())
        if ks < best[0]:
            best = (ks, float(alpha))
    return best[1], float(lam[-1])


def alpha_hat(weights: list[np.ndarray]) -> float:
    """WeightWatcher's α̂ = mean over layers of α · log10(λ_max) (layers too small to fit skipped)."""
    values = [a * math.log10(m) for a, m in map(layer_alpha, weights) if np.isfinite(a) and m > 0]
    return float(np.mean(values)) if values else math.nan


def _scores(pred: np.ndarray, truth: np.ndarray, accuracy_valued: bool) -> dict[str, float]:
    ok = ~np.isnan(pred) & np.isfinite(truth)
    pred, truth = pred[ok], truth[ok]
    if np.isinf(pred).any():  # e.g. a singular NASWOT kernel: ranks below every finite score
        finite = pred[np.isfinite(pred)]
        low, high = (finite.min(), finite.max()) if finite.size else (0.0, 0.0)
        pred = np.where(pred == -np.inf, low - 1, np.where(pred == np.inf, high + 1, pred))
    out = {"kendall_tau": math.nan, "spearman_rho": math.nan, "top1_regret": math.nan, "mae": math.nan}
    if len(pred) >= 2 and np.ptp(pred) > 0 and np.ptp(truth) > 0:
        out["kendall_tau"] = float(stats.kendalltau(pred, truth).statistic)
        out["spearman_rho"] = float(stats.spearmanr(pred, truth).statistic)
    if len(pred):
        out["top1_regret"] = float(truth.max() - truth[int(np.argmax(pred))])
        if accuracy_valued:
            out["mae"] = float(np.abs(pred - truth).mean())
    return out


def score_methods(table: pd.DataFrame, methods: list[str], truth: str = "true_accuracy",
                  n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One row per method: τ, ρ, top-1 regret, MAE and their bootstrap 95 % intervals."""
    rng = np.random.default_rng(seed)
    y = table[truth].to_numpy(float)
    rows: list[dict[str, Any]] = []
    n = len(table)
    boot_index = rng.integers(0, n, size=(n_boot, n)) if n else np.zeros((0, 0), int)
    for method in methods:
        pred = table[method].to_numpy(float)
        acc = method in ACCURACY_METHODS
        row: dict[str, Any] = {"method": method, "candidates": int((~np.isnan(pred)).sum()), **_scores(pred, y, acc)}
        samples = [_scores(pred[idx], y[idx], acc) for idx in boot_index]
        for key in ("kendall_tau", "spearman_rho", "top1_regret", "mae"):
            values = np.array([s[key] for s in samples], float)
            values = values[np.isfinite(values)]
            interval = np.percentile(values, [2.5, 97.5]) if values.size else (math.nan, math.nan)
            row[f"{key}_lo"], row[f"{key}_hi"] = float(interval[0]), float(interval[1])
        rows.append(row)
    return pd.DataFrame(rows)
