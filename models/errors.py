"""The root of every error raised by :mod:`models`.

Each class below means one documented condition; the CLI turns any of them into a one-line
message by catching :class:`ModelsError`, never by looking at module names. The root is a
:class:`RuntimeError`, so code that catches ``RuntimeError`` still catches all of them; the
data and unlearning errors are also :class:`ValueError`, because they mean "bad input". The
tree::

    RuntimeError
    └── ModelsError                  base of everything raised here
        ├── CacheError               an activation cache is missing, or lacks a record
        ├── CheckpointError          a checkpoint is missing or its bytes are corrupt
        ├── IsolationError           a training step moved a group it must leave alone
        ├── NoLiveShardError         every shard is dead: the ensemble serves nothing
        ├── RunError                 a local training run cannot start or be read back
        ├── DataError (ValueError)   invalid, missing or unreadable data
        ├── FieldError               a bad value in one imported row (becomes a DataError)
        ├── UnlearningError (ValueError)
        │                            an approximate method or family misused, or bad inputs
        └── _DuplicateKeyError       a JSON object repeats a key (becomes a DataError)

They live next to the code that raises them: ``models.cache``, ``models.checkpoints``,
``models.s3t``, ``models.ensemble``, ``models.run``, ``models.data.errors``,
``models.data.fields``, ``models.approximate.base`` and ``models.data.formats``.

Stdlib only: :mod:`models.data` imports this module and must stay free of torch.
"""

from __future__ import annotations


class ModelsError(RuntimeError):
    """Base class: a documented failure of the models layer."""
