"""Exceptions raised by the kernel.

Every error names what was wrong (component, column, entity, file) so a user
can fix the call without reading kernel code. Lookups follow one convention:
``x()`` raises, ``get_x()`` returns ``None``.
"""
from __future__ import annotations


class SociusError(Exception):
    """Base class of every error the kernel raises on purpose."""


class ColumnTypeError(SociusError, TypeError):
    """A value's dtype does not fit the column it is assigned to."""


class ColumnShapeError(SociusError, ValueError):
    """A value's shape does not fit the column or the number of rows."""


class SchemaError(SociusError, TypeError):
    """A component or message schema is declared wrongly."""


class UnknownComponentError(SociusError, LookupError):
    """A component type (or column name) the world does not know."""


class MissingComponentError(SociusError, LookupError):
    """An entity does not have the component an operation needs."""


class DeadEntityError(SociusError, LookupError):
    """An entity ID that was never spawned or has been despawned."""


class ResourceError(SociusError, LookupError):
    """A resource type that is not in the world."""


class AccessError(SociusError, PermissionError):
    """A system touched a component, resource or message it did not declare."""


class StaleViewError(SociusError, RuntimeError):
    """A query view was used after a structural change invalidated its rows."""


class StructuralChangeError(SociusError, RuntimeError):
    """A direct spawn/despawn/add/remove during a tick (use ``ctx.commands``)."""


class SnapshotError(SociusError, ValueError):
    """A snapshot file is missing, truncated, corrupt or does not fit the world."""
