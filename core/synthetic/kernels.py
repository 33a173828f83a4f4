"""Reconstruction kernels of rendered CT: partial-volume blur, a soft, standard or sharp kernel, noise.

:func:`reconstruct` finishes one rendered sample (:func:`core.synthetic.synth_ct.render`): it draws
a kernel with :data:`KERNELS`' shares, blurs the image as the kernel would and adds noise whose
final sd lies in the kernel's range (:data:`KERNEL_NOISE`), whatever the filter does to it.
"""

from __future__ import annotations

import numpy as np


def pick(rng: np.random.Generator, shares) -> int:
    """Index drawn with probabilities ``shares`` (normalised), one uniform draw."""
    c = np.cumsum(np.asarray(shares, np.float64))
    return min(int(np.searchsorted(c, rng.random() * c[-1], side="right")), len(c) - 1)


def blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Separable 3-tap Gaussian-like blur of the [S, S, C] image's two spatial axes, in place."""
    if sigma <= 0.2:
        return x
    w = float(np.exp(-0.5 / sigma ** 2))
    w = w / (1 + 2 * w)
    centre = np.empty_like(x)
    tmp = np.empty_like(x)
    for axis in (0, 1):  # slices along the axis on x itself: each pass runs in memory order
        lead = (slice(None),) * axis
        lo, hi, first, last = lead + (slice(None, -1),), lead + (slice(1, None),), lead + (0,), lead + (-1,)
        np.copyto(centre, x)
        x *= 1 - 2 * w
        x[hi] += np.multiply(w, centre[lo], out=tmp[lo])
        x[lo] += np.multiply(w, centre[hi], out=tmp[hi])
        x[first] += w * centre[first]
        x[last] += w * centre[last]
    return x


# Reconstruction kernels: share of the samples, partial-volume blur sigma (px) and final noise
# sd (HU). Soft kernels on thick slices give smooth, correlated noise of a few HU; sharp
# kernels on thin slices raise edges and noise (unsharp mask, up to ~40 HU sd).
KERNELS = {"soft": 0.35, "standard": 0.4, "sharp": 0.25}
KERNEL_BLUR = {"soft": (0.6, 1.2), "standard": (0.3, 0.8), "sharp": (0.5, 1.0)}  # sharp: its unsharp mask
KERNEL_NOISE = {"soft": (3.0, 15.0), "standard": (5.0, 25.0), "sharp": (10.0, 40.0)}


def blur_gain(sigma: float) -> float:
    """Noise sd factor of :func:`blur` (both axes) on white noise."""
    if sigma <= 0.2:
        return 1.0
    w = float(np.exp(-0.5 / sigma ** 2))
    w = w / (1 + 2 * w)
    return (1 - 2 * w) ** 2 + 2 * w ** 2  # per axis variance factor, squared for two axes = sd factor


def reconstruct(x: np.ndarray, rng: np.random.Generator) -> str:
    """Partial-volume blur, kernel and noise of one [S, S, C] sample, in place; returns the kernel.

    The final noise sd is drawn from the kernel's range (:data:`KERNEL_NOISE`), whatever
    the filter does to it. One blur per sample: the kernel's filter is also its partial-volume blur.
    """
    names = list(KERNELS)
    kind = names[pick(rng, [KERNELS[k] for k in names])]
    sigma = rng.uniform(*KERNEL_BLUR[kind])
    lo, hi = KERNEL_NOISE[kind]
    noise_sd = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    noise = rng.standard_normal(x.shape, dtype=np.float32)
    if kind == "soft":  # noise through the smooth kernel too: correlated, scaled back to noise_sd
        noise *= noise_sd / blur_gain(sigma)
        x += noise
        blur(x, sigma)
    elif kind == "sharp":  # high-boost (unsharp mask) of image and noise: edges and noise rise
        amount = rng.uniform(0.5, 1.5)
        w = float(np.exp(-0.5 / max(sigma, 0.21) ** 2))
        w = w / (1 + 2 * w)
        g1 = np.array([w, 1 - 2 * w, w])
        k = -amount * np.outer(g1, g1)
        k[1, 1] += 1 + amount
        noise *= noise_sd / float(np.sqrt((k ** 2).sum()))
        x += noise
        np.copyto(noise, x)  # reuse the buffer for the blurred copy
        blur(noise, max(sigma, 0.21))
        noise *= amount
        x *= 1 + amount
        x -= noise
    else:
        blur(x, sigma)
        noise *= noise_sd
        x += noise
    return kind
