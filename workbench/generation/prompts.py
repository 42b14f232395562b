"""Prompt templates: Jinja2 with strict variables, a system message, few-shot examples, files.

    prompt = wb.Prompt("Write a {{level}} math word problem about {{topic}}.",
                       system="You write for children.",
                       examples=[({"level": "easy", "topic": "cats"}, "Tom has 3 cats ...")])
    prompt.variables        # ['level', 'topic']
    prompt.render({"level": "hard", "topic": "trains"})   # a list of chat messages
    prompt.save("data/prompts/word_problem.json"); wb.Prompt.load("data/prompts/word_problem.json")

Rendering without a variable raises :class:`PromptError` naming it (and the row it came from); a
template with a syntax error raises one with the line and column, and the line itself.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta

from ..errors import PromptError
from ..files import atomic_path

__all__ = ["Prompt", "PromptError"]

_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False, autoescape=False)


Example = tuple[Mapping[str, Any], str]


class Prompt:
    """A chat prompt: a Jinja2 user template, an optional system template and few-shot examples.

    ``examples`` are pairs ``(variables, answer)``: each becomes a user message rendered from the
    template with those variables, followed by the answer as an assistant message.
    """

    def __init__(self, template: str, system: str | None = None, examples: Sequence[Example] | None = None) -> None:
        if not isinstance(template, str) or not template.strip():
            raise PromptError("a prompt needs a non-empty template string, e.g. 'Write a poem about {{topic}}.'")
        if system is not None and not isinstance(system, str):
            raise PromptError(f"system is the system message's text (or None), got {type(system).__name__}.")
        for label, text in (("template", template), ("system", system or "")):
            _check_unicode(text, label)
        self.template = template
        self.system = system
        self.examples = _examples(examples)
        self._user = _compile(template, "template")
        self._system = _compile(system, "system") if system else None
        for position, (variables, _) in enumerate(self.examples):
            self._render(self._user, variables, f"example {position}")

    def __repr__(self) -> str:
        return f"Prompt({self.template!r}, variables={self.variables}, hash={self.hash!r})"

    @property
    def variables(self) -> list[str]:
        """The variables the template and system message use, sorted."""
        found = jinja2.meta.find_undeclared_variables(_ENV.parse(self.template))
        if self.system:
            found |= jinja2.meta.find_undeclared_variables(_ENV.parse(self.system))
        return sorted(found)

    @property
    def hash(self) -> str:
        """A stable 16-hex-digit hash of the template, system message and examples."""
        payload = json.dumps([self.template, self.system, self.examples], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def render(self, variables: Mapping[str, Any] | None = None, *, row: int | None = None) -> list[dict[str, str]]:
        """The chat messages for one set of variables: system, few-shot pairs, then the user turn."""
        where = f"row {row}" if row is not None else "the variables given"
        values = dict(variables or {})
        messages = []
        if self._system is not None:
            messages.append({"role": "system", "content": self._render(self._system, values, where)})
        for variables_, answer in self.examples:
            messages.append({"role": "user", "content": self._render(self._user, variables_, "an example")})
            messages.append({"role": "assistant", "content": answer})
        messages.append({"role": "user", "content": self._render(self._user, values, where)})
        return messages

    def preview(self, variables: Mapping[str, Any] | None = None) -> str:
        """The rendered messages as readable text."""
        return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in self.render(variables))

    @staticmethod
    def _render(template: jinja2.Template, variables: Mapping[str, Any], where: str) -> str:
        try:
            return template.render(**variables)
        except jinja2.UndefinedError as exc:
            given = ", ".join(sorted(variables)) or "none"
            name = _undefined_name(exc)
            if name is None:  # {{ x.y }} where x has no y: a value of the wrong shape, not a missing variable
                raise PromptError(
                    f"the template reads a field its value does not have in {where}: {exc}. A dotted name like "
                    "{{ x.y }} needs x to be a dict (or object) with y; check that variable's values, or the "
                    f"template (variables given: {given})."
                ) from None
            raise PromptError(
                f"the template uses the variable {name!r}, which {where} does not define (defined: {given}). "
                f"Add a {name!r} column or axis, or remove it from the template."
            ) from None
        except Exception as exc:  # a filter, test or operator applied to a value it cannot take
            raise PromptError(
                f"the template could not be rendered with {where}: {type(exc).__name__}: {exc}. Check the "
                "expressions in the template against the variables' values."
            ) from None

    # --- files -----------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the prompt as JSON (``.json``) or, without system and examples, as plain text."""
        path = Path(path)
        if path.suffix == ".json":
            data = {"template": self.template, "system": self.system, "examples": self.examples}
            text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        elif self.system or self.examples:
            raise PromptError(f"{path.name}: a prompt with a system message or examples is saved as .json")
        else:
            text = self.template
        with atomic_path(path, hint="Save it in a folder you can write to.") as temporary:
            temporary.write_text(text, encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Prompt:
        """Read a prompt saved by :meth:`save`: ``.json``, or any text file holding just the template."""
        path = Path(path)
        if not path.is_file():
            raise PromptError(f"no prompt file at {path}. Prompts saved with prompt.save(...) live in data/prompts/.")
        if path.suffix != ".json":
            return cls(path.read_text())
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            template = data["template"]
        except (ValueError, KeyError, TypeError):
            raise PromptError(
                f"{path} is not a saved prompt: a JSON object with 'template' (see Prompt.save)."
            ) from None
        return cls(template, system=data.get("system"), examples=data.get("examples"))


def _compile(source: str, label: str) -> jinja2.Template:
    try:
        return _ENV.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise PromptError(_syntax_message(source, exc, label)) from None


def _syntax_message(source: str, exc: jinja2.TemplateSyntaxError, label: str) -> str:
    line_number = exc.lineno or 1
    lines = source.splitlines() or [""]
    line = lines[min(line_number, len(lines)) - 1]
    column = _error_column(line, exc.message or "")
    pointer = " " * (column - 1) + "^"
    return f"{label} syntax error at line {line_number}, column {column}: {exc.message}\n    {line}\n    {pointer}"


def _error_column(line: str, message: str) -> int:
    """Best guess at where on ``line`` Jinja stumbled: the token it names, else the last opening tag."""
    for token in reversed(re.findall(r"'([^']+)'", message)):
        at = line.find(token)
        if at >= 0 and token not in {"end of print statement", "end of statement block"}:
            return at + 1
    openings = [match.start() for match in re.finditer(r"\{\{|\{%|\{#", line)]
    return openings[-1] + 1 if openings else 1


def _undefined_name(exc: jinja2.UndefinedError) -> str | None:
    """The variable a template used without it being given, or None when the error is about something else."""
    match = re.search(r"'([^']+)' is undefined", str(exc))
    return match.group(1) if match else None


def _examples(examples: Any) -> list[tuple[dict[str, Any], str]]:
    """Few-shot examples as (variables, answer) pairs, or a PromptError showing the expected shape."""
    if examples is None:
        return []
    if isinstance(examples, (str, Mapping)) or not isinstance(examples, Sequence):
        examples = [examples]
    pairs = []
    for position, example in enumerate(examples):
        if (
            isinstance(example, (str, bytes))
            or not isinstance(example, Sequence)
            or len(example) != 2
            or not isinstance(example[0], Mapping)
        ):
            raise PromptError(
                f"example {position} is {example!r}; each example is a pair (variables, answer), e.g. "
                "examples=[({'topic': 'cats'}, 'Tom has 3 cats. ...')]."
            )
        _check_unicode(str(example[1]), f"example {position}")
        pairs.append((dict(example[0]), str(example[1])))
    return pairs


def _check_unicode(text: str, label: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = text[exc.start : exc.end].encode("unicode_escape").decode("ascii")
        raise PromptError(
            f"the {label} holds text that is not valid Unicode ({bad}, a lone surrogate); clean it, e.g. "
            "text.encode('utf-8', 'replace').decode('utf-8')."
        ) from None
