"""CIFAR-10/100-LT datamodules on real files: the offline JPEG copy and generated torchvision-format files."""

from __future__ import annotations

import functools

import lightning as L
import numpy as np
import pytest
import timm
import torch
from torch.utils.data import WeightedRandomSampler

import neurogrow.models  # noqa: F401  (registers the CIFAR ResNets with timm)
from neurogrow.data import CIFAR10LTDataModule, CIFAR100LTDataModule
from neurogrow.data.cifar_sources import CIFAR10_CLASSES
from neurogrow.data.eval_order import stratified_order
from neurogrow.data.profiles import long_tail_counts
from tests.conftest import make_trainer

PAPER_COUNTS = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]


def _setup(dm):
    dm.prepare_data()
    dm.setup("fit")
    return dm


# --- the real offline CIFAR-10 copy ---------------------------------------------------------------------
def test_cifar10_lt_if100_from_offline_copy(cifar10_offline, ldam_reference):
    dm = _setup(CIFAR10LTDataModule(**cifar10_offline, imbalance_factor=100))
    assert dm.num_classes == 10 and dm.class_names == list(CIFAR10_CLASSES)
    assert dm.class_counts == PAPER_COUNTS and len(dm.train_dataset) == 12406
    assert torch.bincount(dm.train_labels).tolist() == PAPER_COUNTS
    assert torch.bincount(dm.test_dataset.labels).tolist() == [1000] * 10  # test set stays balanced
    assert dm.summary()["source"].split(":")[0] in {"jpeg", "torchvision"}  # original pixels win if present
    # The kept images are LDAM-DRW's: same class-wise positions in the official per-class order.
    full = dm.load_arrays()
    kept = ldam_reference(full.train_labels.tolist(), PAPER_COUNTS, seed=0)
    assert torch.equal(dm.train_dataset.images, full.train_images[torch.from_numpy(kept)])


def test_cache_is_used_without_the_original_source(cifar10_offline, tmp_path):
    # No shared_data_dir at all: only the cache under data_dir can provide the images.
    dm = _setup(
        CIFAR10LTDataModule(data_dir=cifar10_offline["data_dir"], shared_data_dir=None, imbalance_factor=10)
    )
    assert dm.class_counts == long_tail_counts(5000, 10, 10)
    assert any(
        (cifar10_offline["data_dir"] / f"cifar10-{s}.uint8.pt").is_file() for s in ("jpeg", "original")
    )


def test_decoded_pixels_match_the_jpeg_files(cifar10_offline):
    import tarfile

    from torchvision.io import decode_jpeg

    full = CIFAR10LTDataModule(**cifar10_offline).load_arrays()
    if not full.source.startswith("jpeg:"):
        pytest.skip(f"{cifar10_offline['data_dir']} holds the original CIFAR-10, which takes precedence")
    tar_path = cifar10_offline["shared_data_dir"] / "cifar10-jpeg" / "cifar10-jpeg-q75.tar.gz"
    with tarfile.open(tar_path) as tar:
        data = tar.extractfile("train/cat/0007.jpg").read()
    ref = decode_jpeg(torch.frombuffer(bytearray(data), dtype=torch.uint8)).permute(1, 2, 0)
    assert torch.equal(full.train_images[3 * 5000 + 7], ref)  # class 3 (cat), NNNN = 7


def test_step_profile_seed_and_balanced_validation_split(cifar10_offline):
    dm = _setup(
        CIFAR10LTDataModule(
            **cifar10_offline, imbalance_factor=10, imbalance_type="step", seed=1, val_per_class=20
        )
    )
    step = [5000] * 5 + [500] * 5
    assert dm.class_counts == [n - 20 for n in step]  # trained-on counts
    assert torch.bincount(dm.val_dataset.labels).tolist() == [20] * 10
    # validation images come from the LT training set and are disjoint from the training images
    train_set = {bytes(img.numpy()) for img in dm.train_dataset.images[dm.train_labels == 9]}
    val_imgs = dm.val_dataset.images[dm.val_dataset.labels == 9]
    assert not any(bytes(img.numpy()) in train_set for img in val_imgs)
    assert len(dm.val_dataloader().dataset) == 200 and len(dm.test_dataloader().dataset) == 10000


