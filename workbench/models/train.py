"""Train the demo models reproducibly: ``python -m workbench.models.train [--model NAME]``.

Writes ``workbench/demo/<name>.keras`` (weights only, no optimizer state) and
``<name>.json`` (recipe, seed, float test accuracy), each atomically.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from workbench.files import write_atomically
from workbench.models.architectures import build_digits_cnn, build_shapes_mobilenet

DEMO_DIR = Path(__file__).resolve().parent.parent / "demo"
SEED = 0
RECIPES: dict[str, dict[str, Any]] = {
    "digits_cnn": {
        "dataset": "digits",
        "build": build_digits_cnn,
        "architecture": {},
        "epochs": 30,
        "batch_size": 32,
        "learning_rate": 2e-3,
    },
    "shapes_mobilenet": {
        "dataset": "shapes",
        "build": build_shapes_mobilenet,
        # BatchNorm epsilon 1e-5 (PyTorch's default) and a high learning rate: as in real
        # MobileNets, some channels die, their BatchNorm variance collapses, and folding gives
        # their depthwise kernels far wider ranges than the rest (int8 per-tensor suffers)
        "architecture": {"bn_epsilon": 1e-5},
        "epochs": 20,
        "batch_size": 64,
        "learning_rate": 3e-2,
    },
}


def train(name: str, out_dir: Path = DEMO_DIR) -> dict[str, Any]:
    """Train one demo model from its recipe; return the metadata written beside it."""
    import keras

    from workbench.datasets import load_dataset

    recipe = RECIPES[name]
    keras.utils.set_random_seed(SEED)
    data = load_dataset(recipe["dataset"], seed=SEED)
    model = recipe["build"](**recipe["architecture"])
    schedule = keras.optimizers.schedules.CosineDecay(
        recipe["learning_rate"],
        decay_steps=recipe["epochs"] * -(-len(data.train) // recipe["batch_size"]),
    )
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    started = time.perf_counter()
    model.fit(
        data.train.x,
        data.train.y,
        epochs=recipe["epochs"],
        batch_size=recipe["batch_size"],
        shuffle=True,
        verbose=0,
    )
    seconds = time.perf_counter() - started
    predictions = model.predict(data.test.x, verbose=0).argmax(axis=1)
    accuracy = float((predictions == data.test.y).mean())
    metadata = {
        "name": name,
        "dataset": recipe["dataset"],
        "seed": SEED,
        "architecture": recipe["architecture"],
        "epochs": recipe["epochs"],
        "batch_size": recipe["batch_size"],
        "optimizer": f"Adam, cosine decay from {recipe['learning_rate']}, no weight decay",
        "parameters": int(model.count_params()),
        "train_seconds": round(seconds, 1),
        "test_accuracy": accuracy,
        "test_samples": len(data.test),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    untrained = recipe["build"](**recipe["architecture"])
    untrained.set_weights(model.get_weights())
    write_atomically(out_dir / f"{name}.keras", untrained.save)
    write_atomically(
        out_dir / f"{name}.json",
        lambda path: Path(path).write_text(json.dumps(metadata, indent=2) + "\n"),
    )
    return metadata


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(RECIPES), action="append")
    args = parser.parse_args(argv)
    for name in args.model or sorted(RECIPES):
        print(json.dumps(train(name)))


if __name__ == "__main__":
    main()
