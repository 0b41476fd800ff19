"""Preprocessing: labelled videos -> face-clip shards (the ``preprocess`` command,
:mod:`dfdf_train.commands.preprocess`, says what it writes; docs/preprocess.md).

One module per job: ``groups`` (videos -> groups, and a run's part of them), ``work``
(one group -> its samples and reports), ``pool`` (groups over worker processes),
``commit`` (shards and the resumable commit log), ``runner`` (:func:`preprocess`),
``config`` (the settings). Names are imported from their module when first used.
"""
import importlib

_EXPORTS = {
    "MANIFEST": "commit", "SKIPPED": "commit", "finished_groups": "commit",
    "merge_reports": "commit", "read_manifest": "commit",
    "DetectorSpec": "config", "PreprocessConfig": "config",
    "Group": "groups", "plan": "groups", "resolve_shard": "groups", "shard_groups": "groups",
    "Summary": "runner", "preprocess": "runner",
    "GroupResult": "work", "Sample": "work", "Skip": "work", "probe_rotation": "work",
    "process_group": "work",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
