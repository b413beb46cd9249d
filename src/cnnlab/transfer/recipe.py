"""The transfer recipe: how :func:`cnnlab.train.fit` trains a model that starts from a source model.

Everything else (the loop, checkpoints, ``--resume``, the run directory, ``evaluate`` and ``predict``) is
the engine's, unchanged.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import torch
from torch import nn

from ..classify import ClassifierRecipe, build_classifier, classification_task, model_description
from ..data import load_dataset
from ..errors import CnnlabError
from ..train import distributed
from .config import TransferConfig
from .features import FeatureCache, HeadOnly
from .freeze import (
    backbone_modules,
    count_trainable,
    freeze,
    freeze_backbone,
    freeze_stages,
    head_parameters,
    param_groups,
    set_bn_frozen,
    unfreeze,
)
from .incremental import Distiller, DistillTask, accuracy_by_group, expand_classifier, incremental_data
from .source import Source, first_conv_key, read_source, transfer_weights

_ARCH_ARGS = ("in_chans", "num_classes", "drop_rate")  # set by the target, not inherited from the source
_DEFAULT = object()  # an argument the source left at its builder's default


class TransferRecipe(ClassifierRecipe):
    def __init__(self) -> None:
        self.source: Source | None = None
        self.cache: FeatureCache | None = None
        self.old_model: nn.Module | None = None
        self.num_old, self.new_classes = 0, None
        self.adapted = ""  # what the log says of a first convolution adapted to the target's channels
        self.scale = ""  # what it says of images of another size than the source's

    # --- configuration and data -------------------------------------------------------------------
    def prepare(self, config: TransferConfig, resuming: bool) -> TransferConfig:
        t = config
        if t.mode == "feature-extraction" and t.cache != "off" and config.augment:
            config = t = config.replace(augment=False)  # cached features cannot be: config.yaml says what ran
        if resuming and t.mode != "incremental" and config.model and not Path(t.source).expanduser().exists():
            # moved or deleted since: the checkpoint holds every weight, and the run's config the architecture the
            # source gave it (an incremental run needs its source: the base model it is compared with)
            self.source, self._config = None, config
            return config
        self.source = src = read_source(t.source)
        if src.kind == "cnnlab":
            if config.model is None:
                config = config.replace(model=src.model)
            if config.model != src.model:
                raise CnnlabError(f"the source '{t.source}' is a {src.model} but the model asked for is "
                                  f"{config.model}; drop --model or pass --model {src.model}")
            inherited = {k: v for k, v in src.model_kwargs.items() if k not in _ARCH_ARGS}
            clash = [k for k, v in config.model_kwargs.items()
                     if k not in _ARCH_ARGS and inherited.get(k, _DEFAULT) != v]  # its weights need its architecture
            if clash:
                built = f"{clash[0]}={inherited[clash[0]]}" if clash[0] in inherited else f"the default {clash[0]}"
                raise CnnlabError(f"the source was built with {built}, and its weights need it; drop "
                                  f"--model-arg {clash[0]} (and --small-input): the architecture comes from the source")
            config = config.replace(model_kwargs={**inherited, **config.model_kwargs})
        elif config.model is None:
            raise CnnlabError("a weights file does not say its architecture; pass --model")
        if t.mode == "incremental":
            if src.kind != "cnnlab" or not src.data or not src.classes:
                raise CnnlabError("incremental learning needs a cnnlab run as its source (its classes and data "
                                  "are the base); a weights file has neither")
            if src.binary:
                raise CnnlabError("incremental learning needs a source trained with categorical cross-entropy, "
                                  "not a binary (sigmoid) one; train the source with --loss ce")
            ours = {"seed": config.seed, "val_fraction": config.val_fraction, "test_fraction": config.test_fraction}
            if src.split and ours != src.split:  # else the old classes' test images include ones the source trained on
                given = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in src.split.items())
                raise CnnlabError(f"incremental learning splits the base classes as the source did; use {given}")
        self._config = config
        return config

    def load_data(self, config: TransferConfig):
        t = config
        if t.mode != "incremental":
            return super().load_data(config)
        src = self.source
        old = load_dataset(src.data, seed=config.seed, val_fraction=config.val_fraction,
                           test_fraction=config.test_fraction,  # the source's split (prepare checks it)
                           image_size=config.image_size)
        if old.classes != src.classes:
            raise CnnlabError(f"the source's data '{src.data}' no longer has the classes it was trained on")
        sizes = {k: len(v) for k, v in old.splits().items()}
        if src.splits and sizes != {k: src.splits.get(k) for k in sizes}:  # drawn again from other images
            shown = lambda d: "/".join(str(d.get(k)) for k in ("train", "val", "test"))  # noqa: E731
            raise CnnlabError(f"the source's data '{src.data}' no longer splits as it did ({shown(src.splits)} "
                              f"train/val/test images then, {shown(sizes)} now: images were added or removed), so "
                              f"its test images could include ones the source trained on; give it back its images, "
                              f"or train the source again")
        new = super().load_data(config)
        self.num_old, self.new_classes = old.num_classes, new.classes
        data = incremental_data(old, new, t.memory, config.seed)
        data.name = f"{src.data}+{config.data}"
        return data

    def prepare_data(self, config: TransferConfig, model: nn.Module, data):
        data, preprocess = super().prepare_data(config, model, data)
        theirs = tuple(((self.source and self.source.preprocess) or {}).get("size") or ())
        if theirs and config.image_size is None and tuple(preprocess.size) != theirs:
            # its features were learnt at the source's scale: the target's size stays, the line says how to match
            size = "x".join(map(str, theirs))
            match = f"--image-size {theirs[0]}" if theirs[0] == theirs[-1] else "--image-size"
            self.scale = (f"; the source saw {size} images, these are {'x'.join(map(str, preprocess.size))} "
                          f"({match} shows them at its scale)")
        return data, preprocess

    def make_task(self, data, config: TransferConfig):
        task = classification_task(data, config)
        t = config
        if t.mode == "incremental" and t.distill:
            return DistillTask(task.num_classes, task.binary, task.label_smoothing, task.aux_weight, t.distill)
        return task

    # --- the model --------------------------------------------------------------------------------
    def build_model(self, config: TransferConfig, data, task) -> nn.Module:
        t, src = config, self.source
        self.description = model_description(config, data.channels, task)
        if t.mode == "incremental":
            model = build_classifier(config, data.channels, self.num_old)
            try:
                model.load_state_dict(src.state)  # the whole base model, head included
            except RuntimeError as e:
                raise CnnlabError(f"the source does not fit {config.model} for {data.channels}-channel data: "
                                  f"{str(e).splitlines()[-1].strip()}") from None
            self.old_model = copy.deepcopy(model).eval()
            for p in self.old_model.parameters():
                p.requires_grad_(False)
            expand_classifier(model, task.num_outputs - self.num_old)
        else:
            model = build_classifier(config, data.channels, task.num_outputs)
        if t.mode != "incremental" and src is not None:  # resumed without its source: the checkpoint's weights
            key = first_conv_key(model)
            theirs = src.state[key].shape[1] if key in src.state else 3  # torchvision's files: RGB
            if theirs != data.channels:
                how = t.adapt_channels if t.adapt_channels != "auto" else "sum" if data.channels == 1 else "repeat"
                self.adapted = f"; its first convolution adapted from {theirs} to {data.channels} channel(s) ({how})"
            transfer_weights(model, src, t.adapt_channels, config.model_kwargs)
        if t.mode == "feature-extraction":
            freeze_backbone(model, bn=True)
        elif t.mode == "partial":
            freeze_stages(model, t.freeze_stages, bn=True)
            self._bn_policy(model, t)
        else:
            self._bn_policy(model, t)
        return model

    @staticmethod
    def _bn_policy(model: nn.Module, t) -> None:
        """Trainable backbone batch norm: ``frozen`` keeps the source's running statistics (inference mode;
        the scale and shift still learn), ``train`` lets them follow the target's batches."""
        if t.bn == "frozen":
            for m in backbone_modules(model):
                set_bn_frozen(m, True)

    def param_groups(self, config: TransferConfig, model: nn.Module):
        if config.mode == "feature-extraction":
            return None  # the head alone
        return param_groups(model, config.lr, config.backbone_lr)

    def start_epoch(self, model: nn.Module, epoch: int, log) -> None:
        t = self._config
        if t.mode != "fine-tune" or not t.head_epochs:
            return
        if epoch < t.head_epochs:
            for m in backbone_modules(model):
                freeze(m, bn=True)
            if epoch == 0:
                log(f"warm start: the head trains alone for {t.head_epochs} epoch(s), then every layer")
        else:
            for m in backbone_modules(model):
                unfreeze(m, bn=True)
            self._bn_policy(model, t)
            if epoch == t.head_epochs:
                log(f"epoch {epoch + 1}: the backbone is unfrozen (lr x {t.backbone_lr})")

    def train_view(self, model: nn.Module, batches: dict, config: TransferConfig, device, log):
        t = config
        trainable, total = count_trainable(model)
        warm = ""
        if t.mode == "fine-tune" and t.head_epochs:  # the backbone is frozen for those epochs (start_epoch)
            head = sum(p.numel() for p in head_parameters(model))
            warm = f" (the head's {head:,} alone for the first {t.head_epochs} epoch(s))"
        log(f"transfer ({t.mode}) from {t.source}: {trainable:,} of {total:,} parameters train{warm}{self.adapted}"
            f"{self.scale}")
        if t.mode == "feature-extraction" and t.cache != "off":
            folder = Path(config.run_dir) / "feature_cache"
            if not distributed.from_env().main:  # each process caches its own copy; only rank 0 writes the run
                self._scratch = tempfile.TemporaryDirectory(prefix="cnnlab-feature-cache-",
                                                            dir=distributed.scratch_dir(),
                                                            ignore_cleanup_errors=True)
                folder = Path(self._scratch.name)
            # a disk cache's files leave their folder once mapped: a process that ends without its cleanup (one
            # whose distributed peer is gone leaves at once; a killed one) leaves nothing behind
            self.cache = FeatureCache(model, batches, t.cache, folder, unlinked=True)
            counts = " and ".join(f"{len(y)} {split}" for split, (_, y) in self.cache.features.items())
            log(f"cached the frozen backbone's features of {counts} images ({self.cache.nbytes / 1e6:.1f} MB, "
                f"{self.cache.where}) in {self.cache.seconds:.1f}s; the head trains on them (without augmentation)")
            view, loaders = HeadOnly(model), self.cache.loaders(config.batch_size, config.seed)
            view.freeze_unreached(next(iter(loaders["train"]))[0][:2])
            return view, loaders
        if t.mode == "incremental" and t.distill:
            layout = torch.channels_last if config.channels_last else torch.contiguous_format  # the student's
            self.old_model.to(device, memory_format=layout)
            return Distiller(model, self.old_model), batches
        return model, batches

    # --- results ----------------------------------------------------------------------------------
    def meta(self, meta: dict) -> dict:
        t = self._config
        meta = super().meta(meta)
        meta["transfer"] = {"source": str(t.source), "mode": t.mode}
        if t.mode == "incremental":
            meta["data"] = f"{self.source.data}+{meta['data']}"
            meta["transfer"]["base_classes"] = self.source.classes
        return meta

    def finish(self, result, run, batches, task, device, log) -> None:
        t = self._config
        trainable, total = count_trainable(result.model)
        result.extra["transfer"] = {"source": str(t.source), "mode": t.mode, "trainable_parameters": trainable,
                                    "parameters": total}
        if self.cache is not None:
            result.extra["transfer"]["feature_cache"] = {"where": self.cache.where, "megabytes":
                                                         round(self.cache.nbytes / 1e6, 2),
                                                         "seconds": round(self.cache.seconds, 3)}
            self.cache.close()
        if t.mode == "incremental":
            self._incremental_report(result, run, batches, log)

    def _incremental_report(self, result, run, batches, log) -> None:
        from ..inspect import format_table
        from ..train import fit

        config = t = self._config
        self.old_model.to(next(result.model.parameters()).device)
        before = accuracy_by_group(self.old_model, batches["test"], self.num_old)
        before["new"] = 0.0  # the base model has no output for the new classes
        after = accuracy_by_group(result.model, batches["test"], self.num_old)
        name = ("rehearsal" if t.memory else "") + ("+" if t.memory and t.distill else "") + \
            ("distillation" if t.distill else "")
        report = {"base_classes": self.source.classes, "new_classes": self.new_classes,
                  "before": before,
                  name or "naive": after}
        if t.compare_naive and name:
            naive_dir = run.path / "naive"
            if naive_dir.exists():
                import shutil

                shutil.rmtree(naive_dir)
            # rank 0's own baseline, in a distributed job too: one process, with the job's global batch
            world = distributed.from_env().world
            with distributed.alone():
                naive = fit(config.replace(run_dir=str(naive_dir), memory=0, distill=0.0, compare_naive=False,
                                           quiet=True, tensorboard=False, batch_size=config.batch_size * world),
                            log=lambda *a: None)
            report["naive"] = naive.extra["incremental"]["naive"]
        rows = [[k, *(f"{100 * v[g]:.1f}%" for g in ("old", "new", "all"))]
                for k, v in report.items() if isinstance(v, dict)]
        log(format_table(["model", "old classes", "new classes", "all classes"], rows))
        result.extra["incremental"] = report
