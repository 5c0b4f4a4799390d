"""The Socius kernel: a columnar, deterministic entity-component-system.

Agents are int64 entity IDs; their data sits in typed columns grouped into
components; behaviour is systems that run once per tick as vectorised passes.
Everything a user needs is importable from here::

    from socius.ecs import World, Component, Scalar, Vector, String, Ragged, system

Modules, one concept each: ``entity`` (IDs), ``component`` (schemas and
column kinds), ``ragged`` (offsets + values lists), ``storage`` (ID-sorted
tables), ``query``, ``system`` (systems, context, schedule), ``commands``
(deferred structural changes), ``message`` (double-buffered events),
``resource`` (typed singletons), ``rng`` (counter-based randomness),
``snapshot`` (atomic snapshots, state hash), ``world``, ``errors``.
``STR`` is the one string dtype of the code base (numpy's ``StringDType``).
"""
from .commands import Commands
from .component import STR, Column, Component, Ragged, Scalar, String, Vector
from .entity import EntityAllocator
from .errors import (AccessError, ColumnShapeError, ColumnTypeError, DeadEntityError, MissingComponentError,
                     ResourceError, SchemaError, SnapshotError, SociusError, StaleViewError,
                     StructuralChangeError, UnknownComponentError)
from .message import Message, MessageBatch
from .query import Query, QueryView
from .ragged import RaggedArray
from .resource import Resource
from .rng import EntityRng, world_generator
from .snapshot import read_manifest
from .system import DEFAULT_PHASES, Schedule, System, SystemContext, system, world_of
from .world import World

__all__ = [
    "STR", "AccessError", "Column", "ColumnShapeError", "ColumnTypeError", "Commands", "Component", "DEFAULT_PHASES",
    "DeadEntityError", "EntityAllocator", "EntityRng", "Message", "MessageBatch", "MissingComponentError",
    "Query", "QueryView", "Ragged", "RaggedArray", "Resource", "ResourceError", "Scalar", "Schedule",
    "SchemaError", "SnapshotError", "SociusError", "StaleViewError", "String", "StructuralChangeError",
    "System", "SystemContext", "UnknownComponentError", "Vector", "World", "read_manifest", "system",
    "world_generator", "world_of",
]
