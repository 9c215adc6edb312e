"""RNN Workbench engine: hand-written recurrent cells, models, data, training and sampling in PyTorch."""

from .cells import GRUCell, LSTMCell, RNNCell
from .checkpoint import Checkpoint, CheckpointError
from .config import ConfigError, RunConfig
from .controls import Controls
from .data import CharCorpus, DataError, NamesData, Vocab
from .models import CharLM, NameClassifier
from .recurrent import Recurrent
from .trainer import DeviceError, Trainer

__all__ = [
    "CharCorpus", "CharLM", "Checkpoint", "CheckpointError", "ConfigError", "Controls", "DataError",
    "DeviceError", "GRUCell", "LSTMCell", "NameClassifier", "NamesData", "RNNCell", "Recurrent",
    "RunConfig", "Trainer", "Vocab",
]
__version__ = "0.1.0"
