"""Tasks: what the engine optimises and measures, given a batch and a model output.

The training loop never branches on the task: it calls ``task.loss`` and ``task.metrics``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..models.googlenet import InceptionOutputs


@dataclass
class ClassificationTask:
    """Categorical cross-entropy over softmax, or binary cross-entropy on one sigmoid output.

    With ``binary`` the model has a single output (the logit of class 1) and the loss is
    ``BCEWithLogits``; predictions are ``p = sigmoid(logit)`` for class 1 and ``1 - p`` for class 0.
    GoogLeNet's auxiliary outputs (training only) add ``aux_weight`` times their own loss.
    """

    num_classes: int
    binary: bool = False
    label_smoothing: float = 0.0
    aux_weight: float = 0.3

    @property
    def num_outputs(self) -> int:
        return 1 if self.binary else self.num_classes

    def _loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.binary:
            target = y.float()
            if self.label_smoothing:
                target = target * (1 - self.label_smoothing) + 0.5 * self.label_smoothing
            return F.binary_cross_entropy_with_logits(logits.squeeze(1).float(), target)
        return F.cross_entropy(logits.float(), y, label_smoothing=self.label_smoothing)

    def evaluation(self) -> ClassificationTask:
        """The task that validation and test use (a training-only loss term drops out here)."""
        return self

    # --- what the engine asks of every task -------------------------------------------------------
    def inputs(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The model's input and the loss's target for a training batch."""
        return x, y

    def batch_stats(self, output, y: torch.Tensor) -> dict[str, float]:
        """Sums over a training batch, averaged per image into ``train_<key>``."""
        return {"acc": self.correct(output, y)}

    def evaluate(self, model, loader, device, precision: str = "fp32", channels_last: bool = False) -> dict:
        from .engine import evaluate

        return evaluate(model, loader, self, device, precision, channels_last)

    def record(self, val: dict) -> dict:
        """The validation columns of metrics.csv."""
        return {"val_loss": val["loss"], "val_acc": val["accuracy"], **({"val_top5": val["top5"]} if "top5" in val
                                                                          else {})}

    def format_record(self, record: dict) -> str:
        top5 = f"  val_top5 {100 * record['val_top5']:.1f}%" if "val_top5" in record else ""
        return f"val_acc {100 * record['val_acc']:.2f}%{top5}"

    def loss(self, output, y: torch.Tensor) -> torch.Tensor:
        if isinstance(output, InceptionOutputs):
            loss = self._loss(output.logits, y)
            for aux in (output.aux1, output.aux2):
                if aux is not None:
                    loss = loss + self.aux_weight * self._loss(aux, y)
            return loss
        return self._loss(output, y)

    @staticmethod
    def logits(output) -> torch.Tensor:
        return output.logits if isinstance(output, InceptionOutputs) else output

    def probabilities(self, output) -> torch.Tensor:
        """N x num_classes class probabilities."""
        logits = self.logits(output).float()
        if self.binary:
            p = torch.sigmoid(logits.squeeze(1))
            return torch.stack([1 - p, p], dim=1)
        return logits.softmax(dim=1)

    def correct(self, output, y: torch.Tensor, k: int = 1) -> int:
        """How many of the batch have the true class among the top ``k`` predictions."""
        return topk_correct(self.probabilities(output), y, k)


def topk_correct(probs: torch.Tensor, y: torch.Tensor, k: int) -> int:
    """How many rows of ``probs`` have the true class ``y`` among their ``k`` largest entries."""
    k = min(k, probs.shape[1])
    return int((probs.topk(k, dim=1).indices == y[:, None]).any(dim=1).sum())
