"""Training of consistency models: iCT, consistency distillation and EDM pre-training (pure PyTorch).

Entry points: `train(TrainConfig.load(path))`, or `cstudio train CONFIG` via `cli.add_cli`.
"""

from .config import TrainConfig
from .ema import EMA
from .losses import CDLoss, EDMLoss, ICTLoss, ict_num_scales, pseudo_huber
from .trainer import Trainer, train

__all__ = ["CDLoss", "EDMLoss", "EMA", "ICTLoss", "TrainConfig", "Trainer", "ict_num_scales", "pseudo_huber", "train"]
