import pytest
import torch

import cnnlab
from cnnlab.errors import CnnlabError, UnknownNameError
from cnnlab.models import register_model

EXPECTED = {
    "lenet5", "alexnet", "vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn",
    "googlenet", "googlenet_paper", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "densenet121", "densenet169", "densenet201", "mobilenet_v1", "mobilenet_v2",
    # the lecture's "more recent architectures"
    "zfnet", "xception", "inception_v2", "inception_v3", "inception_v4", "inception_resnet_v2", "mobilenet_v3_large",
    "mobilenet_v3_small", "fractalnet20", "wide_resnet50_2", "wide_resnet101_2", "resnext50_32x4d", "pyramidnet110_a48",
    "pyramidnet272_a200", "attention56", "attention92", "efficientnet_b0", "efficientnet_b1", "efficientnet_b2",
    "efficientnet_b3",
}


def test_every_architecture_of_the_course_is_registered():
    assert EXPECTED <= set(cnnlab.list_models())


def test_list_models_filters_by_pattern():
    assert cnnlab.list_models("resnet*") == ["resnet18", "resnet20", "resnet32", "resnet34", "resnet44", "resnet50",
                                             "resnet56", "resnet101", "resnet110", "resnet152"]
    assert cnnlab.list_models("plain*") == ["plain20", "plain32", "plain44", "plain56"]
    assert cnnlab.list_models("vgg*_bn") == ["vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn"]
    assert cnnlab.list_models("nothing*") == []


def test_duplicate_registration_is_refused():
    with pytest.raises(ValueError, match="already registered"):
        @register_model(family="resnet", paper="x")
        def resnet18(**kwargs):  # noqa: F811
            raise AssertionError("never built")


def test_a_registered_models_own_arguments_are_checked_as_it_takes_them(monkeypatch):
    """A model registered from outside: a required argument of its class, a builder's own parameter, and a class
    that takes any keyword; only names none of them takes are refused before building."""
    from torch import nn

    from cnnlab.models import _registry, check_model_arguments

    monkeypatch.setattr(_registry, "_builders", dict(_registry._builders))  # registered for this test only
    monkeypatch.setattr(_registry, "_meta", dict(_registry._meta))

    class Net(nn.Module):
        def __init__(self, width: int, num_classes: int = 10, in_chans: int = 3):
            super().__init__()
            self.fc = nn.Linear(width * in_chans, num_classes)

    class Open(nn.Module):
        def __init__(self, num_classes: int = 10, **kwargs):
            super().__init__()

    @register_model(family="mine", paper="x")
    def my_net(**kwargs) -> Net:
        return Net(**kwargs)

    @register_model(family="mine", paper="x")
    def my_deep_net(depth: int = 2, **kwargs) -> Net:
        return Net(width=depth, **kwargs)

    @register_model(family="mine", paper="x")
    def my_open_net(**kwargs) -> Open:
        return Open(**kwargs)

    assert cnnlab.create_model("my_net", width=4, num_classes=3).fc.out_features == 3
    assert cnnlab.create_model("my_deep_net", depth=3).fc.in_features == 9
    assert check_model_arguments("my_open_net", anything=1) == {"anything": 1}
    with pytest.raises(CnnlabError, match="my_net has no argument 'widht'"):
        check_model_arguments("my_net", widht=4)
    with pytest.raises(CnnlabError, match="my_deep_net has no argument 'colour'; its arguments: depth, num_classes"):
        check_model_arguments("my_deep_net", colour=4, depth=2)


@pytest.mark.parametrize(("name", "key", "value", "others"), [
    ("vgg11", "batch_norm", True, "vgg11_bn, vgg13"), ("resnet20", "residual", False, "plain20, plain32"),
    ("efficientnet_b0", "width_mult", 2.0, "efficientnet_b1, efficientnet_b2")])
def test_an_argument_a_builder_sets_itself_is_one_line_and_not_listed_as_the_models(name, key, value, others):
    """create_model("vgg11", batch_norm=True) was Python's 'got multiple values for argument', said as is, and
    vgg11's arguments listed batch_norm."""
    with pytest.raises(CnnlabError, match=rf"^{name} sets {key} itself \(it is part of what makes it {name}\); "
                                          rf"leave it out, or choose another \w+ model: .*{others}"):
        cnnlab.create_model(name, **{key: value})
    with pytest.raises(CnnlabError, match=rf"{name} has no argument 'nope'; its arguments: ") as listed:
        cnnlab.models.check_model_arguments(name, nope=1)
    assert key not in str(listed.value).split("its arguments: ")[1].split(", ")


def test_unknown_name_suggests_close_matches():
    with pytest.raises(UnknownNameError, match="did you mean 'resnet18'"):
        cnnlab.create_model("resnet19")
    with pytest.raises(UnknownNameError, match="choose one of"):
        cnnlab.create_model("transformer")


