"""The standard normal quantile and masses, in numpy (no scipy): what truncated normals sample with.

A truncated normal is sampled by inverse-CDF truncation, exact within the
bounds and free of rejection loops: ``u`` uniform on (0, 1) maps to
``x = mean + std * Phi^-1(Phi(a) + u * (Phi(b) - Phi(a)))``, with ``a, b`` the
standardised bounds. ``Phi`` at the two scalar bounds comes from
``math.erfc``; ``Phi^-1`` is Acklam's rational approximation (:func:`ndtri`,
relative error < 1.2e-9). Upper-tail probabilities are carried as complements
``1 - p`` computed directly, so bounds many standard deviations out on either
side keep full precision.
"""
from __future__ import annotations

import math

import numpy as np

# Acklam's rational approximation of the standard normal quantile.
_A = (-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
      1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00)
_B = (-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
      6.680131188771972e+01, -1.328068155288572e+01)
_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
      -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00)
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00)
_P_LOW = 0.02425
#: Bounds holding less normal mass than this are refused (keeps every probability > 0 in double).
MIN_MASS = 1e-280


def _tail(p):
    """Acklam's tail branch: the quantile of lower-tail probability ``p`` (0 < p < _P_LOW)."""
    q = np.sqrt(-2.0 * np.log(p))
    num = ((((_C[0] * q + _C[1]) * q + _C[2]) * q + _C[3]) * q + _C[4]) * q + _C[5]
    den = (((_D[0] * q + _D[1]) * q + _D[2]) * q + _D[3]) * q + 1.0
    return num / den


def ndtri(p, q=None) -> np.ndarray:
    """The standard normal quantile ``Phi^-1(p)``, vectorised (Acklam; relative error < 1.2e-9).

    ``q`` is ``1 - p`` when the caller has it more precisely than ``1 - p`` would be
    (upper tail); omitted, it is computed. ``p`` = 0 / 1 give -inf / +inf.
    """
    p = np.asarray(p, dtype=np.float64)
    q = 1.0 - p if q is None else np.asarray(q, dtype=np.float64)
    out = np.empty(np.broadcast(p, q).shape)
    p, q = np.broadcast_to(p, out.shape), np.broadcast_to(q, out.shape)
    lo, hi = p < _P_LOW, q < _P_LOW
    mid = ~(lo | hi)
    with np.errstate(divide="ignore", invalid="ignore"):
        out[lo] = _tail(p[lo])
        out[hi & ~lo] = -_tail(q[hi & ~lo])
    out[p <= 0] = -np.inf
    out[q <= 0] = np.inf
    r0 = p[mid] - 0.5
    r = r0 * r0
    out[mid] = ((((((_A[0] * r + _A[1]) * r + _A[2]) * r + _A[3]) * r + _A[4]) * r + _A[5]) * r0
                / (((((_B[0] * r + _B[1]) * r + _B[2]) * r + _B[3]) * r + _B[4]) * r + 1.0))
    return out


def phi(x: float) -> float:
    """``Phi(x)``, the standard normal CDF."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def phi_c(x: float) -> float:
    """``1 - Phi(x)``, computed directly (precise in the upper tail)."""
    return 0.5 * math.erfc(x / math.sqrt(2.0))


def normal_mass(a: float, b: float) -> float:
    """``Phi(b) - Phi(a)``, from the side where it is precise."""
    return phi_c(a) - phi_c(b) if a > 0 else phi(b) - phi(a)


__all__ = ["MIN_MASS", "ndtri", "normal_mass", "phi", "phi_c"]
