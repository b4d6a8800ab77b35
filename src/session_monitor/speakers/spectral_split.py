"""Two-way spectral split of speech chunks, a second start for the two-voice clustering.

Chunks are compared two by two with the generalized likelihood ratio (GLR) of one
full-covariance Gaussian for both against one each; the affinity ``exp(-GLR /
median GLR)`` is split by the sign of its Fiedler vector (Shi and Malik 2000,
normalized cut). :class:`speakers.TwoSpeakers` runs this split beside its main-axis
start during a session's first chunks and keeps it only where its normalized cut is
lower (docs/attribution.md, third to fifth rounds).

All inputs are sufficient statistics (frame count, sum, sum of outer products), as
stored by the clustering; no frames are needed.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["fiedler_split", "glr_affinity", "normalized_cut"]

#: Chunk covariances are shrunk this much towards the pooled one (80-100 frames do not
#: estimate the 190 parameters of a 19-dimensional covariance).
SPECTRAL_SHRINK = 0.3


def glr_affinity(n: np.ndarray, s1: np.ndarray, s2: np.ndarray, pooled_cov: np.ndarray) -> np.ndarray:
    """``exp(-GLR / median GLR)`` between every two chunks, ``(chunks, chunks)``, zero diagonal.

    Parameters
    ----------
    n : np.ndarray, shape (chunks,)
        Frames per chunk.
    s1 : np.ndarray, shape (chunks, d)
        Sum of each chunk's frames.
    s2 : np.ndarray, shape (chunks, d, d)
        Sum of each chunk's frame outer products.
    pooled_cov : np.ndarray, shape (d, d)
        The session's pooled covariance, the shrinkage target (``SPECTRAL_SHRINK``).

    GLR is per frame: the log-likelihood gain of one Gaussian per chunk over one for
    both, each at its maximum-likelihood estimate.
    """

    def logdet(nn: np.ndarray, a1: np.ndarray, a2: np.ndarray) -> np.ndarray:
        m = a1 / nn[:, None]
        c = a2 / nn[:, None, None] - m[:, :, None] * m[:, None, :]
        return np.linalg.slogdet((1 - SPECTRAL_SHRINK) * c + SPECTRAL_SHRINK * pooled_cov)[1]

    own = logdet(n, s1, s2)
    i, j = np.triu_indices(len(n), 1)
    nn = n[i] + n[j]
    glr = np.zeros((len(n), len(n)))
    glr[i, j] = (nn * logdet(nn, s1[i] + s1[j], s2[i] + s2[j]) - n[i] * own[i] - n[j] * own[j]) / nn
    glr += glr.T
    aff = np.exp(-glr / max(float(np.median(glr[i, j])), 1e-9))
    np.fill_diagonal(aff, 0.0)
    return aff


def fiedler_split(aff: np.ndarray) -> np.ndarray:
    """Two-way spectral split (Shi and Malik 2000, normalized cut): the sign of the second
    generalized eigenvector of the affinity's Laplacian, 0/1 per row, shape ``(chunks,)``."""
    deg = aff.sum(axis=1) + 1e-12
    _, vecs = np.linalg.eigh(np.eye(len(aff)) - aff / np.sqrt(deg[:, None] * deg[None, :]))
    return (vecs[:, 1] / np.sqrt(deg) > 0).astype(int)


def normalized_cut(aff: np.ndarray, labels: np.ndarray) -> float:
    """Normalized cut of a two-way split ``labels`` (0/1 per row; lower: the two sides are
    less alike); ``inf`` when a side is empty."""
    cut = float(aff[labels == 0][:, labels == 1].sum())
    vol0, vol1 = float(aff[labels == 0].sum()), float(aff[labels == 1].sum())
    return cut / vol0 + cut / vol1 if vol0 > 0 and vol1 > 0 else math.inf
