"""The fit: label models (majority vote, Dawid-Skene EM, Snorkel's estimator), calibration and ECE, the embedding
expert, cross-fitting, and the labeler every face calls (labeler.py)."""
from lfagent.fit.calibrate import (
    IsotonicCalibrator, PlattScaler, ReliabilityBin, TemperatureScaler, binary_expected_calibration_error,
    cross_fit_calibrated_probs, expected_calibration_error, make_calibrator,
    multilabel_expected_calibration_error, reliability_bins,
)
from lfagent.fit.label_matrix import LabelMatrixError
from lfagent.fit.label_model import LabelModel
from lfagent.fit.majority import majority_vote, majority_vote_proba
from lfagent.fit.multilabel import MultiLabelModel

__all__ = [
    "IsotonicCalibrator", "LabelMatrixError", "LabelModel", "MultiLabelModel", "PlattScaler",
    "ReliabilityBin", "TemperatureScaler", "binary_expected_calibration_error", "cross_fit_calibrated_probs",
    "expected_calibration_error", "majority_vote", "majority_vote_proba", "make_calibrator",
    "multilabel_expected_calibration_error", "reliability_bins",
]
