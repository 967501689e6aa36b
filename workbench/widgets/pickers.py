"""Model and data pickers: demo names, or an uploaded .keras / .h5 / .tflite / .npz file."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import ipywidgets as w

from workbench.errors import DataError, ModelFileError, WorkbenchError
from workbench.widgets.state import AppState
from workbench.widgets.tasks import TaskState, TaskStatus
from workbench.widgets.view import View, styled

MODEL_SUFFIXES = (".keras", ".h5", ".tflite")
DATA_SUFFIXES = (".npz",)


def _uploaded(change_value: Any) -> tuple[str, bytes] | None:
    """(file name, content) of the first file of a FileUpload value, if any."""
    files = list(change_value or ())
    if not files:
        return None
    item = files[0]
    return str(item["name"]), bytes(item["content"])


def saved_upload(name: str, content: bytes, suffixes: tuple[str, ...], what: str) -> Path:
    """Write an upload to a private temporary folder, after checking its suffix."""
    if not name.lower().endswith(suffixes):
        error = ModelFileError if what == "model" else DataError
        raise error(f"upload {name!r}: expected a {' / '.join(suffixes)} {what} file")
    path = Path(tempfile.mkdtemp(prefix="workbench-upload-")) / Path(name).name
    path.write_bytes(content)
    return path


class PickerView(View):
    """Dropdowns of the demo models and datasets and two upload buttons."""

    def __init__(self, state: AppState, load: Any) -> None:
        from workbench.datasets import DATASET_NAMES
        from workbench.models import DEMO_MODELS
        from workbench.models.pretrained import ARCHITECTURES

        self.state = state
        self._load = load  # load(model, data, name) submits the background job
        self._syncing = False
        self.model = styled(
            w.Dropdown(options=[*DEMO_MODELS, *ARCHITECTURES], description="Model", value=None),
            "wb-model",
        )
        self.model_upload = styled(
            w.FileUpload(accept=",".join(MODEL_SUFFIXES), description="Upload model"),
            "wb-model-upload",
        )
        self.data = styled(
            w.Dropdown(options=["(model's own)", *DATASET_NAMES], description="Data"), "wb-data"
        )
        self.data_upload = styled(
            w.FileUpload(accept=",".join(DATA_SUFFIXES), description="Upload .npz"),
            "wb-data-upload",
        )
        self.widget = styled(
            w.HBox([self.model, self.model_upload, self.data, self.data_upload]), "wb-pickers"
        )
        self.model.observe(self._on_model, "value")
        self.data.observe(self._on_data, "value")
        self.model_upload.observe(self._on_model_upload, "value")
        self.data_upload.observe(self._on_data_upload, "value")
        state.observe(lambda _: self._sync(), ["model_name", "dataset_name"])
        self._sync()

    def _data_spec(self) -> Any:
        return None if self.data.index in (None, 0) else self.data.value

    def _sync(self) -> None:
        self._syncing = True
        try:
            name = self.state.model_name
            if name and name not in self.model.options:
                self.model.options = [*self.model.options, name]
            self.model.value = name or None
        finally:
            self._syncing = False

    def _fail(self, message: str) -> None:
        self.state.status = TaskStatus(TaskState.FAILED, message=message)

    def _on_model(self, change: dict[str, Any]) -> None:
        if not self._syncing and change["new"] and change["new"] != self.state.model_name:
            self._load(change["new"], self._data_spec(), change["new"])

    def _on_data(self, _change: dict[str, Any]) -> None:
        session = self.state.session
        if not self._syncing and session is not None:
            self._load(session.model, self._data_spec(), self.data.value)

    def _on_model_upload(self, change: dict[str, Any]) -> None:
        upload = _uploaded(change["new"])
        if upload is None:
            return
        try:
            path = saved_upload(*upload, MODEL_SUFFIXES, "model")
        except (WorkbenchError, OSError) as error:
            self._fail(str(error))
            return
        self._load(path, self._data_spec(), path.name)

    def _on_data_upload(self, change: dict[str, Any]) -> None:
        upload = _uploaded(change["new"])
        session = self.state.session
        if upload is None or session is None:
            return
        try:
            path = saved_upload(*upload, DATA_SUFFIXES, "data")
        except (WorkbenchError, OSError) as error:
            self._fail(str(error))
            return
        self._load(session.model, path, path.name)
