"""vidlib.engine: training, evaluation, recipes and the command line (``python -m vidlib ...``).

- :class:`TrainConfig` holds every option of a run (frozen; vary it with ``dataclasses.replace``);
  :class:`Trainer` runs one, :func:`train` is the one-call form, and :func:`train_many` runs several
  configs at once (one process per CPU core; in turn on a GPU);
- :func:`evaluate` runs the multi-view test protocol and returns top-1/top-5/mean-class accuracy, the
  per-class table and the confusion matrix;
- :mod:`.recipes` holds the papers' training and test settings as plain data (:func:`get_recipe`);
- :mod:`.optim` (parameter groups, schedules), :mod:`.checkpoint` (atomic, resumable training checkpoints),
  :mod:`.distributed` (torchrun / DDP), :mod:`.metrics`, :mod:`.cli`.

Plots of runs and the chapters' experiment helpers are in the book layer (``vidbook.figures``,
``vidbook.experiments``).
"""

from .config import TrainConfig, TrainState
from .evaluation import evaluate, evaluate_recipe
from .metrics import (
    classification_report,
    confusion_matrix,
    mean_class_accuracy,
    pair_accuracy,
    per_class_accuracy,
    per_pair_accuracy,
    topk_accuracy,
)
from .optim import build_optimizer, build_scheduler, lr_factor, param_groups, scale_lr
from .parallel import train_many
from .recipes import RECIPES, format_recipe, get_recipe, list_recipes
from .training import NonFiniteLossError, RunSummary, Trainer, plan_epochs, train

__all__ = [
    "TrainConfig",
    "TrainState",
    "Trainer",
    "train",
    "train_many",
    "plan_epochs",
    "evaluate",
    "evaluate_recipe",
    "RunSummary",
    "NonFiniteLossError",
    "RECIPES",
    "get_recipe",
    "list_recipes",
    "format_recipe",
    "param_groups",
    "build_optimizer",
    "build_scheduler",
    "lr_factor",
    "scale_lr",
    "topk_accuracy",
    "mean_class_accuracy",
    "confusion_matrix",
    "per_class_accuracy",
    "classification_report",
    "pair_accuracy",
    "per_pair_accuracy",
]
