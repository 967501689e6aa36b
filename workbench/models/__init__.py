"""Models: the demo models and every user model form, loaded as a `ModelSource`."""

from workbench.models.loading import DEFAULT_MODEL, DEMO_MODELS, check_model_path, load_model
from workbench.models.source import ModelSource, SourceKind

__all__ = [
    "DEFAULT_MODEL",
    "DEMO_MODELS",
    "ModelSource",
    "SourceKind",
    "check_model_path",
    "load_model",
]
