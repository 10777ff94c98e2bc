"""genmodels: an interactive zoo of deep generative models for teaching.

``genmodels.load(source)`` loads any checkpoint (a local folder or a Hub repo id).
"""

from genmodels.checkpoint import CheckpointError, list_checkpoints
from genmodels.data import DatasetNotFoundError, load_dataset
from genmodels.registry import load

__version__ = "0.1.0"
__all__ = ["CheckpointError", "DatasetNotFoundError", "list_checkpoints", "load", "load_dataset"]
