"""Real-format dataset loaders and synthetic generators that write the same formats."""

from evaluators.datasets.base import (
    DatasetError,
    dataset_info,
    get_dataset_loader,
    inspect_path,
    list_datasets,
    load_dataset,
    register_dataset,
    register_inspector,
    resolve_root,
)

__all__ = [
    "DatasetError", "dataset_info", "get_dataset_loader", "inspect_path", "list_datasets",
    "load_dataset", "register_dataset", "register_inspector", "resolve_root",
]
