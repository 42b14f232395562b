"""Connecting: backends, settings precedence, keys, and the errors a user meets first."""

from __future__ import annotations

import pytest
from conftest import SECRET

import workbench as wb
from workbench.models.config import load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "WORKBENCH_MODEL", "WORKBENCH_BACKEND", "WORKBENCH_LOCAL_MODEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # away from the repository's workbench.toml


def test_an_unknown_backend_names_the_known_ones():
    with pytest.raises(wb.ConfigError, match=r"unknown backend 'opneai'. Choose one of: local, openai"):
        wb.connect("opneai")


def test_openai_without_a_key_says_how_to_set_it():
    with pytest.raises(wb.MissingAPIKeyError, match=r"export OPENAI_API_KEY=sk-\.\.\."):
        wb.connect("openai")


def test_openai_with_a_key_from_the_environment_hides_it(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    llm = wb.connect("openai", model="gpt-4o-mini")
    assert llm.base_url == "https://api.openai.com/v1" and llm.model == "gpt-4o-mini"
    assert SECRET not in repr(llm) and "api_key=set" in repr(llm)
    price = llm.price_for("gpt-4o-mini")
    assert (price.input, price.output) == (0.15, 0.60)


def test_a_compatible_server_is_asked_which_model_it_serves(fake_server):
    server = fake_server(models=("served-model",))
    llm = wb.connect(base_url=server.base_url)
    assert llm.backend == "compatible" and llm.model == "served-model"
    assert llm.price_for(llm.model) is None  # unknown price: null, not a guess


def test_a_server_with_several_models_needs_one_chosen(fake_server):
    server = fake_server(models=("a", "b"))
    with pytest.raises(wb.ConfigError, match=r"serves 2 models \(a, b\); choose one with model="):
        wb.connect(base_url=server.base_url)


def test_asking_an_unreachable_server_for_its_model_names_the_url():
    with pytest.raises(wb.EndpointUnreachableError, match=r"http://127\.0\.0\.1:9/v1/models"):
        wb.connect(base_url="http://127.0.0.1:9/v1", timeout=2)


def test_settings_come_from_arguments_then_environment_then_file(tmp_path, monkeypatch):
    (tmp_path / "workbench.toml").write_text('model = "from-file"\nbase_url = "http://file/v1"\nmax_concurrency = 3\n')
    monkeypatch.setenv("WORKBENCH_MODEL", "from-env")
    settings = load_settings(base_url="http://argument/v1")
    assert (settings.base_url, settings.model, settings.max_concurrency) == ("http://argument/v1", "from-env", 3)
    assert settings.data_dir == tmp_path / "data"


def test_the_config_file_is_found_from_a_subfolder(tmp_path, monkeypatch):
    (tmp_path / "workbench.toml").write_text('data_dir = "store"\n')
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    assert load_settings().data_dir == tmp_path / "store"


def test_an_unknown_key_in_the_file_is_an_error_that_lists_the_known_ones(tmp_path):
    (tmp_path / "workbench.toml").write_text('modle = "typo"\n')
    with pytest.raises(wb.ConfigError, match=r"unknown setting\(s\) modle\. Known settings: .*model"):
        load_settings()


def test_a_key_in_the_file_is_refused(tmp_path):
    (tmp_path / "workbench.toml").write_text(f'api_key = "{SECRET}"\n')
    with pytest.raises(wb.ConfigError, match="Keys do not belong in files"):
        load_settings()


def test_a_negative_setting_is_refused():
    with pytest.raises(wb.ConfigError, match="max_concurrency must be a positive whole number"):
        load_settings(max_concurrency=0)


def test_a_missing_local_model_file_is_a_clear_error(tmp_path):
    with pytest.raises(wb.LocalModelError, match="no GGUF model file at"):
        wb.connect(local_model=tmp_path / "missing.gguf")


def test_the_public_names_are_pinned():
    assert sorted(wb.__all__) == sorted(
        [
            "Agreement",
            "BACKENDS",
            "ConfigError",
            "EndpointUnreachableError",
            "Estimate",
            "GENERATION_COLUMNS",
            "GRADE_COLUMNS",
            "InputError",
            "LLM",
            "Labeler",
            "LocalModelError",
            "MissingAPIKeyError",
            "Prompt",
            "PromptError",
            "PromptLab",
            "RESPONSE_COLUMNS",
            "RequestFailedError",
            "ResponseCache",
            "Rubric",
            "SchemaError",
            "StorageError",
            "Settings",
            "WorkbenchError",
            "__version__",
            "acompare",
            "agenerate",
            "agrade",
            "agreement",
            "arefine",
            "batches",
            "best",
            "charts",
            "contamination",
            "dedup",
            "diversity",
            "duplicate_clusters",
            "export",
            "keep",
            "cohen_kappa",
            "compare",
            "connect",
            "estimate",
            "evol_instruct",
            "explore",
            "generate",
            "grade",
            "grid",
            "is_pending",
            "judge_check",
            "load_seed_tasks",
            "per_round",
            "persona_generate",
            "personas",
            "position_bias",
            "refine",
            "sample_grid",
            "self_agreement",
            "self_instruct",
            "snapshot",
            "verify",
            "compare_strategies",
            "strategy_table",
            "tasks",
            "finetune",
            "self_train",
            "preference_pairs",
            "TunedModel",
        ]
    )
    for name in wb.__all__:
        assert hasattr(wb, name)


def test_openai_gets_no_string_length_bounds_which_its_strict_mode_refuses(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    schema = wb.Rubric("Is it right?").json_schema()
    schema["properties"]["maxLength"] = {"type": "integer"}  # a property so named is data, not a keyword

    sent = wb.connect("openai", model="gpt-4o-mini").json_format(schema)["json_schema"]["schema"]
    kept = wb.connect("compatible", base_url="http://127.0.0.1:9/v1", model="m").json_format(schema)

    assert sent["properties"]["reason"] == {"type": "string"} and "maxLength" in sent["properties"]
    assert kept["json_schema"]["schema"]["properties"]["reason"]["maxLength"] == 200
