"""The NCF family's hyper-parameters (GMF, MLP, NeuMF), named, typed and documented once.

:class:`NCFParams` holds what every NCF model shares (optimisation, labels, regularisers); each
model adds its sizes (:class:`GMFParams`, :class:`MLPParams`) and NeuMF its pre-training
(:class:`NeuMFParams`). Run options (threads, device, progress, logs, trainer, DDP) are not here:
they are :class:`~movierec.options.FitOptions`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, model_validator

from movierec.models.params import Params

__all__ = ["GMFParams", "MLPParams", "NCFParams", "NeuMFParams", "PRETRAIN_EXCLUDED"]


def _precision_text(value: object) -> object:
    """YAML reads ``precision: 32`` as a number; the setting is a name."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


PositiveInt = Annotated[int, Field(ge=1)]
NonNegative = Annotated[float, Field(ge=0)]
Positive = Annotated[float, Field(gt=0)]


class NCFParams(Params):
    """What every NCF model shares (see :mod:`movierec.models.ncf` for how each is used)."""

    # optimisation
    lr: Positive = Field(1e-3, description="Learning rate.")
    lr_decay: float = Field(1.0, gt=0, le=1, description="Learning-rate factor per epoch.")
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    fused_optimizer: bool = Field(
        False, description="torch's fused Adam/AdamW kernel: the same algorithm, ~5x faster "
        "steps on CPU, results differ in the last float bits.")
    sparse_updates: Literal["auto"] | bool = Field(
        "auto", description="Lazy Adam on embedding tables: only the rows a batch used get a "
        "gradient and an update. auto: tables over 4x the rows one batch can touch (ML-20M's "
        "users; never ml-100k or ML-1M); true: every table; false: dense Adam everywhere. "
        "Needs adam (or adamw without weight decay).")
    weight_decay: NonNegative = Field(0.0, description="Optimiser weight decay.")
    l2: NonNegative = Field(0.0, description="L2 on the embedding rows each batch uses.")
    batch_size: PositiveInt = Field(8192, description="Samples per step.")
    epochs: int = Field(20, ge=0, description="Epochs (0 only for a pre-trained NeuMF).")
    patience: PositiveInt | None = Field(
        3, description="Epochs without a better validation HR@10 before stopping; None: never.")
    holdout: bool = Field(
        False, description="Without a validation set, hold out each user's last train "
        "interaction for early stopping.")
    seed: int = 0
    precision: Annotated[Literal["32", "32-true", "bf16", "bf16-mixed"],
                         BeforeValidator(_precision_text)] = Field(
        "32", description="`bf16-mixed`: bfloat16 matrix products, fp32 weights.")
    # labels and negatives
    n_negatives: PositiveInt = Field(4, description="Sampled unrated items per interaction.")
    negative_exponent: float = Field(
        0.0, description="0: uniform negatives; b: item i drawn in proportion to (1 + n_i)^b.")
    label_mode: Literal["binary", "hard", "soft"] = Field(
        "binary", description="binary: every rating a positive; hard / soft: rating thresholds "
        "(low ratings become observed negatives).")
    hard_positive: float = Field(4.0, description="hard mode: ratings >= this are positives.")
    soft_positive: float = Field(3.0, description="soft mode: ratings >= this are positives.")
    soft_negative: float = Field(2.0, description="soft mode: ratings >= this (and below "
                                 "soft_positive) are soft negatives.")
    recency_boost: NonNegative = Field(
        0.0, description="A user's k-th latest interaction weighs 1 + boost * 0.5^(k / "
        "half_life) in the loss.")
    recency_half_life: Positive = 10.0
    # network details
    init_std: Positive = Field(0.01, description="Std of the initial embeddings.")
    item_bias: bool = Field(False, description="A learned bias per item.")
    user_history: bool = Field(
        False, description="User vectors gain the pooled embeddings of their train items "
        "(SVD++ style); a new person's vector starts from their picks.")
    # regulariser and new users
    diversity_alpha: NonNegative = Field(0.0, description="Weight of the genre-diversity "
                                         "penalty (movierec.training.losses).")
    diversity_temperature: Positive = 1.0
    fold_in_method: Literal["pooled", "adam"] = Field(
        "pooled", description="How a new person gets a user vector: `pooled`, a map learned "
        "from the trained users (their vectors from their items' embeddings), shrunk towards the "
        "mean user (movierec.models.ncf_fold_in; microseconds); `adam`: fold_in_steps Adam steps "
        "through the network (100-250 ms).")
    fold_in_shrinkage: NonNegative = Field(
        3.0, description="`pooled`: the number of picks at which a person's own signal and the "
                         "mean user weigh the same.")
    fold_in_steps: int = Field(100, ge=0, description="`adam`: optimisation steps.")

    @model_validator(mode="after")
    def _something_to_train(self) -> NCFParams:
        if self.epochs == 0 and not getattr(self, "pretrain", False):
            raise ValueError("epochs: 0 trains nothing (only a pre-trained NeuMF may skip "
                             "fine-tuning); give epochs >= 1")
        return self


class GMFParams(NCFParams):
    """GMF: ``factors``-dim user and item embeddings, their product, one output."""

    factors: PositiveInt = Field(32, description="GMF embedding size.")


class MLPParams(NCFParams):
    """MLP: concatenated ``mlp_factors``-dim embeddings through a tower of ``layers``."""

    mlp_factors: PositiveInt = Field(32, description="MLP embedding size.")
    layers: list[PositiveInt] | None = Field(
        None, min_length=1, description="Tower widths after the 2 * mlp_factors input; "
        "default [64, 32, 16, 8].")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout after each tower layer.")

    def tower(self) -> list[int]:
        return list(self.layers) if self.layers else [64, 32, 16, 8]


class NeuMFParams(GMFParams, MLPParams):
    """NeuMF: both paths, one output; optionally initialised from pre-trained GMF and MLP."""

    pretrain: bool = Field(False, description="Fit a GMF and an MLP first and start from them.")
    pretrain_gmf: str | None = Field(None, description="A saved GMF artifact to start from.")
    pretrain_mlp: str | None = Field(None, description="A saved MLP artifact to start from.")
    pretrain_epochs: PositiveInt | Annotated[list[PositiveInt], Field(
        min_length=2, max_length=2)] | None = Field(
        None, description="Pre-training epochs: one count for both or [gmf, mlp]; default "
        "`epochs`.")
    pretrain_lr: Positive | None = Field(None, description="Pre-training learning rate; "
                                         "default `lr`.")
    alpha: float = Field(0.5, ge=0, le=1, description="Weight of GMF vs MLP in the fused "
                         "output at initialisation.")


PRETRAIN_EXCLUDED = frozenset({"diversity_alpha", "diversity_temperature", "fold_in_method",
                               "fold_in_shrinkage", "fold_in_steps"})
"""Shared settings NeuMF does *not* hand to the GMF and MLP it pre-trains (the regulariser and
the fold-in belong to the fused model)."""
