"""Evaluation protocols: linear, semi, finetune, text2motion, action2motion, pose, reconstruction."""

from evaluators.protocols.registry import (
    ProtocolResult,
    RunContext,
    get_protocol,
    list_protocols,
    register_protocol,
)

__all__ = ["ProtocolResult", "RunContext", "get_protocol", "list_protocols", "register_protocol"]
