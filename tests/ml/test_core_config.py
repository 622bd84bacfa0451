"""Configuration: data and weights directories from the environment, code version."""

from pathlib import Path

from ml import config


def test_data_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(config.DATA_DIR_ENV, str(tmp_path))
    assert config.data_dir() == tmp_path.resolve()
    assert config.data_dir_or_none() == tmp_path.resolve()
    monkeypatch.setenv(config.DATA_DIR_ENV, str(tmp_path / "absent"))
    assert config.data_dir_or_none() is None


def test_data_dir_defaults_beside_the_checkout(monkeypatch):
    monkeypatch.delenv(config.DATA_DIR_ENV, raising=False)
    assert config.data_dir() == (config.repo_root().parent / "shared" / "data").resolve()
    assert (config.repo_root() / "ml" / "config.py").is_file()


def test_weights_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv(config.WEIGHTS_DIR_ENV, raising=False)
    assert config.weights_dir() == config.repo_root() / "ml" / "weights"
    monkeypatch.setenv(config.WEIGHTS_DIR_ENV, str(tmp_path))
    assert config.weights_dir() == Path(tmp_path).resolve()


def test_code_version_is_a_non_empty_string():
    version = config.code_version()
    assert isinstance(version, str) and version.strip() == version and version


def test_worker_processes_get_one_torch_thread_unless_configured(monkeypatch):
    import torch

    from ml.config import TORCH_THREADS_ENV, apply_torch_threads

    before = torch.get_num_threads()
    try:
        monkeypatch.delenv(TORCH_THREADS_ENV, raising=False)
        torch.set_num_threads(2)
        apply_torch_threads(default=1)
        assert torch.get_num_threads() == 1
        monkeypatch.setenv(TORCH_THREADS_ENV, "2")
        apply_torch_threads(default=1)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
