"""The metrics a sweep ranks its cells by (`synthgen sweep --rank`), apart from the scoring
itself so that the command's help lists them without loading scikit-learn."""

from __future__ import annotations

from synthgen.errors import UserError

# metric -> True when higher is better; `--rank` takes one of these names
RANKS = {"cas": True, "cas_logistic_regression": True, "cas_svm_rbf": True,
         "ratio_logistic_regression": True, "ratio_svm_rbf": True, "images_per_s": True,
         "diversity": True, "near_duplicate_share": False, "acceptance_rate": True}
NEEDS_REAL = ("cas", "cas_logistic_regression", "cas_svm_rbf", "ratio_logistic_regression", "ratio_svm_rbf")


def check_rank(rank: str | None, real: str | None) -> str:
    """The metric to rank by: `cas` (the lower CAS ratio) with a real set, else `diversity`."""
    rank = rank or ("cas" if real else "diversity")
    if rank not in RANKS:
        raise UserError("--rank", rank, f"choose one of {', '.join(RANKS)}")
    if rank in NEEDS_REAL and not real:
        raise UserError("--rank", rank, "needs a real set to score against; give --real SOURCE")
    return rank