def test_unknown_builder_argument_is_a_clear_error():
    with pytest.raises(CnnlabError, match="resnet18 has no argument 'widht'; its arguments: num_classes"):
        cnnlab.create_model("resnet18", widht=2)


def test_models_carry_their_metadata():
    m = cnnlab.create_model("lenet5")
    assert m.meta.name == "lenet5" and m.meta.family == "lenet" and "LeCun" in m.meta.paper
    assert cnnlab.model_meta("resnet50").torchvision == "resnet50"
    assert cnnlab.model_meta("mobilenet_v1").torchvision is None


@pytest.mark.parametrize("kwargs, message", [
    (dict(name="resnet18", num_classes=-1), "num_classes must be an integer from 0 \\(no classifier\\), got -1"),
    (dict(name="resnet18", in_chans=0), "in_chans must be an integer from 1, got 0"),
    (dict(name="resnet18", in_chans="3"), "in_chans must be an integer from 1, got '3'"),  # not 'at least 1, got 3'
    (dict(name="resnet18", num_classes=True), "num_classes must be an integer from 0 \\(no classifier\\), got True"),
    (dict(name="mobilenet_v2", width_mult=0), "width_mult must be positive"),
    (dict(name="lenet5", act="gelu2"), "unknown activation 'gelu2'; did you mean 'gelu'"),
    (dict(name="plain20", act_layer="sigmod"), "unknown activation 'sigmod'; did you mean 'sigmoid'"),
    (dict(name="resnet18", norm_layer="layer"), "unknown norm layer 'layer'"),
    (dict(name="vgg11", norm_layer="batch"), "vgg11 has no argument 'norm_layer'; its arguments: num_classes, "
                                             "in_chans, drop_rate, small_input, act_layer$"),
    (dict(name="resnet18", act_layer=5), "act_layer must be a layer's name such as 'relu' or a layer class such as "
                                         "nn.ReLU; got 5"),
    (dict(name="resnet18", norm_layer=5), "norm_layer must be a layer's name such as 'batch' or a layer class"),
    (dict(name="resnet18", weights=True), "weights is the path of a weights file .*, got True"),
    (dict(name=None), "a model is given by its name, a string such as 'alexnet'; got None"),
    (dict(name=torch.nn.Linear), "a model is given by its name, a string .*; got <class"),
    # a negative rate built most families without dropout, silently; DenseNet took 1.0 (every feature dropped)
    (dict(name="resnet18", drop_rate=-0.5), "resnet18: drop_rate must be in \\[0, 1\\) \\(the probability of "
                                           "dropping\\), got -0.5"),
    (dict(name="densenet121", drop_rate=1.0), "drop_rate must be in \\[0, 1\\)"),
    (dict(name="googlenet", aux_drop_rate=-1), "aux_drop_rate must be in \\[0, 1\\)"),
    (dict(name="efficientnet_b0", drop_path_rate=-0.1), "drop_path_rate must be in \\[0, 1\\)"),
])
def test_impossible_model_arguments_are_clear_errors(kwargs, message):
    name = kwargs.pop("name")
    with pytest.raises(CnnlabError, match=message):
        cnnlab.create_model(name, **kwargs)


def test_activation_and_norm_layers_can_be_named_as_a_config_file_names_them():
    model = cnnlab.create_model("plain20", act_layer="sigmoid", norm_layer="none")
    kinds = {type(m) for m in model.modules()}
    assert torch.nn.Sigmoid in kinds and torch.nn.ReLU not in kinds and torch.nn.BatchNorm2d not in kinds
    assert model.stem.conv.bias is not None  # without a norm layer the convolution keeps its bias
    lenet = cnnlab.create_model("lenet5", act="sigmoid", batch_norm=True, pool="max")
    assert [type(m).__name__ for m in lenet.features.c1] == ["Conv2d", "BatchNorm2d", "Sigmoid"]
    assert type(cnnlab.create_model("lenet5").features.c1.act).__name__ == "ScaledTanh"  # the paper's tanh
    dense = cnnlab.create_model("densenet121", num_classes=10, small_input=True, norm_layer="none")  # pre-activation
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in dense.modules())
    assert dense.eval()(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_reset_classifier_validates_and_zero_removes_googlenet_aux_heads():
    model = cnnlab.create_model("resnet18", small_input=True)
    with pytest.raises(CnnlabError, match="num_classes must be 0"):
        model.reset_classifier(-1)
    with pytest.raises(CnnlabError, match="num_classes must be an integer from 0 .no classifier., got '10'"):
        model.reset_classifier("10")
    g = cnnlab.create_model("googlenet", small_input=True)
    g.reset_classifier(0)
    assert g.aux1 is None and g.aux2 is None
