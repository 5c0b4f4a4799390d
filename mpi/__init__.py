"""One world over many MPI ranks: rank context, partitioning, halo exchange, routing, reductions.

The kernel (``socius.ecs``) never imports this package, and this package
imports ``mpi4py`` only when the process was launched by an MPI launcher or
MPI is asked for — without it the same code runs as one rank::

    from socius.mpi import rank_context, community_partition, build_halo_plan, Halo, Router, exact_mean

    ctx = rank_context()                                   # rank 0 of 1 without mpiexec
    part = community_partition(ids, src, dst, ctx.size)    # the same on every rank
    mine = part.owned(ctx.rank)
    halo = Halo(ctx, build_halo_plan(ctx, mine, follows, part), {"opinion": Opinion.column("value")})
    router = Router(ctx, part)
    mean = exact_mean(ctx, opinions)                       # same bits on 1, 2 or 4 ranks

Launch: ``mpiexec -n 4 python -m mpi4py job.py`` (or plain ``python job.py``
under ``mpiexec``: :func:`rank_context` installs an abort hook, so an error
on any rank ends the job with a message naming the rank instead of a hang).

Modules: ``context`` (ranks and collectives), ``abort``, ``loopback`` (N
ranks as threads, for tests), ``partition``, ``pack`` (column-wise byte
buffers), ``halo``, ``routing``, ``reduce``, ``world`` (a world's rank context and partition;
``distribute`` routes its messages and makes its state hash world-wide), ``snapshot`` (distributed
snapshots, restore on any rank count).

Scenarios run on N ranks through the runner: ``mpiexec -n N socius run NAME ...`` (see the README).
"""
from .abort import abort_on_error, install_abort_hook
from .context import MissingExtraError, RankContext, launched_under_mpi, rank_context, self_context
from .halo import Halo, HaloPlan, build_halo_plan, public_columns
from .loopback import RankError, run_ranks
from .partition import Partition, block_partition, community_partition, cut_fraction, group_partition
from .reduce import (bincount, exact_mean, exact_sum, fixed_point_sum, gather_ordered, global_count, global_max,
                     global_min, group_fixed_sum, histogram, int_sum, top_k)
from .routing import Router, local_view, merge_batches, route
from .world import (Ranks, attach_ranks, distribute, global_parts, owned_block, owned_partition, world_partition,
                    world_ranks)

__all__ = [
    "Halo", "HaloPlan", "MissingExtraError", "Partition", "RankContext", "Ranks", "attach_ranks", "distribute", "global_parts",
    "owned_block", "owned_partition",
    "world_partition", "world_ranks", "RankError", "Router",
    "abort_on_error", "bincount", "block_partition", "build_halo_plan", "community_partition", "cut_fraction",
    "exact_mean", "exact_sum", "fixed_point_sum", "gather_ordered", "global_count", "global_max", "global_min",
    "group_fixed_sum", "group_partition", "histogram", "install_abort_hook", "int_sum", "launched_under_mpi",
    "local_view", "merge_batches", "public_columns", "rank_context", "route", "run_ranks", "self_context",
    "top_k",
]
from .snapshot import load_snapshot, restore_distributed, restore_snapshot, save_distributed, snapshot_info  # noqa: E402

__all__ += ["load_snapshot", "restore_distributed", "restore_snapshot", "save_distributed", "snapshot_info"]
