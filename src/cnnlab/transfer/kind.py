"""The transfer kind of run (``cnnlab transfer``): a classifier that starts from a trained model. Its runs
read back as classifiers (evaluate, predict)."""

from __future__ import annotations

from ..classify import ClassifierKind
from ..train import register_kind
from .config import TransferConfig
from .recipe import TransferRecipe


@register_kind
class TransferKind(ClassifierKind):
    name = "transfer"
    config = TransferConfig
    command = "cnnlab transfer"
    recipe_class = TransferRecipe
    legacy_section = "transfer"

