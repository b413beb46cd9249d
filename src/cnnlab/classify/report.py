"""What a classifier run's report shows of the network itself: its per-layer summary, its first-layer filters,
the feature maps of one test image per stage, and Grad-CAM over the test images it is most sure of, right and
wrong. Everything is computed from the run directory, so ``cnnlab report`` rebuilds the same page."""

from __future__ import annotations

import torch

from ..data.streaming import StreamingData, StreamingLoader
from ..explain.views import Subject, cam_view, features_view, filters_view
from ..inspect import human, summary
from ..report import Figure, Section, Table, figures
from ..train import Run
from ..viz.images import png_bytes
from .task import ClassificationTask

SHOWN = 4                  # test images per Grad-CAM row (right and wrong)
LOOKED_AT = 512            # test images searched for them at most,
MACS_LOOKED_AT = 2 * 10**10  # and no more than this many multiply-adds' worth (16 at least: ResNet-50 at 224)


def test_batch(run: Run, preprocess, n: int = LOOKED_AT) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` test images of the run's data, as its model takes them (``preprocess``), and their
    labels."""
    data = run.dataset(quiet=True)
    if isinstance(data, StreamingData):
        data = run.kind.prepare(run, data)
        loader = StreamingLoader(data.test, data.channels, preprocess, n, torch.device("cpu"), workers=0)
        return next(iter(loader), (torch.zeros(0, data.channels, 1, 1), torch.zeros(0, dtype=torch.long)))
    test = run.sample(n).test
    return test.images, test.labels


def network_sections(run: Run, subject: Subject) -> list[Section]:
    """The summary table, filters, feature maps and Grad-CAM pictures of a classifier run."""
    model = subject.model
    s = summary(model, (subject.in_chans, *subject.preprocess.size))
    header, rows, footer = s.table()
    out = [Section("The network", [Table(header, rows, f"every layer ({len(rows)} rows)", footer,
                                         folded=len(rows) > 25)],
                   f"{s.model}: {s.used_params:,} parameters ({human(s.used_params)}), {s.total_macs:,} multiply-adds "
                   f"({human(s.total_macs)}) per {'x'.join(map(str, s.input_size))} image")]
    x, y = test_batch(run, subject.preprocess, max(16, min(LOOKED_AT, MACS_LOOKED_AT // max(1, s.total_macs))))
    if len(x) == 0:
        return out
    inside = figures([filters_view(subject), *features_view(subject, x[:1])])
    out.append(Section("Inside the network", inside,
                       "The first layer's kernels, and what each stage makes of the first test image."))
    with torch.no_grad():
        logits = torch.cat([model(x[i:i + 256]) for i in range(0, len(x), 256)])
    probs = ClassificationTask(len(run.meta["classes"]), run.meta.get("binary", False)).probabilities(logits)
    confidence, pred = probs.max(1)
    items, notes = [], []
    for label, chosen in (("correct", pred == y), ("wrong", pred != y)):
        idx = torch.nonzero(chosen).flatten()
        idx = idx[confidence[idx].argsort(descending=True)][:SHOWN]
        if len(idx) == 0:
            notes.append(f"none of the first {len(x)} test images is classified {label}ly")
            continue
        pictures, _ = cam_view(subject, x[idx])
        for i, p in zip(idx.tolist(), pictures, strict=True):
            truth = subject.class_name(int(y[i]))
            items.append(Figure(png_bytes(p.array), f"{label}: true {truth}; {p.caption}, "
                                                    f"confidence {100 * float(confidence[i]):.1f}%"))
    text = ("Grad-CAM over the most confidently classified test images, right and wrong: where in the image "
            "the evidence for the predicted class lies (warm colours).") + (" " + "; ".join(notes) + "." if notes
                                                                           else "")
    out.append(Section("Where the network looks", items, text))
    return out
