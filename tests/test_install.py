"""What installing the workbench brings: every import declared, every range bounded and met, extras optional."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from functools import cache
from pathlib import Path

from packaging.requirements import Requirement

from workbench.generation.estimate import BPE_REQUIREMENT
from workbench.generation.grids import shipped_data_dir
from workbench.grading.tasks.ifeval import LM_EVAL_REQUIREMENT

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
# Declared, but imported by no module of the package: why each is there.
NOT_IMPORTED = {
    "ipykernel": "the Python kernel that runs notebooks: reports, nbval, JupyterLab",
    "jupyterlab": "the front end of `make lab`",
    "sentencepiece": "a tokenizer library transformers loads; training checks for it by name",
    "trl": "tests/test_training_dpo.py checks our DPO loss against TRL's on the same batch",
}
# The top-level modules of the optional stages; the base install has none of them.
OPTIONAL_MODULES = ["anywidget", "bpe_openai", "datasets", "gguf", "lm_eval", "nltk", "peft", "ray", "torch"]
OPTIONAL_MODULES += ["transformers", "jupyterlab"]


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements() -> dict[str, list[Requirement]]:
    """pyproject.toml's requirements by group: "base", then each extra (less the extras that name other extras)."""
    groups = {"base": PROJECT["dependencies"], **PROJECT["optional-dependencies"]}
    parsed = {group: [Requirement(line) for line in lines] for group, lines in groups.items()}
    return {group: [r for r in reqs if r.name != "workbench"] for group, reqs in parsed.items()}


def declared(*, test_tools: bool = True) -> set[str]:
    return {normalized(r.name) for group, reqs in requirements().items() if test_tools or group != "test" for r in reqs}


def imported_packages() -> dict[str, str]:
    """Each third-party top-level module imported anywhere in workbench/, with the first file that imports it."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / "workbench").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for top in (name.split(".")[0] for name in names):
                if top not in sys.stdlib_module_names and top != "workbench":
                    found.setdefault(top, str(path.relative_to(ROOT)))
    return found


@cache
def distribution(module: str) -> str:
    """The distribution that installs a top-level module (the module's own name when it is not installed here)."""
    return normalized(_installed_modules().get(module, [module])[0])


@cache
def _installed_modules() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def test_every_package_the_workbench_imports_is_declared():
    known = declared()
    undeclared = {module: where for module, where in imported_packages().items() if distribution(module) not in known}
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"


def test_every_declared_package_is_imported_or_says_why_it_is_there():
    imported = {distribution(module) for module in imported_packages()}
    assert declared(test_tools=False) - imported == set(NOT_IMPORTED)


def test_every_requirement_has_a_floor_and_a_ceiling():
    unbounded = [
        f"{group}: {r}"
        for group, reqs in requirements().items()
        for r in reqs
        if not ({s.operator for s in r.specifier} & {">=", "=="} and {s.operator for s in r.specifier} & {"<", "=="})
    ]
    assert not unbounded, f"bound these on both sides (the oldest and the next untried release): {unbounded}"


def test_the_installed_versions_lie_in_the_declared_ranges():
    checked, outside = 0, []
    for group, reqs in requirements().items():
        for requirement in reqs:
            try:
                version = importlib.metadata.version(requirement.name)
            except importlib.metadata.PackageNotFoundError:
                continue  # an extra not installed here
            checked += 1
            if not requirement.specifier.contains(version, prereleases=True):
                outside.append(f"{requirement.name} {version} is not in {group}'s {requirement.specifier}")
    assert not outside
    assert checked >= len(requirements()["base"])


def test_the_base_install_carries_no_optional_stage():
    base = {normalized(r.name) for r in requirements()["base"]}
    assert not base & {distribution(module) for module in OPTIONAL_MODULES}
    assert {"ifeval", "tokens", "hf", "widgets", "lab", "train", "scale"} <= set(requirements())


def test_the_torch_the_makefile_installs_is_one_the_train_extra_admits():
    pin = Requirement(re.search(r"^TORCH \?= (\S+)$", (ROOT / "Makefile").read_text(), re.MULTILINE).group(1))
    [torch] = [r for r in requirements()["train"] if r.name == "torch"]
    [exact] = pin.specifier
    assert pin.name == "torch" and exact.operator == "==" and torch.specifier.contains(exact.version)


def test_the_install_hints_ask_for_what_the_extras_declare():
    assert Requirement(LM_EVAL_REQUIREMENT) in requirements()["ifeval"]
    assert Requirement(BPE_REQUIREMENT) in requirements()["tokens"]


WITHOUT_THE_EXTRAS = """
import json, sys
for name in sys.argv[1:]:
    sys.modules[name] = None  # as if not installed: importing it raises ModuleNotFoundError
import workbench as wb
from workbench.grading import tasks

public = [getattr(wb, name) for name in wb.__all__]
story = {"public": len(public), "tasks": tasks.names(), "arithmetic": tasks.get("arithmetic").items(3, seed=0).height}
try:
    tasks.get("ifeval").items(2, seed=0)
except wb.ConfigError as error:
    story["ifeval"] = str(error)
story["estimate"] = wb.estimate("hello {{w}}", [{"w": "world"}], model="gpt-4.1-mini").method
print(json.dumps(story))
"""


def test_without_the_extras_the_workbench_works_and_each_stage_says_what_to_install():
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_THE_EXTRAS, *OPTIONAL_MODULES], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    story = json.loads(result.stdout.splitlines()[-1])
    assert story["public"] > 50 and "ifeval" in story["tasks"] and story["arithmetic"] == 3
    assert story["ifeval"].startswith("the ifeval task needs IFEval's checkers from lm-eval, which is not installed")
    assert f"pip install '{LM_EVAL_REQUIREMENT}'" in story["ifeval"]
    assert story["estimate"].startswith("approximate (4 characters a token")
    assert f"pip install '{BPE_REQUIREMENT}'" in story["estimate"]


def test_every_test_the_fast_loop_leaves_out_by_name_still_exists():
    from conftest import SLOW_FILES, SLOW_TESTS

    missing = [name for name in SLOW_FILES if not (ROOT / "tests" / name).is_file()]
    for name in SLOW_TESTS:
        file, test = name.split("::")
        if f"def {test}(" not in (ROOT / "tests" / file).read_text():
            missing.append(name)
    assert not missing, f"renamed or gone, so no longer left out of `make check`: {missing}"


def test_a_wheel_carries_the_shipped_seeds_personas_rubrics_and_reference(tmp_path):
    """A class installs from a wheelhouse (notebooks/README.md), not from the repository: the wheel must hold the
    files the package reads (rubrics by name, seed tasks, personas), or notebooks 02, 03 and 07 fail there."""
    source = tmp_path / "source"  # built from a copy: an in-tree build would leave build/ in the repository
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "workbench", source / "workbench", ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(source)],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = tmp_path.glob("workbench-*.whl")
    in_wheel = set(zipfile.ZipFile(wheel).namelist())
    shipped = {
        f"workbench/shipped/{path.relative_to(shipped_data_dir()).as_posix()}"
        for path in shipped_data_dir().rglob("*")
        if path.is_file()
    }
    assert len(shipped) >= 7 and "workbench/shipped/rubrics/math_word_problem.json" in shipped
    assert shipped <= in_wheel, f"not in the wheel: {sorted(shipped - in_wheel)}"
