"""vidlib's model zoo. Importing this package registers every model.

One file per paper's contribution, plus the shared parts:

- ``_registry.py``: ``register_model``, ``create_model``, ``list_models``, ``make_cfg``
  and ``with_cfg`` (the one way an entrypoint attaches ``model.default_cfg``);
- ``common.py``: ``check_clip`` (every model's input check) and ``ClsHead``
  (pool -> dropout -> fc_cls);
- ``resnet2d.py``: the shared 2D ResNet, the 2D recognizer and TSN;
- ``tsm.py``: TSM (temporal shift);
- ``tam.py``: TANet's Temporal Adaptive Module (arXiv 2005.06803) and the official TAM
  checkpoint layout;
- ``tin.py``: the Temporal Interlacing Network (arXiv 2001.06499) and the official TIN
  checkpoint layout;
- ``resnet3d.py``: the 3D ResNet (SlowOnly, full-3D reference), the 3D recognizer and
  2D -> 3D inflation;
- ``tpn.py``: the Temporal Pyramid Network neck and heads (arXiv 2004.03548);
- ``csn.py``: Channel-Separated Networks, ir and ip (arXiv 1904.02811);
- ``vit.py``: the generic image-ViT parts and their initialisation from an image ViT
  checkpoint;
- ``stam.py``: STAM, spatial ViT + temporal transformer (arXiv 2103.13915).
"""

# the registry, and every model module for its side effect: it registers its models
from . import _registry, csn, resnet2d, resnet3d, stam, tam, tin, tpn, tsm  # noqa: F401
from ._registry import *  # noqa: F403 (create_model, list_models, make_cfg ...)

__all__ = list(_registry.__all__)
