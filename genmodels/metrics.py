"""Sample-quality metrics computed with the MNIST classifier: Frechet distance, class histogram, confidence."""

import torch


def frechet_distance(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (N, F) and (M, F).

    d^2 = |m_a - m_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))   (Heusel et al. 2017; Dowson & Landau 1982).

    tr (S_a S_b)^(1/2) is computed as the sum of square roots of the eigenvalues of the symmetric
    matrix S_a^(1/2) S_b S_a^(1/2), which has the same eigenvalues as S_a S_b; all in float64.
    """
    a, b = features_a.double(), features_b.double()
    mean_a, mean_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.atleast_2d(torch.cov(a.T)), torch.atleast_2d(torch.cov(b.T))
    values, vectors = torch.linalg.eigh(cov_a)
    sqrt_a = vectors @ torch.diag(values.clamp(min=0).sqrt()) @ vectors.T
    cross = torch.linalg.eigvalsh(sqrt_a @ cov_b @ sqrt_a).clamp(min=0).sqrt().sum()
    d2 = (mean_a - mean_b).pow(2).sum() + cov_a.trace() + cov_b.trace() - 2 * cross
    return float(d2.clamp(min=0))


def class_report(probabilities: torch.Tensor, threshold: float = 0.9) -> dict:
    """What the classifier sees in a set of images: the predicted-class histogram and the share
    of images it classifies with confidence above ``threshold`` (a digit-likeness rate)."""
    confidence, predicted = probabilities.max(-1)
    return {
        "histogram": torch.bincount(predicted, minlength=probabilities.shape[-1]).tolist(),
        "confident_rate": float((confidence > threshold).float().mean()),
    }
