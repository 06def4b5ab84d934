"""Offline datasets, local-folder loaders for MNIST/CIFAR, the user's own data, and client partitioners.

Importing this package registers every loader in `DATASETS` and every partitioner
in `PARTITIONS`.

>>> from leakage.data import DATASETS, PARTITIONS
>>> "digits" in DATASETS, PARTITIONS.names()
(True, ['dirichlet', 'iid', 'property', 'quantity', 'target'])
"""

from leakage.data import adult as _adult  # noqa: F401  (registers adult, read from a local or packaged copy)
from leakage.data import builtin as _builtin  # noqa: F401  (registers the offline datasets)
from leakage.data import csv_table as _csv_table  # noqa: F401  (registers csv, the user's own table)
from leakage.data import folder as _folder  # noqa: F401  (registers folder, the user's own images)
from leakage.data import local as _local  # noqa: F401  (registers mnist, cifar10, cifar100)
from leakage.data.base import DATASETS, Dataset, load_dataset
from leakage.data.local import default_data_root
from leakage.data.partition import PARTITIONS, partition_dataset

__all__ = [
    "DATASETS",
    "PARTITIONS",
    "Dataset",
    "default_data_root",
    "load_dataset",
    "partition_dataset",
]
