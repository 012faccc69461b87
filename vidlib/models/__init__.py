"""vidlib's model zoo. Importing this package registers every model.

One file per paper's contribution:

- ``resnet2d.py``: the shared 2D ResNet backbone, the TSN/TSM head and the 2D recognizer;
- ``tsm.py``: TSN and TSM (temporal shift);
- ``tam.py``: TANet's Temporal Adaptive Module (arXiv 2005.06803);
- ``tin.py``: the Temporal Interlacing Network (arXiv 2001.06499);
- ``resnet3d.py``: the 3D ResNet (SlowOnly, full-3D reference) and the I3D head;
- ``tpn.py``: the Temporal Pyramid Network neck and heads (arXiv 2004.03548);
- ``csn.py``: Channel-Separated Networks, ir and ip (arXiv 1904.02811);
- ``stam.py``: STAM, spatial ViT + temporal transformer (arXiv 2103.13915).
"""
from ._registry import IMAGENET_MEAN, IMAGENET_STD, create_model, list_models, make_cfg, register_model
from . import resnet2d, tsm, tam, tin, resnet3d, tpn, csn, stam  # noqa: F401  (registers the models)

__all__ = ["create_model", "list_models", "register_model", "make_cfg", "IMAGENET_MEAN", "IMAGENET_STD"]
