"""Long-tailed datamodules (Hydra group ``data``).

CIFAR-10/100-LT, ImageNet-LT, iNaturalist-2018 and image folders, all with the :class:`LongTailDataModule`
contract.
"""

from neurogrow.data.base import LongTailDataModule
from neurogrow.data.batch_augment import BatchAugment
from neurogrow.data.cifar import CIFAR10LTDataModule, CIFAR100LTDataModule, CIFARLTDataModule
from neurogrow.data.files import FileListDataset, FileLongTailDataModule
from neurogrow.data.image_folder import ImageFolderLTDataModule
from neurogrow.data.imagenet_lt import ImageNetLTDataModule
from neurogrow.data.inaturalist import INaturalist2018DataModule
from neurogrow.data.memory import TensorImageDataset
from neurogrow.data.profiles import balanced_holdout, long_tail_counts, subsample_long_tail

__all__ = [
    "BatchAugment",
    "CIFAR10LTDataModule",
    "CIFAR100LTDataModule",
    "CIFARLTDataModule",
    "FileListDataset",
    "FileLongTailDataModule",
    "INaturalist2018DataModule",
    "ImageFolderLTDataModule",
    "ImageNetLTDataModule",
    "LongTailDataModule",
    "TensorImageDataset",
    "balanced_holdout",
    "long_tail_counts",
    "subsample_long_tail",
]
