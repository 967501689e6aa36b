"""What travels to the workers: a model's file bytes and a dataset's arrays, named by content hash.

The client loads and packs each model once (`pack_model`: the bytes of its file, a tar of a
SavedModel folder, or a Keras object or architecture built here saved as `.keras`) and each
dataset once per preparation (`pack_data`: the calibration and test splits, resized and
preprocessed for the model as `Session` does). Workers unpack a package (`unpack_model`) and
keep it keyed by its hash (`workbench.cluster.worker`), so a model's bytes cross the network
once per worker, not once per task.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.errors import DataError, ModelFileError

SAVED_MODEL_SUFFIX = ".savedmodel.tar"


@dataclass(frozen=True, repr=False)
class ModelPackage:
    """A model as bytes: `key` is their content hash (the Keras fingerprint for a model object,
    the name and weights for an architecture by name)."""

    name: str
    key: str
    suffix: str
    payload: bytes

    def __repr__(self) -> str:
        return f"ModelPackage({self.name!r}, {self.key}, {len(self.payload)} bytes)"


@dataclass(frozen=True, repr=False)
class DataPackage:
    """A dataset's calibration, validation and test splits as workers measure them (the train
    split stays home); `key` is its fingerprint."""

    key: str
    dataset: Any

    @property
    def name(self) -> str:
        return self.dataset.name

    def __repr__(self) -> str:
        return f"DataPackage({self.name!r}, {self.key})"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _tar(folder: Path) -> bytes:
    """The folder's files in a tar with fixed metadata, so equal folders give equal bytes."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                info = tarfile.TarInfo(str(path.relative_to(folder)))
                info.size, info.mtime, info.mode = path.stat().st_size, 0, 0o644
                tar.addfile(info, io.BytesIO(path.read_bytes()))
    return buffer.getvalue()


def pack_model(spec: Any, weights: str | None = None) -> tuple[ModelPackage, Any]:
    """A package for any model `load_model` takes (a demo name, an architecture name with
    `weights`, a model file or SavedModel folder, a Keras model), and its `ModelSource`,
    loaded here: a spec that cannot be loaded raises its one-line error before anything
    travels."""
    from workbench.engine.quiet import silenced
    from workbench.models import load_model, pretrained
    from workbench.models.loading import DEMO_DIR, DEMO_MODELS

    architecture = pretrained.parse_spec(spec, weights)
    with silenced():  # loading TensorFlow prints start-up chatter from C++
        source = load_model(architecture or spec, weights=weights)
    if architecture is not None:
        key = _architecture_key(architecture)
        return _keras_package(source.keras_model, source.name, key), source
    if isinstance(spec, str) and spec in DEMO_MODELS:
        spec = DEMO_DIR / f"{spec}.keras"
    if isinstance(spec, str | Path) and source.saved_model_dir is None:
        payload = Path(spec).read_bytes()  # the file as it is
        return ModelPackage(source.name, _digest(payload), Path(spec).suffix, payload), source
    return package_source(source), source


def _architecture_key(spec: Any) -> str:
    """What names an architecture's model across runs (its Keras layer names count up per
    process): its name, size and weights (a file by its content), and the Keras version."""
    import keras

    weights = spec.weights
    if weights not in ("imagenet", "none"):
        weights = _digest(Path(weights).read_bytes())
    return _digest(repr((spec.name, weights, keras.__version__)).encode())


def _keras_package(model: Any, name: str, key: str) -> ModelPackage:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.keras"
        model.save(path)
        payload = path.read_bytes()
    return ModelPackage(name, key, ".keras", payload)


def package_source(source: Any) -> ModelPackage:
    """The package of a loaded `ModelSource`: a Keras model saved as `.keras` (keyed by its
    fingerprint), a SavedModel folder as a tar, a `.tflite`'s bytes."""
    if source.keras_model is not None:
        return _keras_package(source.keras_model, source.name, source.fingerprint)
    if source.saved_model_dir is not None:
        payload = _tar(source.saved_model_dir)
        return ModelPackage(source.name, _digest(payload), SAVED_MODEL_SUFFIX, payload)
    if source.tflite_bytes is not None:
        payload = source.tflite_bytes
        return ModelPackage(source.name, _digest(payload), ".tflite", payload)
    raise ModelFileError(
        f"model {source.name!r}: a model given as concrete functions cannot travel to "
        "workers; save it (.keras or a SavedModel folder) and give the file"
    )


def pack_data(spec: Any, how: Any, test_samples: int | None) -> DataPackage:
    """A package of `spec` prepared as `how` says (`workbench.datasets.for_model`: resized,
    preprocessed, one array per input as the model needs), without its train split and with
    its first `test_samples` test samples (None: all)."""
    from workbench.datasets.for_model import prepare

    return _light(prepare(spec, how).head_test(test_samples))


def _light(dataset: Any) -> DataPackage:
    """Without the train split, and with inputs read from files (image folders, memory-mapped
    `.npz`, spilled `tf.data`) read into the package: workers elsewhere do not have the files."""
    from workbench.datasets.base import Split

    def carried(split: Split) -> Split:
        in_memory = getattr(split.x, "in_memory", None)
        return split if in_memory is None else Split(in_memory(), split.y)

    calibration = carried(dataset.calibration)
    same = dataset.validation is dataset.calibration  # the default: one split, read once
    light = dataclasses.replace(
        dataset,
        train=dataset.train.head(0),
        calibration=calibration,
        validation=calibration if same else carried(dataset.validation),
        test=carried(dataset.test),
    )
    return DataPackage(light.fingerprint, light)


def pack_session(session: Any) -> tuple[ModelPackage, DataPackage]:
    """The model and data of a loaded `Session`, as they are in it: the model saved (a Keras
    model as `.keras`), the data already resized, preprocessed and cut to its test samples."""
    model = package_source(session.model)
    data = session.data
    if data is None:
        raise DataError(f"model {model.name!r}: give the Session data to measure on workers")
    return model, _light(data)


def unpack_model(package: ModelPackage) -> Any:
    """The `ModelSource` of a package: its bytes written to a file named by the key, loaded."""
    from workbench.engine.quiet import silenced
    from workbench.files import write_bytes_atomically
    from workbench.models import load_model

    folder = Path(tempfile.gettempdir()) / "workbench-models"
    path = folder / f"{package.key}{package.suffix}"
    if not path.exists():
        write_bytes_atomically(path, package.payload)
    if package.suffix == SAVED_MODEL_SUFFIX:
        with tarfile.open(path) as tar:
            tar.extractall(folder / package.key, filter="data")
        path = folder / package.key
    with silenced():
        return load_model(path, name=package.name)
