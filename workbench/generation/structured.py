"""Structured output: a pydantic model or a JSON schema, sent as ``response_format``, and validated.

The schema is checked before anything is sent (a broken schema is a :class:`SchemaError`). Each reply
is validated against it; the caller decides what to do with one that fails (``wb.generate`` asks
once more, showing the model the validation error).
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pydantic

from ..errors import SchemaError

__all__ = ["OutputSchema", "ReplyInvalid"]


class ReplyInvalid(Exception):
    """A reply that is not JSON, or not valid under the schema; the message says why."""


class OutputSchema:
    """A structured-output schema: what to send, and how to check a reply."""

    def __init__(self, schema: type[pydantic.BaseModel] | dict[str, Any]) -> None:
        if isinstance(schema, type) and issubclass(schema, pydantic.BaseModel):
            self.model: type[pydantic.BaseModel] | None = schema
            self.json_schema = schema.model_json_schema()
            self.name = schema.__name__
        elif isinstance(schema, dict):
            self.model = None
            self.json_schema = _checked(schema)
            self.name = str(schema.get("title", "output")).replace(" ", "_")
        else:
            raise SchemaError(
                f"schema must be a pydantic model class or a JSON schema dict, got {type(schema).__name__}."
            )

    @property
    def fields(self) -> list[str]:
        """The top-level fields, which become columns; ``["output"]`` for a non-object schema."""
        properties = self.json_schema.get("properties")
        return list(properties) if isinstance(properties, dict) and properties else ["output"]

    def parse(self, text: str | None) -> dict[str, Any]:
        """The reply's fields, or :class:`ReplyInvalid` saying what is wrong."""
        try:
            value = json.loads(text or "")
        except ValueError as exc:
            raise ReplyInvalid(f"the reply is not JSON ({exc})") from None
        if self.model is not None:
            try:
                value = self.model.model_validate(value).model_dump(mode="json")
            except pydantic.ValidationError as exc:
                raise ReplyInvalid(_pydantic_problems(exc)) from None
        else:
            problems = sorted(jsonschema.Draft202012Validator(self.json_schema).iter_errors(value), key=str)
            if problems:
                raise ReplyInvalid("; ".join(_describe(problem) for problem in problems[:5]))
        return value if self.fields != ["output"] else {"output": value}


def _checked(schema: dict[str, Any]) -> dict[str, Any]:
    try:
        jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator).check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(part) for part in exc.path) or "the top level"
        raise SchemaError(f"not a valid JSON schema at {where}: {exc.message}") from None
    return schema


def _describe(problem: jsonschema.ValidationError) -> str:
    where = "/".join(str(part) for part in problem.absolute_path)
    return f"{where}: {problem.message}" if where else problem.message


def _pydantic_problems(exc: pydantic.ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'value'}: {error['msg']}" for error in exc.errors()[:5]
    )
