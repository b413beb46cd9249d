"""Classification: what the engine optimises and measures for a classifier, given a batch and an output."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import CnnlabError
from ..models import InceptionOutputs
from ..train import autocast


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

    def loss(self, output, y: torch.Tensor) -> torch.Tensor:
        if isinstance(output, InceptionOutputs):
            loss = self._loss(output.logits, y)
            for aux in (output.aux1, output.aux2):
                if aux is not None:
                    loss = loss + self.aux_weight * self._loss(aux, y)
            return loss
        return self._loss(output, y)

    def evaluation(self) -> ClassificationTask:
        """Validation and test measure the plain cross-entropy (no label smoothing), comparable across runs."""
        return dataclasses.replace(self, label_smoothing=0.0)

    def inputs(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x, y

    def batch_stats(self, output, y: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            return {"acc": topk_hits(self.probabilities(output), y, 1)}

    @torch.no_grad()
    def evaluate(self, model, loader, device: torch.device, precision: str = "fp32",
                 channels_last: bool = False) -> dict:
        """Loss, top-1 (and top-5 with more than 5 classes) accuracy and the confusion matrix of a split."""
        model.eval()
        total_loss, correct, correct5, seen = 0.0, 0, 0, 0
        k = self.num_classes
        confusion = torch.zeros(k, k, dtype=torch.long)
        for x, y in loader:
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast(device, precision):
                out = model(x)
                loss = self.loss(out, y)
            n = len(y)
            total_loss += loss.item() * n
            probs = self.probabilities(out)
            pred = probs.argmax(1)
            correct += int((pred == y).sum())
            if k > 5:
                correct5 += topk_correct(probs, y, 5)
            confusion += torch.bincount((y * k + pred).cpu(), minlength=k * k).reshape(k, k)
            seen += n
        if seen == 0:
            raise CnnlabError("cannot evaluate on an empty split")
        result = {"loss": total_loss / seen, "accuracy": correct / seen, "count": seen}
        if k > 5:
            result["top5"] = correct5 / seen
        result["confusion_matrix"] = confusion.tolist()
        return result

    def record(self, val: dict) -> dict:
        return {"val_loss": val["loss"], "val_acc": val["accuracy"], **({"val_top5": val["top5"]} if "top5" in val
                                                                          else {})}

    def format_record(self, record: dict) -> str:
        top5 = f"  val_top5 {100 * record['val_top5']:.1f}%" if "val_top5" in record else ""
        return f"val_acc {100 * record['val_acc']:.2f}%{top5}"

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
    return int(topk_hits(probs, y, k))


def topk_hits(probs: torch.Tensor, y: torch.Tensor, k: int) -> torch.Tensor:
    """:func:`topk_correct` as a tensor on the device of ``probs`` (read it when needed, not per step)."""
    k = min(k, probs.shape[1])
    return (probs.topk(k, dim=1).indices == y[:, None]).any(dim=1).sum()
