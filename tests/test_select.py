"""Class selections, label budgets and unions written into a dataset spec."""

import re
import warnings

import pytest
import torch

from cnnlab.data import load_dataset
from cnnlab.errors import CnnlabError


def test_class_selection_relabels_and_keeps_every_split_of_those_classes():
    full = load_dataset("digits", seed=0)
    part = load_dataset("digits@classes=5-9", seed=0)
    assert part.classes == ["5", "6", "7", "8", "9"] and part.name == "digits@classes=5-9"
    for split in ("train", "val", "test"):
        s, f = part.splits()[split], full.splits()[split]
        assert set(s.labels.tolist()) == {0, 1, 2, 3, 4}
        assert torch.equal(s.images, f.images[f.labels >= 5])  # the same images, in order
        assert torch.equal(s.labels + 5, f.labels[f.labels >= 5])
    by_name = load_dataset("textures@classes=gravel/brick")
    assert by_name.classes == ["gravel", "brick"]


def test_label_budget_cuts_only_the_training_split_per_class():
    full = load_dataset("digits@classes=0-4", seed=3)
    ten = load_dataset("digits@classes=0-4@labels=10", seed=3)
    assert ten.train.labels.bincount().tolist() == [10] * 5
    assert torch.equal(ten.test.images, full.test.images) and torch.equal(ten.val.labels, full.val.labels)
    quarter = load_dataset("digits@labels=0.25", seed=3)
    counts = load_dataset("digits", seed=3).train.labels.bincount()
    assert quarter.train.labels.bincount().tolist() == [round(0.25 * int(c)) for c in counts]
    assert not torch.equal(load_dataset("digits@labels=10", seed=4).train.images, load_dataset(
        "digits@labels=10", seed=3).train.images)  # the budget is drawn from the seed


