"""vidlib.data: from video files to model inputs, with the protocols behind the published numbers.

- :mod:`.video`: :class:`VideoReader` (decord, PyAV, rawframes) and :func:`write_video`.
- :mod:`.annotations`: mmaction2 video / rawframe lists and label maps.
- :mod:`.samplers`: :class:`SampleFrames`, :class:`DenseSampleFrames`, :class:`STAMSampleFrames`.
- :mod:`.transforms`: resize, MultiScaleCrop, RandomResizedCrop, Center/ThreeCrop, Flip with a label
  map, ColorJitter, normalisation (``torchvision.transforms.v2`` underneath).
- :mod:`.cache`: :class:`FrameCache`, decoded videos kept in memory for small datasets.
- :mod:`.dataset`: :class:`VideoDataset`, :func:`build_dataset`, :func:`average_views`,
  :func:`forward_views`.
- :mod:`.loader`: :func:`make_loader` (the seeded, resumable loader the trainer uses),
  :class:`EpochSampler`, :class:`SeededSamples`.
- :mod:`.synthetic`: the Something-Synthetic benchmark (``python -m vidlib.data.synthetic``).

Explained in: the book chapter "From video to tensor" (``book/data.md``).
"""

from . import cache, dataset, loader, samplers, transforms
from .annotations import (
    STHV1_FLIP_LABEL_MAP,
    VideoRecord,
    read_label_map,
    read_rawframe_list,
    read_video_list,
    write_label_map,
    write_video_list,
)
from .cache import *  # noqa: F403 (its __all__)
from .dataset import *  # noqa: F403 (its __all__)
from .loader import *  # noqa: F403 (its __all__)
from .samplers import *  # noqa: F403 (its __all__)
from .transforms import *  # noqa: F403 (its __all__)
from .video import BACKENDS, VideoReader, VideoReadError, diagnose, write_video

__all__ = [
    # the reading and listing functions (video and annotations have a few more)
    "VideoReader",
    "VideoReadError",
    "diagnose",
    "write_video",
    "BACKENDS",
    "VideoRecord",
    "read_video_list",
    "read_rawframe_list",
    "read_label_map",
    "write_video_list",
    "write_label_map",
    "STHV1_FLIP_LABEL_MAP",
    # every public name of these
    *samplers.__all__,
    *transforms.__all__,
    *dataset.__all__,
    *loader.__all__,
    *cache.__all__,
]
