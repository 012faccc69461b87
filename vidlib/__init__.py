"""vidlib: video action-recognition models and the tools to train, test and verify them.

The companion library of the book *Video Recognition, Reproduced*. Data flows one way:
``vidlib.data`` -> ``vidlib.models`` -> ``vidlib.engine``. The book's page logic (tables, figures,
claims, reports) is a separate package, ``vidbook``, that this library never imports.
"""

from .models import create_model, list_models
from .utils import get_device, num_params, seed_everything

__version__ = "0.1.0"
__all__ = [
    "create_model",
    "list_models",
    "get_device",
    "num_params",
    "seed_everything",
    "__version__",
]
