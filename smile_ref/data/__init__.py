"""Tabular data for the BNN benchmarks: UCI regression sets (shipped), scikit-learn sets, splits."""
from .authors_splits import AUTHORS_SEEDS, authors_split_indices, load_uci_authors
from .splits import DataSplit, Standardizer, make_split, split_indices
from .uci import SKLEARN_DATASETS, UCI_DATASETS, load_sklearn, load_uci, load_uci_arrays, uci_path

__all__ = ["DataSplit", "Standardizer", "make_split", "split_indices", "UCI_DATASETS", "SKLEARN_DATASETS",
           "load_uci", "load_uci_arrays", "load_sklearn", "uci_path", "AUTHORS_SEEDS", "authors_split_indices",
           "load_uci_authors"]
