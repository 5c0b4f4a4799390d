"""The LLM stack: decisions, their batched pipeline, prompts, replies, the response log and the engines.

A decision system renders one prompt per acting agent, sends the whole
batch to an engine on the node, parses the structured replies and applies
them. Scenario code imports what it needs from here (or from the
:mod:`socius` prelude)::

    from socius.llm import LLM, Decision, decide, Template, JsonReply, Number

Engines live in :mod:`socius.llm.engines`. Nothing here imports the
application (``socius.app``) or a scenario.
"""
from socius.llm.cache import ResponseCache
from socius.llm.decision import Decision, DecisionResult, Outcome, with_structured
from socius.llm.engines.base import CompletionBatch, Engine, EngineContractError, RequestBatch, Sampling
from socius.llm.engines.replay import ReplayEngine
from socius.llm.log import ResponseLog
from socius.llm.pipeline import decide
from socius.llm.resource import LLM, DecisionStats
from socius.llm.engines.mock import MockEngine, choice_policy, echo_policy, number_policy
from socius.llm.replies import Choice, ChoiceReply, JsonReply, Number, Text, TextReply
from socius.llm.templates import QUOTE_CLOSE, QUOTE_OPEN, Template, TemplateError, defuse

__all__ = ["LLM", "Choice", "ChoiceReply", "CompletionBatch", "Decision", "DecisionResult", "DecisionStats",
           "Engine", "EngineContractError", "JsonReply", "MockEngine", "Number", "Outcome", "QUOTE_CLOSE",
           "QUOTE_OPEN", "ReplayEngine", "RequestBatch", "ResponseCache", "ResponseLog", "Sampling", "Template",
           "TemplateError", "Text", "TextReply", "choice_policy", "decide", "defuse", "echo_policy", "number_policy",
           "with_structured"]
