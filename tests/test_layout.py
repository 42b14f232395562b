"""The package reads as the loop it serves: each layer imports only the layers below it."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "workbench"
# What each part of the package may import besides itself, as it truly is (lowest first). errors.py, columns.py
# and files.py are the bottom: every stage may use them, they use nothing above. curation/ needs no model (it is
# handed a connection for embeddings); scale/ sits right above models and curation (it runs the same requests
# and dedup elsewhere) and uses neither generation nor grading.
BOTTOM = {"errors": set(), "columns": {"errors"}, "files": {"errors"}}
_SHARED = {"errors", "columns", "files"}
STAGES = {
    "models": _SHARED,
    "curation": _SHARED,
    "generation": _SHARED | {"models", "curation"},
    "grading": _SHARED | {"models", "curation", "generation"},
    "scale": _SHARED | {"models", "curation"},
    "training": _SHARED | {"models", "curation", "generation", "grading"},
    "views": _SHARED | {"models", "curation", "generation", "grading"},
}
ALLOWED = {**BOTTOM, **STAGES}
LAYERS = list(STAGES)
# Optional dependencies live only in the stages that need them, imported there with an install hint.
OPTIONAL = {"ray": {"scale"}, "torch": {"training"}, "transformers": {"training"}, "peft": {"training"}}


def _imports(path: Path) -> list[tuple[int, str]]:
    """(level, dotted name) of every import in a module, relative ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module is None:  # from . import models
            found.extend((node.level, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.append((node.level, node.module))
        elif isinstance(node, ast.Import):
            found.extend((0, alias.name) for alias in node.names)
    return found


def _layer_of_import(path: Path, level: int, module: str) -> str | None:
    if level == 0:
        parts = module.split(".")
        return parts[1] if parts[0] == "workbench" and len(parts) > 1 else None
    folder = path.relative_to(PACKAGE).parent.parts
    base = folder[: max(0, len(folder) - (level - 1))]
    target = (*base, *module.split(".")) if module else base
    return target[0] if target else None


def _part(path: Path) -> str:
    """The stage a module belongs to (its folder), or for a top-level file its name (errors, columns, ...)."""
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def test_each_part_imports_only_what_the_layout_allows():
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        part = _part(path)
        if part not in ALLOWED:
            continue
        for level, module in _imports(path):
            target = _layer_of_import(path, level, module)
            target = target.removesuffix(".py") if target else target
            if target in ALLOWED and target != part and target not in ALLOWED[part]:
                wrong.append(f"{path.relative_to(PACKAGE)} imports {'.' * level}{module}")
    assert not wrong, "imports the layout does not allow:\n" + "\n".join(wrong)


def test_the_allowed_imports_form_layers_without_a_circle():
    placed: list[str] = []
    remaining = dict(ALLOWED)
    while remaining:
        ready = sorted(part for part, needs in remaining.items() if needs <= set(placed))
        assert ready, f"a circle among {sorted(remaining)}"
        placed += ready
        for part in ready:
            del remaining[part]
    assert placed[:2] == ["errors", "columns"] and placed[-1] == "views"


def test_the_package_map_lists_the_stages_in_their_true_order():
    doc = ast.get_docstring(ast.parse((PACKAGE / "__init__.py").read_text())) or ""
    shown = [line.split()[0].rstrip("/") for line in doc.splitlines() if line.startswith("    ") and line.split()]
    stages = [name for name in shown if name in STAGES]
    for lower, upper in [("models", "curation"), ("curation", "generation"), ("generation", "grading")]:
        assert stages.index(lower) > stages.index(upper), "the map is drawn top first: lower stages further down"
    assert "errors.py," in doc and "columns.py" in doc


def test_optional_dependencies_stay_in_their_stage():
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        stage = path.relative_to(PACKAGE).parts[0]
        for level, module in _imports(path):
            top = module.split(".")[0]
            if level == 0 and top in OPTIONAL and stage not in OPTIONAL[top]:
                wrong.append(f"{path.relative_to(PACKAGE)} imports {module}")
    assert not wrong, "optional dependencies imported outside their stage:\n" + "\n".join(wrong)


def test_every_stage_has_a_docstring_map():
    for stage in LAYERS:
        init = PACKAGE / stage / "__init__.py"
        if init.exists():
            doc = ast.get_docstring(ast.parse(init.read_text())) or ""
            modules = [p.name for p in init.parent.glob("*.py") if not p.name.startswith("_")]
            missing = [name for name in modules if name not in doc]
            assert not missing, f"{init.relative_to(PACKAGE)} does not name {missing} in its map"
