"""`shapes`: a procedurally generated 32x32 RGB image dataset of ten classes.

Each image is one figure (or texture) at a random position and size. Figure and background
each get an independent random colour with a smooth random colour texture on top, plus a
little pixel noise: some figures are faint against their background, so the task has a real
ceiling below 100 %. Generation is vectorised numpy and deterministic by seed, so any size of
dataset costs milliseconds and needs no download.
"""

from __future__ import annotations

import numpy as np

from workbench.datasets.base import Dataset, Preprocessing, Split
from workbench.datasets.splits import split_arrays

SIZE = 32
TEXTURE = 50.0  # amplitude of the smooth colour texture, in 0..255 units
TEXTURE_GRID = 4  # the texture is bilinear over a 4x4 grid of random colours
NOISE = 6.0  # pixel noise standard deviation, in 0..255 units
CLASS_NAMES = (
    "disc",
    "square",
    "triangle",
    "cross",
    "ring",
    "horizontal stripes",
    "vertical stripes",
    "diagonal stripes",
    "checkerboard",
    "dots",
)


def _masks(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Boolean figure masks, shape (N, SIZE, SIZE), one random instance of each sample's class."""
    count = len(labels)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    cx = rng.uniform(10, 22, (count, 1, 1)).astype(np.float32)
    cy = rng.uniform(10, 22, (count, 1, 1)).astype(np.float32)
    radius = rng.uniform(5, 10, (count, 1, 1)).astype(np.float32)
    period = rng.uniform(4, 8, (count, 1, 1)).astype(np.float32)
    phase = rng.uniform(0, 8, (count, 1, 1)).astype(np.float32)
    dx, dy = xx - cx, yy - cy
    inside = (np.abs(dx) <= radius) & (np.abs(dy) <= radius)
    bar = radius / 3
    shapes = [
        dx**2 + dy**2 <= radius**2,
        inside,
        (dy <= radius) & (dy >= np.abs(dx) * 2 - radius),
        inside & ((np.abs(dx) <= bar) | (np.abs(dy) <= bar)),
        np.abs(np.sqrt(dx**2 + dy**2) - radius * 0.75) <= radius / 4,
        inside & (((yy + phase) % period) < period / 2),
        inside & (((xx + phase) % period) < period / 2),
        inside & (((xx + yy + phase) % period) < period / 2),
        inside & ((((xx + phase) // (period / 1.5)) + ((yy + phase) // (period / 1.5))) % 2 == 0),
        inside
        & (
            (((xx + phase) % period) - period / 2) ** 2
            + (((yy + phase) % period) - period / 2) ** 2
            <= (period / 4) ** 2
        ),
    ]
    return np.choose(labels[:, None, None], shapes)


def _texture(count: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth colour variation (N, SIZE, SIZE, 3): random grid colours, bilinearly interpolated."""
    position = np.linspace(0, TEXTURE_GRID - 1, SIZE)
    weights = np.maximum(0, 1 - np.abs(position[:, None] - np.arange(TEXTURE_GRID)[None]))
    grid = rng.normal(0, 1, (count, TEXTURE_GRID, TEXTURE_GRID, 3))
    return np.einsum("yi,nijc,xj->nyxc", weights, grid, weights)


def generate_shapes(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`count` images as uint8 (N, 32, 32, 3) and their int64 labels, balanced over classes."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(count) % len(CLASS_NAMES)).astype(np.int64)
    masks = _masks(labels, rng)[..., None]
    background = rng.uniform(0, 255, (count, 1, 1, 3)) + TEXTURE * _texture(count, rng)
    colour = rng.uniform(0, 255, (count, 1, 1, 3)) + TEXTURE * _texture(count, rng)
    noise = rng.normal(0, NOISE, (count, SIZE, SIZE, 3))
    images = np.where(masks, colour, background) + noise
    return np.clip(images, 0, 255).astype(np.uint8), labels


PREPROCESSING = Preprocessing(scale=1 / 255, description="RGB bytes 0..255 scaled to 0..1")


VALIDATION_STREAM = 1_000_003  # seed offset of the validation images' own generation


def load_shapes(
    seed: int = 0,
    *,
    train: int = 4000,
    calibration: int = 200,
    test: int = 1000,
    validation: int = 2000,
) -> Dataset:
    """Train / calibration / test drawn from one seeded generation, stratified and disjoint;
    validation generated apart (its own seed), so the demo model never trained on it."""
    raw, labels = generate_shapes(train + calibration + test, seed)
    train_split, calibration_split, test_split, _ = split_arrays(
        PREPROCESSING.apply(raw), labels, calibration=calibration, test=test, seed=seed
    )
    validation_raw, validation_labels = generate_shapes(validation, seed + VALIDATION_STREAM)
    return Dataset(
        "shapes",
        train_split,
        calibration_split,
        test_split,
        validation=Split(PREPROCESSING.apply(validation_raw), validation_labels),
        num_classes=len(CLASS_NAMES),
        preprocessing=PREPROCESSING,
        class_names=CLASS_NAMES,
    )
