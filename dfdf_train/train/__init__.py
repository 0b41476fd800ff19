"""Training one of the recipe's models (the ``train`` command,
:mod:`dfdf_train.commands.train`; docs/training.md).

``config`` (the settings, their YAML file, what --resume may change), ``run`` (one
process's model, optimiser, warm-up phases, step, devices and DDP), ``loop`` (the loop,
validation, metrics, checkpoints). Names are imported from their module when first used,
so the settings are read without torch.
"""
import importlib

_EXPORTS = {
    "OPTIMIZERS": "config", "PRECISIONS": "config", "RESUME_MAY_CHANGE": "config",
    "TrainConfig": "config", "config_from_args": "config", "read_yaml": "config",
    "resumed_config": "config",
    "CHECKPOINT_FORMAT": "loop", "Metrics": "loop", "atomic_save": "loop", "train": "loop",
    "validate": "loop",
    "Run": "run", "cpu_plan": "run", "lr_factor": "run", "pick_device": "run",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
