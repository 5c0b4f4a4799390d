"""Population generation: declared per-attribute distributions, sampled as columns.

A scenario declares one distribution per attribute (TOML/JSON ``[population.*]``
tables or the spec dataclasses) and :func:`sample_population` turns them into
one column per attribute for a whole population at once::

    specs = parse_population({
        "education": {"dist": "categorical",
                      "values": ["Elementary School", "High School", "Bachelor", "Master", "Ph.D."]},
        "age": {"dist": "normal", "mean": 40, "std": 12, "low": 18, "high": 90, "dtype": "int"},
        "occupation": {"dist": "conditional", "on": "education",
                       "cases": {"Ph.D.": {"dist": "categorical", "values": ["professor", "economist"],
                                           "weights": [1, 3]}},
                       "default": {"dist": "categorical", "values": ["artist", "writer", "athlete"]}},
    })
    columns = sample_population(specs, ids, seed=7)   # {"education": [n] StringDType, "age": [n] int64, ...}

Modules, one concept each: ``distributions`` (Categorical, Normal, Uniform,
Constant and the spec error), ``conditional`` (Conditional), ``parsing``
(specs from plain dicts, dependency order), ``normal`` (the normal quantile
behind truncated normals), ``sampling`` (draws keyed by entity),
``templates`` (vectorised string templates, attributes as JSON) and
``backgrounds`` (meta prompts for LLM-written backgrounds). This package only
re-exports them.
"""
from .backgrounds import BACKGROUND_META_PROMPT, BACKGROUND_STOP, background_prompts
from .conditional import Conditional, Spec
from .distributions import Categorical, Constant, Normal, PopulationSpecError, Uniform
from .normal import ndtri
from .parsing import parse_population, parse_spec, resolve_order
from .sampling import sample_population
from .templates import attributes_json, render_template

__all__ = [
    "BACKGROUND_META_PROMPT", "BACKGROUND_STOP", "Categorical", "Conditional", "Constant", "Normal",
    "PopulationSpecError", "Spec", "Uniform", "attributes_json", "background_prompts", "ndtri",
    "parse_population", "parse_spec", "render_template", "resolve_order", "sample_population",
]
