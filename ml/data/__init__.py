"""Market data: loading, validation, named datasets, causal features, splits, fingerprints, ingestion."""

from ml.data.bars import Bars, Panel
from ml.data.errors import DataIssue, DataValidationError
from ml.data.features import FeatureConfig, FeatureSet, Normalizer, compute_features
from ml.data.fingerprint import fingerprint
from ml.data.loader import LoadOptions, load_bars
from ml.data.resolve import resolve_dataset
from ml.data.splits import Fold, Split, split_by_date, walk_forward

__all__ = [
    "Bars",
    "DataIssue",
    "DataValidationError",
    "FeatureConfig",
    "FeatureSet",
    "Fold",
    "LoadOptions",
    "Normalizer",
    "Panel",
    "Split",
    "compute_features",
    "fingerprint",
    "load_bars",
    "resolve_dataset",
    "split_by_date",
    "walk_forward",
]
