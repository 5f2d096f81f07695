"""Qt-free application state: document, history, brush, parameters, jobs, settings, model catalog."""

from .brush import BrushSettings, BrushTool, Stroke
from .catalog import TEST_MODEL, ModelInfo, read_model_info, scan_models
from .document import Document, Snapshot
from .history import History
from .jobs import (BatchDone, BatchRequest, ImportDone, ImportRequest, JobFailed, JobIds, JobRequest, JobResult,
                   LoadModelRequest, ModelReady, Progress)
from .params import STEP_CHOICES, TASK_LABELS, GenerationParams, Task
from .settings import Settings, load_settings, save_settings

__all__ = [
    "STEP_CHOICES", "TASK_LABELS", "TEST_MODEL", "BatchDone", "BatchRequest", "BrushSettings", "BrushTool", "Document",
    "GenerationParams", "History", "ImportDone", "ImportRequest", "JobFailed", "JobIds", "JobRequest", "JobResult",
    "LoadModelRequest", "ModelInfo",
    "ModelReady", "Progress", "Settings", "Snapshot", "Stroke", "Task", "load_settings", "read_model_info",
    "save_settings", "scan_models",
]
