"""Reading the pipeline settings from itsacat.toml."""

from __future__ import annotations

from pathlib import Path

import pytest

from itsacat.pipeline import ConfigError, PipelineConfig, load_config

ROOT = Path(__file__).resolve().parents[2]


def test_config_example_file_matches_defaults():
    config = load_config(ROOT / "itsacat.example.toml", Path("/nonexistent"))

    assert config.replace(source="defaults") == PipelineConfig()


def test_config_no_file_gives_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ITSACAT_CONFIG", raising=False)

    assert load_config(None, tmp_path / "home") == PipelineConfig()


def test_config_home_file_is_read(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ITSACAT_CONFIG", raising=False)
    home = tmp_path / "home"
    home.mkdir()
    (home / "itsacat.toml").write_text('[pipeline]\napproval = "auto"\n'
                                       '[gates]\nsmoke_images = "photos"\n')

    config = load_config(None, home)

    assert config.approval == "auto"
    assert config.gates.smoke_images == str(home / "photos")


@pytest.mark.parametrize("text, message", [
    ("[gates]\nmin_accuracy = 0.5\n",
     "unknown key 'min_accuracy' in [gates]; known keys are latency_budget_ms, "
     "max_regression, min_test_accuracy, smoke_images, smoke_labels"),
    ("[gate]\n", "unknown section or key 'gate'"),
    ("[services]\nblue_port = \"x\"\n", "services.blue_port = 'x' is not of type int"),
    ("[pipeline]\napproval = \"maybe\"\n", "pipeline.approval = 'maybe' is not one of manual, "
     "auto"),
    ("[admin]\nport = 8000\n", "admin.port = 8000 is a prediction port; the admin endpoint "
     "needs a port of its own (default 8090)"),
    ("[notify]\nwebhooks = [\"ftp://x\"]\n", "webhook 'ftp://x' is not an http:// or https:// "
     "URL"),
    ("[gates]\nmin_test_accuracy = 1.5\n", "gates.min_test_accuracy = 1.5 is not between 0 "
     "and 1"),
])
def test_config_bad_value_raises_naming_it(tmp_path, text, message):
    path = tmp_path / "itsacat.toml"
    path.write_text(text)

    with pytest.raises(ConfigError) as raised:
        load_config(path, tmp_path)

    assert message in str(raised.value)


def test_config_flags_override_sections():
    config = PipelineConfig().replace(approval="auto", gates__max_regression=0.1,
                                      services__green_port=9000, gates__smoke_images=None)

    assert config.approval == "auto"
    assert config.gates.max_regression == 0.1
    assert config.services.green_port == 9000
    assert config.gates.min_test_accuracy == PipelineConfig().gates.min_test_accuracy


def test_config_json_round_trip_keeps_every_setting():
    config = PipelineConfig().replace(notify__webhooks=("http://127.0.0.1:1/hook",),
                                      gates__smoke_labels="blocking")

    assert PipelineConfig.from_json(config.to_json(), "defaults") == config
