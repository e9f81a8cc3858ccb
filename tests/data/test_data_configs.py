"""The ``conf/data`` files instantiate the datamodules (with ``conf/paths``) and reach the real data."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate

from neurogrow.data import (
    CIFAR10LTDataModule,
    CIFAR100LTDataModule,
    ImageFolderLTDataModule,
    ImageNetLTDataModule,
    INaturalist2018DataModule,
)

CONF = Path(__file__).resolve().parents[2] / "conf"


def _data_cfg(name: str, *overrides: str):
    GlobalHydra.instance().clear()  # other tests may leave Hydra initialised
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(overrides=["+paths=default", f"+data={name}", *overrides]).data


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("cifar10_lt", CIFAR10LTDataModule),
        ("cifar100_lt", CIFAR100LTDataModule),
        ("imagenet_lt", ImageNetLTDataModule),
        ("inaturalist2018", INaturalist2018DataModule),
    ],
)
def test_data_configs_instantiate(name, cls):
    dm = instantiate(_data_cfg(name), sampler=None)
    assert type(dm) is cls
    assert "sampler" not in _data_cfg(name)  # the train entry passes it in


def test_cifar10_config_reads_the_offline_copy(cifar10_offline, monkeypatch):
    monkeypatch.setenv("NEUROGROW_ROOT", str(cifar10_offline["data_dir"].parent))
    monkeypatch.delenv("NEUROGROW_DATA", raising=False)
    cfg = _data_cfg("cifar10_lt")
    assert Path(cfg.data_dir) == cifar10_offline["data_dir"]
    dm = instantiate(cfg, sampler=None)
    dm.prepare_data()
    dm.setup("fit")
    assert dm.class_counts == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]


def test_image_folder_config_requires_train_dir(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    dm = instantiate(_data_cfg("image_folder", f"data.train_dir={tmp_path}", "data.test_per_class=1"))
    assert type(dm) is ImageFolderLTDataModule
    with pytest.raises(Exception, match="train_dir"):
        instantiate(_data_cfg("image_folder"))