def _class_balanced_sampler(labels: torch.Tensor, num_samples: int) -> WeightedRandomSampler:
    weights = 1.0 / torch.bincount(labels).double()
    return WeightedRandomSampler(weights[labels], num_samples=num_samples, replacement=True)


def test_sampler_partial_receives_train_labels(cifar10_offline):
    sampler = functools.partial(_class_balanced_sampler, num_samples=2000)
    dm = _setup(CIFAR10LTDataModule(**cifar10_offline, batch_size=500, sampler=sampler))
    labels = torch.cat([y for _, y in dm.train_dataloader()])
    assert len(labels) == 2000
    assert torch.bincount(labels, minlength=10).min() > 100  # the tail (50 images) is drawn ~200 times


class _Recorder(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.model = timm.create_model("resnet20_cifar", num_classes=10)
        self.seen: dict[str, list] = {"train": [], "val": []}

    def training_step(self, batch, batch_idx):
        x, y = batch
        self.seen["train"].append((x.dtype, tuple(x.shape), y.dtype, float(x.mean())))
        self.seen.setdefault("train_x", []).append(x.detach().clone())
        return torch.nn.functional.cross_entropy(self.model(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.seen["val"].append((x.dtype, tuple(x.shape), y.dtype, float(x.mean())))
        self.seen["val_x"] = x.clone()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_lightning_fit_gets_normalised_float_batches(cifar10_offline):
    L.seed_everything(0)
    dm = CIFAR10LTDataModule(**cifar10_offline, batch_size=32)
    model = _Recorder()
    trainer = make_trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=1)
    trainer.fit(model, datamodule=dm)
    assert len(model.seen["train"]) == 2 and len(model.seen["val"]) == 1
    for dtype, shape, ydtype, mean in model.seen["train"] + model.seen["val"]:
        assert dtype == torch.float32 and shape == (32, 3, 32, 32) and ydtype == torch.long
        assert -1.5 < mean < 1.5  # normalised, not 0..255
    # evaluation: normalisation only, in the fixed class-stratified order (every class in the first batch)
    first = stratified_order(dm.test_dataset.labels)[:32]
    assert set(torch.as_tensor(dm.test_dataset.labels)[first].tolist()) == set(range(10))
    torch.testing.assert_close(model.seen["val_x"], dm.augment.normalize(dm.test_dataset.images[first]))
    # training: random crops of the zero-padded images, so some rows or columns are entirely padding
    pad = (-torch.tensor(dm.mean) / torch.tensor(dm.std)).view(1, 3, 1, 1)
    is_pad = torch.isclose(torch.cat(model.seen["train_x"]), pad, atol=1e-4).all(dim=1)  # (N, H, W)
    assert (is_pad.all(dim=2).any(dim=1) | is_pad.all(dim=1).any(dim=1)).float().mean() > 0.5


# --- generated torchvision-format files (CIFAR-100 cannot be downloaded here) -----------------------------
@pytest.fixture(scope="module")
def cifar100_dir(tmp_path_factory, write_cifar_pickles):
    """Full-size CIFAR-100 in torchvision's pickle format (500/100 images per class), classes interleaved."""
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("cifar100")
    train = rng.permutation(np.repeat(np.arange(100), 500))
    test = rng.permutation(np.repeat(np.arange(100), 100))
    write_cifar_pickles(root / "cifar-100-python", train, test, cifar100=True)
    return root, train


@pytest.mark.parametrize("imbalance_type", ["exp", "step"])
@pytest.mark.parametrize("imbalance_factor", [10, 100])
def test_cifar100_lt_counts_and_ldam_selection(
    cifar100_dir, imbalance_type, imbalance_factor, ldam_reference
):
    root, train_labels = cifar100_dir
    dm = _setup(
        CIFAR100LTDataModule(data_dir=root, imbalance_factor=imbalance_factor, imbalance_type=imbalance_type)
    )
    expected = long_tail_counts(500, 100, imbalance_factor, imbalance_type)
    assert dm.class_counts == expected and dm.num_classes == 100
    assert dm.class_names[7] == "class_007" and dm.summary()["source"] == "torchvision:cifar-100-python"
    assert torch.bincount(dm.test_dataset.labels).tolist() == [100] * 100
    # pixel (0, 0) encodes the image's position in the original file: compare with LDAM-DRW on that file
    img = dm.train_dataset.images
    original_pos = img[:, 0, 0, 0].long() + 256 * img[:, 0, 0, 1].long()
    ref = ldam_reference(train_labels.tolist(), expected, seed=0)
    assert torch.equal(original_pos, torch.from_numpy(ref))
    assert (root / "cifar100-original.uint8.pt").is_file()


def test_cifar10_torchvision_format_is_preferred_to_the_jpeg_copy(tmp_path, write_cifar_pickles):
    labels = np.repeat(np.arange(10), 30)
    write_cifar_pickles(tmp_path / "cifar-10-batches-py", labels, np.repeat(np.arange(10), 2), cifar100=False)
    dm = _setup(
        CIFAR10LTDataModule(data_dir=tmp_path, shared_data_dir=tmp_path, img_max=30, imbalance_factor=3)
    )
    assert dm.class_counts == long_tail_counts(30, 10, 3) and dm.summary()["source"].startswith("torchvision")


# --- the JPEG readers on small generated copies -----------------------------------------------------------
def test_extracted_jpeg_tree_is_read_in_numeric_file_order(tmp_path, cifar10_jpeg_files):
    files = cifar10_jpeg_files(per_class_train=3)
    for name, data in reversed(files.items()):
        path = tmp_path / "shared" / "cifar10-jpeg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    dm = _setup(
        CIFAR10LTDataModule(
            data_dir=tmp_path / "d",
            shared_data_dir=tmp_path / "shared",
            img_max=3,
            imbalance_factor=1,
            batch_size=4,
        )
    )
    assert dm.class_counts == [3] * 10
    red = dm.load_arrays().train_images[:3, 0, 0, 0].float()
    assert torch.allclose(red, torch.tensor([0.0, 60.0, 120.0]), atol=6)  # NNNN order 0000, 0001, 0002


def test_corrupt_jpeg_in_tarball_is_named(tmp_path, cifar10_jpeg_files, write_tar):
    files = cifar10_jpeg_files()
    files["train/dog/0001.jpg"] = b"not a jpeg at all"
    write_tar(tmp_path / "shared" / "cifar10-jpeg" / "cifar10-jpeg-q75.tar.gz", files)
    dm = CIFAR10LTDataModule(data_dir=tmp_path / "d", shared_data_dir=tmp_path / "shared", img_max=3)
    with pytest.raises(ValueError, match=r"train/dog/0001\.jpg"):
        dm.prepare_data()


def test_missing_data_says_where_to_put_it(tmp_path):
    dm = CIFAR10LTDataModule(data_dir=tmp_path / "nothing", shared_data_dir=tmp_path / "shared")
    with pytest.raises(FileNotFoundError, match="cifar-10-batches-py") as err:
        dm.prepare_data()
    assert "download=true" in str(err.value) and "cifar10-jpeg" in str(err.value)
    with pytest.raises(FileNotFoundError, match="cifar-100-python"):
        CIFAR100LTDataModule(data_dir=tmp_path / "nothing").prepare_data()


def test_invalid_imbalance_factor_is_rejected_at_construction(tmp_path):
    with pytest.raises(ValueError, match="imbalance_factor must be >= 1"):
        CIFAR10LTDataModule(data_dir=tmp_path, imbalance_factor=0.01)
