"""``binary_records``: recover a client's 0/1 training records from its FedSGD uploads.

Li, Huang, Chen, Hong, "Quantification of the Leakage in Federated Learning"
(FL-NeurIPS 2019 workshop, arXiv:1910.05467). A client training logistic regression on
the Taylor loss ``log 2 - y z / 2 + z^2 / 8`` uploads gradients

    ``g(w~) = -v / 2 + A w~ / 4``,  ``A = (1/n) sum x~ x~^T``,  ``v = (1/n) sum y x~``,

linear in its sufficient statistics. One module per step:

- :mod:`~attacks.binary_records.statistics`: fit ``(A, v)`` over rounds
  (:func:`fit_statistics`, :func:`minimum_rounds`), then the record count ``n``
  (:func:`infer_num_samples`) and the integer Gram matrix (:func:`record_gram`);
- :mod:`~attacks.binary_records.search`: every 0/1 record set with that Gram matrix
  (:func:`search_records`);
- :mod:`~attacks.binary_records.chain`: the steps chained into a
  :class:`BinaryRecordsResult` that says ``"recovered"`` only when the records are
  provably the only ones (:func:`recover_records`);
- :mod:`~attacks.binary_records.attack`: :class:`BinaryRecordsAttack`, registered as
  ``binary_records``, reads the target's uploads from an observer's views
  (:func:`effective_pairs`) and runs the chain.
"""

from attacks.binary_records.attack import BinaryRecordsAttack, effective_pairs
from attacks.binary_records.chain import (
    BinaryRecordsResult,
    BinaryRecordsStatus,
    recover_records,
)
from attacks.binary_records.search import RecordSearch, search_records
from attacks.binary_records.statistics import (
    SampleCount,
    StatisticsFit,
    fit_statistics,
    infer_num_samples,
    minimum_rounds,
    record_gram,
)

__all__ = [
    "BinaryRecordsAttack",
    "BinaryRecordsResult",
    "BinaryRecordsStatus",
    "RecordSearch",
    "SampleCount",
    "StatisticsFit",
    "effective_pairs",
    "fit_statistics",
    "infer_num_samples",
    "minimum_rounds",
    "record_gram",
    "recover_records",
    "search_records",
]
