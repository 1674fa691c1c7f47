"""The best positions of an array that holds every position's score."""

from __future__ import annotations

import numpy as np


def best_positions(scores: np.ndarray, k: int, above: float | None = None) -> np.ndarray:
    """The ``k`` positions with the highest scores, best first, with only scores
    ``above`` a bound where one is given; ties go to the lower position."""
    if above is not None:
        kept = np.flatnonzero(scores > above)  # in order, so lower stays lower
        return kept[best_positions(scores[kept], k)]
    cut = len(scores) - k
    if cut > 0:  # those above the k-th best score, then the lowest positions that tie with it
        kth = np.partition(scores, cut)[cut]
        better = np.flatnonzero(scores > kth)
        positions = np.concatenate([better, np.flatnonzero(scores == kth)[: k - len(better)]])
    else:
        positions = np.arange(len(scores))
    return positions[np.lexsort((positions, -scores[positions]))]
