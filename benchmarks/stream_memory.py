"""Peak resident memory of a Session on an image folder too large to hold in memory.

``python benchmarks/stream_memory.py [--images 10000] [--size 224] [--in-memory]``

Writes `--images` generated JPEG images (10 class folders) to a temporary folder, then runs a
fresh child process that opens ``Session("mobilenet_v2", folder, weights="none")``, measures
the activation ranges (calibration split), the float32 variant and an int8 variant on the
test split (a fifth of the images), and prints its peak resident set size after each step
(``ru_maxrss``). With ``--in-memory`` the child first reads every image into one array and
gives the Session that array instead (what the workbench did before data was streamed).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CLASSES = 10


def generate(folder: Path, count: int, size: int, seed: int = 0) -> None:
    """`count` smooth colour images with noise, as JPEG, spread over CLASSES folders."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    ramp = np.linspace(0.0, 1.0, size, dtype=np.float32)
    for index in range(count):
        label = index % CLASSES
        corners = rng.uniform(0, 255, (2, 3)).astype(np.float32)
        image = corners[0] + (corners[1] - corners[0]) * ramp[:, None, None] * ramp[None, :, None]
        image += rng.normal(0, 12, (size, size, 3)).astype(np.float32)
        target = folder / f"class{label}"
        target.mkdir(parents=True, exist_ok=True)
        pixels = np.clip(image, 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(target / f"{index:05d}.jpg", quality=90)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def child(folder: Path, size: int, in_memory: bool) -> dict[str, float]:
    from workbench import QuantConfig
    from workbench.session import Session

    record: dict[str, float] = {}
    started = time.perf_counter()
    data: object = folder
    if in_memory:  # every image read into one uint8 array, as before streaming
        from workbench.datasets.sources import image_reader

        files = sorted(folder.rglob("*.jpg"))
        pixels = image_reader(files, (size, size), "RGB")(np.arange(len(files)))
        data = (pixels, np.array([int(f.parent.name[len("class") :]) for f in files]))
    session = Session(f"mobilenet_v2@{size}", data, weights="none")
    record["open_mb"] = peak_mb()
    session.inspect()
    record["activation_ranges_mb"] = peak_mb()
    session.evaluate(QuantConfig(mode="float32"))
    record["float32_mb"] = peak_mb()
    session.evaluate(QuantConfig(mode="int8", calibration_samples=100))
    record["int8_mb"] = peak_mb()
    record["test_samples"] = len(session.data.test)
    record["seconds"] = time.perf_counter() - started
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--in-memory", action="store_true")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child, args.size, args.in_memory)))
        return
    with tempfile.TemporaryDirectory(prefix="workbench-images-") as name:
        started = time.perf_counter()
        generate(Path(name), args.images, args.size)
        disk = sum(f.stat().st_size for f in Path(name).rglob("*.jpg")) / 2**20
        print(
            f"{args.images} images of {args.size}x{args.size}: {disk:.0f} MB of JPEG, "
            f"written in {time.perf_counter() - started:.0f} s; float32 in memory would be "
            f"{args.images * args.size * args.size * 3 * 4 / 2**30:.1f} GB",
            flush=True,
        )
        command = [sys.executable, __file__, "--child", name, "--size", str(args.size)]
        if args.in_memory:
            command.append("--in-memory")
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit("child failed:\n" + "\n".join(done.stderr.splitlines()[-15:]))
        record = json.loads(done.stdout.strip().splitlines()[-1])
        mode = "in memory" if args.in_memory else "streamed"
        print(f"{mode}: " + ", ".join(f"{k} {v:.0f}" for k, v in record.items()))


if __name__ == "__main__":
    main()
