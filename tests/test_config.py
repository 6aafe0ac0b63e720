"""Config schema: YAML + overrides, unknown keys rejected by name, types checked."""
import pytest

from pipeline.checkout import CONFIGS
from pipeline.config import Config, ConfigError, defaults_yaml, dump_config, load_config


def test_defaults_are_the_published_model():
    config = load_config()
    assert (config.model.stages, config.model.features, config.model.resblocks) == (2, 32, 3)


def test_file_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  stages: 3\n  features: 8\n")
    config = load_config(path, ["model.features=4", "model.resblocks=1"])
    assert (config.model.stages, config.model.features, config.model.resblocks) == (3, 4, 1)


def test_default_yaml_is_the_dataclasses_defaults():
    """configs/default.yaml is generated from the schema (scripts/default_config.py): every key, each at its
    default, so it cannot drift from the code."""
    path = CONFIGS / "default.yaml"
    assert path.read_text() == defaults_yaml()
    assert load_config(path) == Config()


def test_shipped_configs_load():
    from pathlib import Path
    for path in sorted((Path(__file__).parents[1] / "configs").glob("*.yaml")):
        assert isinstance(load_config(path), Config)


@pytest.mark.parametrize("override,message", [
    ("model.stagez=3", "unknown config key model.stagez"),
    ("modle.stages=3", "unknown config key modle"),
    ("model.stages=two", "model.stages: expected int, got 'two'"),
    ("model.stages=true", "model.stages: expected int"),
    ("model.stages=0", "model.stages must be a positive integer"),
    ("model.stages", "--set expects key=value"),
    ("deblur.precision=fp8", "deblur.precision: .fp8. is not one of .fp32., .tf32., .bf16., .fp16."),
    ("deblur.chunk=0", "deblur.chunk must be >= 1"),
])
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides=[override])


def test_exponents_without_a_dot_are_floats():
    """YAML 1.1 reads ``1e-3`` as a string; float fields accept it as the number it means."""
    assert load_config(overrides=["train.lr=1e-3"]).train.lr == 1e-3
    with pytest.raises(ConfigError, match="train.lr: expected float, got 'fast'"):
        load_config(overrides=["train.lr=fast"])


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("model: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "bad.yaml")


def test_dump_round_trip(tmp_path):
    config = load_config(overrides=["model.stages=3"])
    dump_config(config, tmp_path / "resolved.yaml")
    assert load_config(tmp_path / "resolved.yaml") == config


def test_a_retired_key_is_ignored_with_a_warning(tmp_path, caplog):
    """A run folder's config.yaml from an older version (deblur.batch) still resumes."""
    path = tmp_path / "config.yaml"
    path.write_text("deblur:\n  batch: 8\n  chunk: 4\n")
    assert load_config(path).deblur.chunk == 4
    assert "deblur.batch is no longer used" in caplog.text
