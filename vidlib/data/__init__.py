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

from .annotations import (
    STHV1_FLIP_LABEL_MAP,
    VideoRecord,
    read_label_map,
    read_rawframe_list,
    read_video_list,
    write_label_map,
    write_video_list,
)
from .cache import FrameCache, shared_frame_cache
from .dataset import (
    DataWarning,
    VideoDataset,
    average_views,
    build_dataset,
    forward_views,
    load_meta,
    loader_throughput,
)
from .loader import EpochSampler, SeededSamples, make_loader
from .samplers import (
    SAMPLERS,
    DenseSampleFrames,
    PlaybackSpeed,
    SampleFrames,
    STAMSampleFrames,
    build_sampler,
)
from .transforms import (
    CenterCrop,
    ColorJitter,
    Compose,
    Flip,
    MultiScaleCrop,
    RandomResizedCrop,
    Resize,
    ResizeShort,
    TenCrop,
    ThreeCrop,
    ToModelInput,
    build_transform,
)
from .video import BACKENDS, VideoReader, VideoReadError, diagnose, write_video

__all__ = [
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
    "SampleFrames",
    "DenseSampleFrames",
    "STAMSampleFrames",
    "build_sampler",
    "PlaybackSpeed",
    "SAMPLERS",
    "Compose",
    "ResizeShort",
    "Resize",
    "MultiScaleCrop",
    "RandomResizedCrop",
    "CenterCrop",
    "ThreeCrop",
    "TenCrop",
    "Flip",
    "ColorJitter",
    "ToModelInput",
    "build_transform",
    "VideoDataset",
    "DataWarning",
    "build_dataset",
    "average_views",
    "forward_views",
    "load_meta",
    "make_loader",
    "EpochSampler",
    "SeededSamples",
    "loader_throughput",
    "FrameCache",
    "shared_frame_cache",
]
