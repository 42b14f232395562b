"""The package reads as the loop it serves: each layer imports only the layers below it."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "workbench"
# Lowest first. A module may import its own layer and any layer before it, never one after it.
LAYERS = ["models", "curation", "generation", "grading", "training", "scale", "views"]
# Optional dependencies live only in the stages that need them, imported there with an install hint.
OPTIONAL = {"ray": {"scale"}, "torch": {"training"}, "transformers": {"training"}, "peft": {"training"}}


def _imports(path: Path) -> list[tuple[int, str]]:
    """(level, dotted name) of every import in a module, relative ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            found.append((node.level, node.module or ""))
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


def test_no_layer_imports_a_layer_above_it():
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        layer = path.relative_to(PACKAGE).parts[0]
        if layer not in LAYERS:
            continue
        for level, module in _imports(path):
            target = _layer_of_import(path, level, module)
            if target in LAYERS and LAYERS.index(target) > LAYERS.index(layer):
                wrong.append(f"{path.relative_to(PACKAGE)} imports {'.' * level}{module}")
    assert not wrong, "imports that run up the layers:\n" + "\n".join(wrong)


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
