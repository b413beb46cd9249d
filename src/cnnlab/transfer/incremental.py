"""Class-incremental learning: new classes added to a trained classifier, and what it forgets.

A model trained on base classes gets a wider classifier (the old rows kept, new rows random) and trains on
data of the new classes. Trained naively it forgets: the new classes' gradients pull every prediction
towards them. Two mitigations, combinable:

* rehearsal: a small memory of exemplars of each old class is mixed into the new training data;
* distillation (Learning without Forgetting, Li & Hoiem 2016): the old model's softened outputs on the old
  classes are a second target, ``distill x T^2 x KL(old || new)`` at temperature ``T``.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from ..classify import ClassificationTask
from ..data import ImageData, ImageSet
from ..data.select import union
from ..errors import CnnlabError


def expand_classifier(model: nn.Module, num_new: int) -> nn.Module:
    """Add ``num_new`` outputs to the final linear layer, keeping the old classes' weights and biases."""
    fc = model.get_classifier()
    if not isinstance(fc, nn.Linear):
        raise CnnlabError("the model has no linear classifier to expand")
    old = fc.out_features
    model.reset_classifier(old + num_new)
    new = model.get_classifier()
    with torch.no_grad():
        new.weight[:old] = fc.weight
        new.bias[:old] = fc.bias
    return model


def rehearsal_memory(train: ImageSet, per_class: int, seed: int) -> ImageSet:
    """``per_class`` random exemplars of each class of ``train`` (fewer if a class has fewer)."""
    g = torch.Generator().manual_seed(seed + 104729)
    keep = []
    for c in torch.unique(train.labels):
        idx = torch.nonzero(train.labels == c).flatten()
        keep.append(idx[torch.randperm(len(idx), generator=g)[:per_class]])
    return train.subset(torch.sort(torch.cat(keep)).values) if keep else train.subset(torch.zeros(0, dtype=torch.long))


def incremental_data(old: ImageData, new: ImageData, memory: int, seed: int) -> ImageData:
    """Train on the new classes (plus ``memory`` exemplars per old class); validate and test on all classes."""
    overlap = sorted(set(old.classes) & set(new.classes))
    if overlap:
        shown = ", ".join(map(str, overlap[:5])) + (", ..." if len(overlap) > 5 else "")
        raise CnnlabError(f"the new classes must differ from the base classes, but both have {shown}; give data "
                          f"whose classes the base model was not trained on (e.g. a base trained on "
                          f"digits@classes=0-4 takes digits@classes=5-9)")
    if (old.channels, old.image_size) != (new.channels, new.image_size):  # validation and test join both
        shape = lambda d: f"{d.channels}x{'x'.join(map(str, d.image_size))}"  # noqa: E731
        raise CnnlabError(f"incremental learning tests on the base's classes and the new ones together, so the new "
                          f"data must have the base's images: '{old.name}' has {shape(old)}, '{new.name}' "
                          f"{shape(new)}; give new data of {shape(old)}" + (
                              f" (e.g. textures:size={old.image_size[0]}, or --image-size {old.image_size[0]} for "
                              f"a folder)"
                              if old.channels == new.channels and len(set(old.image_size)) == 1 else ""))
    both = union(old, new)
    shifted = ImageSet(new.train.images, new.train.labels + old.num_classes)
    train = shifted
    if memory:
        mem = rehearsal_memory(old.train, memory, seed)
        train = ImageSet(torch.cat([mem.images, shifted.images]), torch.cat([mem.labels, shifted.labels]))
    return dataclasses.replace(both, train=train)


class DistillOutput(tuple):
    """``(logits, old_logits)`` from :class:`Distiller` in training mode."""


class Distiller(nn.Module):
    """Runs the model and, while training, the frozen old model on the same batch."""

    def __init__(self, model: nn.Module, old_model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self._old = [old_model.eval()]  # not a submodule: not trained, saved or penalised

    def forward(self, x: torch.Tensor):
        out = self.model(x)
        if not self.training:
            return out
        with torch.no_grad():
            old = self._old[0](x)
        return DistillOutput((out, ClassificationTask.logits(old)))


@dataclasses.dataclass
class DistillTask(ClassificationTask):
    """Cross-entropy on all classes plus ``weight x T^2 x KL`` towards the old model on the old classes."""

    weight: float = 1.0
    temperature: float = 2.0

    def evaluation(self) -> ClassificationTask:
        return ClassificationTask(self.num_classes, self.binary, 0.0, self.aux_weight)

    def loss(self, output, y: torch.Tensor) -> torch.Tensor:
        if not isinstance(output, DistillOutput):
            return super().loss(output, y)
        out, old = output
        loss = super().loss(out, y)
        t, k = self.temperature, old.shape[1]
        new = self.logits(out)[:, :k].float() / t
        kl = F.kl_div(F.log_softmax(new, 1), F.log_softmax(old.float() / t, 1), log_target=True,
                      reduction="batchmean")
        return loss + self.weight * t * t * kl

    @staticmethod
    def logits(output) -> torch.Tensor:
        if isinstance(output, DistillOutput):
            output = output[0]
        return ClassificationTask.logits(output)


@torch.no_grad()
def accuracy_by_group(model: nn.Module, loader, num_old: int) -> dict:
    """Top-1 accuracy on the old classes' images, the new classes' images and all of them.

    A model that only knows the old classes (fewer outputs) scores 0 on the new ones.
    """
    model.eval()
    hits = {"old": 0, "new": 0}
    seen = {"old": 0, "new": 0}
    for x, y in loader:
        pred = ClassificationTask.logits(model(x)).argmax(1)
        for group, mask in (("old", y < num_old), ("new", y >= num_old)):
            hits[group] += int((pred[mask] == y[mask]).sum())
            seen[group] += int(mask.sum())
    out = {g: hits[g] / seen[g] if seen[g] else float("nan") for g in hits}
    out["all"] = (hits["old"] + hits["new"]) / max(1, seen["old"] + seen["new"])
    return out
