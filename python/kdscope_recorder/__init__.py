"""kdscope_recorder: write KDScope run files (format version 1) from your own PyTorch
training loop. See docs/recorder.md in the KDScope repository."""

from .recorder import (FORMAT_VERSION, EvalWriter, RecorderError, RunRecorder, __version__, ce_objective,
                       count_parameters, kd_objective)
from .hooks import CaptureError, capture

__all__ = ["RunRecorder", "EvalWriter", "RecorderError", "capture", "CaptureError", "ce_objective",
           "kd_objective", "count_parameters", "FORMAT_VERSION", "__version__"]
