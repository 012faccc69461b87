"""vidlib: video action-recognition models and the tools to verify and reproduce them.

The companion library of the book *Video Recognition, Reproduced*. Data flows one way:
``vidlib.data`` -> ``vidlib.models`` -> ``vidlib.engine`` -> the book.
"""

from .models import create_model, list_models
from .utils import get_device, is_quick, num_params, project_root, seed_everything, show_source, source_of

__version__ = "0.1.0"
__all__ = [
    "create_model",
    "list_models",
    "get_device",
    "is_quick",
    "num_params",
    "project_root",
    "seed_everything",
    "show_source",
    "source_of",
    "__version__",
]
