"""Pure `nn.Module`s of the world model: tokenizers, the dynamics transformer, heads (no I/O)."""

from genworld.models.config import CorruptionConfig, WorldModelConfig, from_dict, to_dict
from genworld.models.world_model import WorldModel

__all__ = ["CorruptionConfig", "WorldModel", "WorldModelConfig", "from_dict", "to_dict"]