def test_a_count_beyond_what_classes_have_keeps_all_of_theirs_and_says_so():
    counts = load_dataset("digits", seed=3).train.labels.bincount()
    order = counts.argsort(stable=True)
    for few in (1, 3):  # more than the fewest class has; more than the three fewest have
        n = int(counts[order[few - 1]]) + 1
        short = [c for c in range(10) if counts[c] < n]  # ties included
        assert len(short) >= few
        with pytest.warns(UserWarning) as caught:
            capped = load_dataset(f"digits@labels={n}", seed=3)
        assert capped.train.labels.bincount().tolist() == [min(n, int(c)) for c in counts]
        listed = ", ".join(f"'{c}' ({int(counts[c])})" for c in short)
        assert [str(w.message) for w in caught] == [
            f"@labels={n}: class {listed} has fewer training images and keeps all of them" if len(short) == 1 else
            f"@labels={n}: {len(short)} of 10 classes have fewer training images and keep all of theirs: {listed}"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_dataset(f"digits@labels={int(counts.min())}", seed=3)  # every class has that many: nothing to say


def test_union_concatenates_classes_and_recovers_the_full_dataset():
    full = load_dataset("digits", seed=1)
    joined = load_dataset("digits@classes=0-4+digits@classes=5-9", seed=1)
    assert joined.classes == full.classes
    for split in ("train", "val", "test"):
        a, b = joined.splits()[split], full.splits()[split]
        assert sorted(a.labels.tolist()) == sorted(b.labels.tolist()) and len(a) == len(b)


@pytest.mark.parametrize("spec, message", [
    ("digits@classes=0-12", "outside 0-9"),
    ("digits@classes=cat", "not one of"),
    ("digits@classes=1/1", "twice"),
    ("digits@label=3", "is not a selection"),
    ("digits@labels=0.0", "fraction in"),
    ("digits@labels=2.5", "fraction in"),
    ("digits@classes=0-4+digits@classes=4-9", "both have class"),
    ("digits+textures", "differ in size"),
    ("photos@classes=0", "no labels"),
])
def test_bad_selections_are_one_line_errors(spec, message):
    with pytest.raises(CnnlabError, match=message) as e:
        load_dataset(spec)
    assert "\n" not in str(e.value)


def test_joining_datasets_keeps_their_masks_with_the_classes_moved_up():
    a, b = load_dataset("shapes:size=16,count=40,classes=circle"), load_dataset("shapes:size=16,count=40,classes=cross")
    both = load_dataset("shapes:size=16,count=40,classes=circle+shapes:size=16,count=40,classes=cross")
    assert both.classes == ["circle", "cross"] and both.train.masks is not None
    assert torch.equal(both.train.masks[:len(a.train)], a.train.masks)
    moved = b.train.masks.clone()
    moved[moved > 0] += 1  # b's class 0 (mask value 1) is class 1 of the union (mask value 2)
    assert torch.equal(both.train.masks[len(a.train):], moved)


@pytest.mark.parametrize("spec, message", [
    ("digits@classes=0-4@classes=1", "selects @classes twice"),
    ("digits@classes=4-0", "class range '4-0' runs backwards; write it low to high (0-4)"),
    ("digits@classes=0-12", "outside 0-9"),
])
def test_selections_that_cannot_mean_one_thing_are_refused(spec, message):
    with pytest.raises(CnnlabError, match=re.escape(message)):
        load_dataset(spec)


def test_split_all_scores_every_image_of_a_run_trained_on_a_label_budget(tmp_path):
    """With both fractions 0 every image is in the training split, and the spec's @labels then kept 10 of them:
    `--split all` scored 50 images of a run whose test split alone has 135."""
    from cnnlab.classify import ClassifierConfig
    from cnnlab.run import Run, fit

    r = fit(ClassifierConfig(data="digits@classes=0-4@labels=10", epochs=1, quiet=True, run_dir=str(tmp_path / "r")),
            log=lambda *a: None)
    run = Run.open(r.run_dir)
    every = len(load_dataset("digits@classes=0-4", val_fraction=0.0, test_fraction=0.0).train)
    assert run.evaluate("all")["count"] == every == 901
    assert run.evaluate("test")["count"] == r.test["count"]
    assert len(load_dataset("digits@classes=0-4@labels=10+digits@classes=5@labels=3", budget=False).test) > 0


def test_a_union_with_a_streamed_folder_is_one_line(tmp_path, monkeypatch):
    import numpy as np
    from PIL import Image

    for c in ("a", "b"):
        (tmp_path / "imgs" / c).mkdir(parents=True)
        for i in range(10):
            Image.fromarray(np.full((8, 8), 20 * i, np.uint8)).save(tmp_path / "imgs" / c / f"{i}.png")
    monkeypatch.setenv("CNNLAB_MEMORY_LIMIT_GB", "0.0000001")
    with pytest.raises(CnnlabError, match="'\\+' joins datasets that fit in memory; .* is streamed from disk"):
        load_dataset(f"folder:{tmp_path / 'imgs'}+digits@classes=0")


def test_a_number_that_names_one_class_and_is_the_position_of_another_is_refused():
    """Classes named 1, 2, 3: `@classes=1` took the class named 1 (position 0) and `@classes=1-1` position 1."""
    from cnnlab.data.select import parse_classes

    with pytest.raises(CnnlabError, match="class '1' is ambiguous: .* 0-0 for '1', 1-1 for '2'"):
        parse_classes("1", ["1", "2", "3"])
    assert parse_classes("3", ["1", "2", "3"]) == [2]  # no class at position 3: the name
    assert parse_classes("1-1", ["1", "2", "3"]) == [1] and parse_classes("2", list("0123")) == [2]


def test_a_class_name_with_a_slash_is_selected_whole():
    """Fashion-MNIST's 'T-shirt/top' could not be selected by name: the slash that separates names cut it."""
    from cnnlab.data.select import parse_classes

    fashion = ["T-shirt/top", "Trouser", "Pullover", "Dress"]
    assert parse_classes("T-shirt/top/Trouser", fashion) == [0, 1]
    assert parse_classes("Dress/T-shirt/top", fashion) == [3, 0]
    assert parse_classes("1-2/T-shirt/top", fashion) == [1, 2, 0]
    assert parse_classes("a/b/b", ["a", "a/b", "b"]) == [1, 2]  # the longest name that fits comes first
    with pytest.raises(CnnlabError, match="class 'T-shirt' is not one of"):
        parse_classes("T-shirt", fashion)
