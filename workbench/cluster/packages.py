"""What travels to the workers: a model's file bytes and a dataset's arrays, named by content hash.

The client packs each model once (`pack_model`: the bytes of its file, a tar of a SavedModel
folder, or a Keras object saved as `.keras`) and each dataset once (`pack_data`: the
calibration and test splits). Workers unpack a package (`unpack_model`) and keep it keyed by
its hash (`workbench.cluster.worker`), so a model's bytes cross the network once per worker, not
once per task.
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

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
SAVED_MODEL_SUFFIX = ".savedmodel.tar"


@dataclass(frozen=True, repr=False)
class ModelPackage:
    """A model as bytes: `key` is their content hash (the Keras fingerprint for a model object)."""

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


def pack_model(spec: Any) -> ModelPackage:
    """A package for a demo name, a model file or SavedModel folder, or a Keras model object."""
    from workbench.models.loading import DEMO_DIR, DEMO_MODELS, load_model

    if isinstance(spec, str) and spec in DEMO_MODELS:
        payload = (DEMO_DIR / f"{spec}.keras").read_bytes()
        return ModelPackage(spec, _digest(payload), ".keras", payload)
    if isinstance(spec, str | Path):
        path = Path(spec)
        if path.is_dir() and (path / "saved_model.pb").exists():
            payload = _tar(path)
            return ModelPackage(path.name, _digest(payload), SAVED_MODEL_SUFFIX, payload)
        if path.is_file() and path.suffix in (*KERAS_SUFFIXES, ".tflite"):
            payload = path.read_bytes()
            name = path.name if path.suffix == ".tflite" else path.stem  # as load_model names it
            return ModelPackage(name, _digest(payload), path.suffix, payload)
        load_model(path)  # raises the loader's one-line error for this path
    if hasattr(spec, "layers") and hasattr(spec, "save"):
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "model.keras"
            spec.save(path)
            payload = path.read_bytes()
        return ModelPackage(spec.name, load_model(spec).fingerprint, ".keras", payload)
    raise ModelFileError(
        f"model {spec!r}: a sweep takes demo names, model files, SavedModel folders or Keras models"
    )


def pack_data(spec: Any, test_samples: int | None) -> DataPackage:
    """A package of the dataset `load_dataset(spec)` gives, without its train split and with
    its first `test_samples` test samples (None: all)."""
    from workbench.datasets import load_dataset

    return _light(load_dataset(spec).head_test(test_samples))


def _light(dataset: Any) -> DataPackage:
    light = dataclasses.replace(dataset, train=dataset.train.head(0))
    return DataPackage(light.fingerprint, light)


def pack_session(session: Any) -> tuple[ModelPackage, DataPackage]:
    """The model and data of a loaded `Session`, as they are in it: the model saved (a Keras
    model as `.keras`), the data already resized, preprocessed and cut to its test samples."""
    source = session.model
    if source.keras_model is not None:
        model = pack_model(source.keras_model)
    elif source.saved_model_dir is not None:
        model = pack_model(source.saved_model_dir)
    elif source.tflite_bytes is not None:
        payload = source.tflite_bytes
        model = ModelPackage(source.name, _digest(payload), ".tflite", payload)
    else:
        raise ModelFileError(
            f"model {source.name!r}: a model given as concrete functions cannot travel to "
            "workers; save it (.keras or a SavedModel folder) and give the file"
        )
    model = dataclasses.replace(model, name=source.name)
    data = session.data
    if data is None:
        raise DataError(f"model {source.name!r}: give the Session data to measure on workers")
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
