"""Socius: social simulation with LLM-driven agents on a columnar ECS kernel.

This package is the repository root: each top-level folder imports as
``socius.<folder>``. This module is the prelude, loaded lazily (PEP 562) so
that ``import socius.ecs`` does not pull in the LLM stack.
"""
