"""Classification, the first kind of run (``cnnlab train``): a model of the zoo trained on a dataset, read
back to evaluate and predict.

>>> from cnnlab.classify import ClassifierConfig
>>> from cnnlab.train import fit
>>> config = ClassifierConfig(model="resnet18", model_kwargs={"small_input": True}, data="shapes")
>>> result = fit(config)  # doctest: +SKIP
"""

from .config import ClassifierConfig
from .kind import (
    ClassifierKind,
    PredictOptions,
    check_channels,
    check_same_classes,
    class_probabilities,
    predict,
)
from .recipe import (
    ClassifierRecipe,
    build_classifier,
    classification_task,
    fit_to_model,
    labelled_loaders,
    model_description,
)
from .task import ClassificationTask, topk_correct

__all__ = ["ClassificationTask", "ClassifierConfig", "ClassifierKind", "ClassifierRecipe", "PredictOptions",
           "build_classifier", "check_channels", "check_same_classes", "class_probabilities", "classification_task",
           "fit_to_model", "labelled_loaders", "model_description", "predict", "topk_correct"]
