"""Segmentation: every pixel is classified. The loss is the pixel-wise cross-entropy; a split is measured by
its pixel confusion matrix (rows: true class, columns: predicted), summed over all its images, from which
come the pixel accuracy and, per class, IoU = TP / (TP + FP + FN) and Dice = 2 TP / (2 TP + FP + FN). The
means are over the foreground classes (class 0, the background, is left out); a class absent from both the
prediction and the truth has no IoU or Dice (None) and does not count in the means.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import CnnlabError
from ..train import autocast


def confusion(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """The ``num_classes x num_classes`` pixel confusion matrix (int64, on the CPU) of predicted and true maps."""
    k = num_classes
    index = (target.reshape(-1) * k + pred.reshape(-1)).cpu()
    return torch.bincount(index, minlength=k * k).reshape(k, k)


def segmentation_metrics(matrix, classes: list[str] | None = None) -> dict:
    """Pixel accuracy, per-class IoU and Dice (by class name, None where the class is absent from both the
    prediction and the truth), and their means over the foreground classes (all but class 0)."""
    m = torch.as_tensor(matrix, dtype=torch.float64)
    k = m.shape[0]
    names = classes or [str(i) for i in range(k)]
    tp = m.diag()
    fp, fn = m.sum(0) - tp, m.sum(1) - tp
    iou, dice = {}, {}
    for c in range(k):
        union = float(tp[c] + fp[c] + fn[c])
        iou[names[c]] = float(tp[c]) / union if union else None
        dice[names[c]] = 2 * float(tp[c]) / (union + float(tp[c])) if union else None
    total = float(m.sum())

    def mean(values: dict) -> float | None:
        present = [v for c, v in values.items() if c != names[0] and v is not None]
        return sum(present) / len(present) if present else None

    return {"accuracy": float(tp.sum()) / total if total else 0.0, "mean_iou": mean(iou), "mean_dice": mean(dice),
            "iou": iou, "dice": dice}


@dataclass
class SegmentationTask:
    """Per-pixel classification over ``classes`` (background first): cross-entropy on ``N x K x H x W`` logits
    against ``N x H x W`` masks."""

    classes: list[str]
    label_smoothing: float = 0.0

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def evaluation(self) -> SegmentationTask:
        """Validation and test measure the plain cross-entropy (no label smoothing)."""
        return SegmentationTask(self.classes)

    def inputs(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x, y

    def loss(self, logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), masks, label_smoothing=self.label_smoothing)

    def batch_stats(self, logits: torch.Tensor, masks: torch.Tensor) -> dict[str, torch.Tensor]:
        """Pixel accuracy per image, summed over the batch (the engine averages it into ``train_acc``)."""
        with torch.no_grad():
            return {"acc": (logits.argmax(1) == masks).float().mean((1, 2)).sum()}

    @torch.no_grad()
    def evaluate(self, model, loader, device, precision: str = "fp32", channels_last: bool = False) -> dict:
        """The loss (cross-entropy per pixel), pixel accuracy, IoU and Dice per class and their foreground
        means, and the pixel confusion matrix of a split."""
        model.eval()
        k = self.num_classes
        matrix = torch.zeros(k, k, dtype=torch.long)
        total_loss, seen = 0.0, 0
        for x, y in loader:
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast(device, precision):
                logits = model(x)
            total_loss += float(F.cross_entropy(logits.float(), y)) * len(y)
            matrix += confusion(logits.argmax(1), y, k)
            seen += len(y)
        if seen == 0:
            raise CnnlabError("cannot evaluate on an empty split")
        metrics = segmentation_metrics(matrix, self.classes)
        return {"loss": total_loss / seen, **metrics, "count": seen, "confusion_matrix": matrix.tolist()}

    def record(self, val: dict) -> dict:
        """The validation columns of metrics.csv (the means are 0 when no foreground class was seen at all)."""
        return {"val_loss": val["loss"], "val_acc": val["accuracy"], "val_miou": val["mean_iou"] or 0.0,
                "val_dice": val["mean_dice"] or 0.0}

    def format_record(self, record: dict) -> str:
        return (f"val_acc {100 * record['val_acc']:.2f}%  val_miou {record['val_miou']:.4f}  "
                f"val_dice {record['val_dice']:.4f}")
