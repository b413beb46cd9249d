"""FractalNet (Larsson, Maire & Shakhnarovich, "FractalNet: Ultra-Deep Neural Networks without Residuals", ICLR
2017): the expansion rule, drop-path (local and global) and its absence in eval mode, single-column evaluation,
and the parameter count, checked against computations written out here."""

import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.errors import CnnlabError
from cnnlab.nn.fractal import FractalBlock, local_drop_path_mask


def _meta(**kwargs):
    with torch.device("meta"):
        return cnnlab.create_model("fractalnet20", **kwargs)


def _tiny(**kwargs):
    """A small FractalNet-20 layout (3 columns, 3 blocks, 4 channels) built directly, for fast forwards."""
    from cnnlab.models.fractalnet import FractalNet

    return FractalNet(3, (4, 4, 4), num_classes=3, small_input=True, **kwargs)


def _convs(block):
    return [[layer.conv for layer in column] for column in block.columns]


def _recursive(block, x):
    """The expansion rule itself, f_1(z) = conv(z), f_{C+1}(z) = join(f_C(f_C(z)), conv(z)), nested joins that
    meet merged into one mean (the paper's Fig. 1): it returns the inputs of f_C's last join. Each column's
    layers are consumed left to right, so the recursion names the same layers as the block's column layout."""
    C = block.num_columns
    layers = [iter(column) for column in block.columns]

    def branches(k, z):          # f_k spans columns C-k .. C-1
        if k == 1:
            return [next(layers[C - 1])(z)]
        inner = branches(k - 1, z)
        inner = branches(k - 1, sum(inner) / len(inner))
        return inner + [next(layers[C - k])(z)]

    out = branches(C, x)
    assert all(next(it, None) is None for it in layers)  # every layer used exactly once
    return sum(out) / len(out)


# --- the expansion rule --------------------------------------------------------------------------

@pytest.mark.parametrize("C", [1, 2, 3, 4])
def test_column_c_has_2_to_the_c_layers_and_a_block_2_to_the_c_minus_1(C):
    block = FractalBlock(3, 8, C)
    assert [len(column) for column in block.columns] == [2**c for c in range(C)]
    assert sum(isinstance(m, nn.Conv2d) for m in block.modules()) == 2**C - 1
    assert block.depth == 2 ** (C - 1)
    # the first layer of every column takes the block's input, the rest keep the block's width
    assert [[conv.in_channels for conv in col] for col in _convs(block)] == \
        [[3] + [8] * (2**c - 1) for c in range(C)]


def test_joins_merge_the_columns_that_end_together_as_in_the_papers_figure():
    # f_2 ends in a join of 2; f_3 = join(f_2(f_2(z)), conv(z)): the inner f_2's join of 2, then one join of all 3;
    # f_4: 2, 3, 2, 4 (the last join of the second f_3 merged with f_4's own)
    assert FractalBlock(3, 4, 1).joins == []
    assert FractalBlock(3, 4, 2).joins == [(0, 1)]
    assert FractalBlock(3, 4, 3).joins == [(1, 2), (0, 1, 2)]
    assert FractalBlock(3, 4, 4).joins == [(2, 3), (1, 2, 3), (2, 3), (0, 1, 2, 3)]


@pytest.mark.parametrize("C", [1, 2, 3, 4])
def test_block_computes_the_recursive_expansion_rule(C):
    torch.manual_seed(0)
    block = FractalBlock(3, 4, C).eval()
    x = torch.randn(2, 3, 6, 6)
    with torch.no_grad():
        assert torch.allclose(block(x), _recursive(block, x), atol=1e-6)


def test_fractalnet20_is_20_layers_deep_with_35_conv_layers():
    model = _meta()
    assert model.num_blocks == 5 and model.num_columns == 3
    assert model.column_depths() == [5, 10, 20]                        # B * 2^c: the deepest path is 20
    assert sum(isinstance(m, nn.Conv2d) for m in model.modules()) == 5 * (1 + 2 + 4)
    assert [b.out_chs for b in model.blocks()] == [64, 128, 256, 512, 512]
    assert all(isinstance(getattr(model, f"pool{i}"), nn.MaxPool2d) for i in range(1, 6))
    assert [f.reduction for f in model.feature_info] == [2, 4, 8, 16, 32]
    assert model.min_input_size == (3, 32, 32)                          # 5 pools: 32 -> 1
    small = _meta(small_input=True)
    assert isinstance(small.pool5, nn.Identity) and small.min_input_size == (3, 16, 16)


# --- the parameter count -------------------------------------------------------------------------

def test_fractalnet20_has_33_7m_parameters_where_the_papers_table_1_says_38_6m():
    # paper, Table 1: "FractalNet (20 layers, 38.6M params)". Written out from the text's layout: per block
    # 3 convs from the block's input (one per column) and 4 at its width, 3x3, no bias, BN (2 per channel);
    # the FC layer. The authors' released generator builds the same 33.7M; the paper's figure is not reached
    # by any reading of its layout (counting every conv at its block's width gives 38.5M).
    total, c_in = 0, 3
    for w in (64, 128, 256, 512, 512):
        total += 3 * 9 * c_in * w + 4 * 9 * w * w + 7 * 2 * w
        c_in = w
    total += 512 * 10 + 10
    assert sum(p.numel() for p in _meta().parameters()) == total == 33_724_618
    assert round(total / 1e6, 1) == 33.7


# --- drop-path -------------------------------------------------------------------------------------

def test_local_drop_path_never_drops_every_input_of_a_join():
    torch.manual_seed(0)
    masks = [local_drop_path_mask(3, 0.9) for _ in range(2000)]
    assert all(any(m) for m in masks)
    # when all three are dropped (0.9^3 = 73% of draws) one survives, chosen uniformly
    singles = [m.index(True) for m in masks if sum(m) == 1]
    counts = torch.bincount(torch.tensor(singles), minlength=3).float() / len(singles)
    assert torch.allclose(counts, torch.full((3,), 1 / 3), atol=0.05)
    assert all(m == [True, True] for m in (local_drop_path_mask(2, 0.0) for _ in range(50)))
    # at p = 0.15 each input survives about 85% of the time (a little more: the rescue of all-dropped joins)
    kept = torch.tensor([local_drop_path_mask(2, 0.15) for _ in range(4000)]).float().mean()
    assert abs(kept.item() - (0.85 + 0.15**2 / 2)) < 0.02


def test_local_drop_path_skips_dropped_paths_yet_keeps_every_join_alive():
    torch.manual_seed(0)
    model = _tiny(drop_path="local", local_drop=0.99).train()
    x = torch.randn(2, 3, 16, 16)
    for _ in range(5):
        model.zero_grad(set_to_none=True)
        out = model(x)
        assert torch.isfinite(out).all()
        out.sum().backward()
        # almost every join keeps one input: the layers feeding only dropped inputs were never run
        used = sum(m.weight.grad is not None for m in model.modules() if isinstance(m, nn.Conv2d))
        assert 3 <= used < 3 * 7


@pytest.mark.parametrize("seed", range(6))
def test_global_drop_path_trains_exactly_one_column_in_every_block(seed):
    torch.manual_seed(seed)
    model = _tiny(drop_path="global").train()
    model(torch.randn(2, 3, 16, 16)).sum().backward()
    used = {(b, c) for b, block in enumerate(model.blocks()) for c, col in enumerate(_convs(block))
            if all(conv.weight.grad is not None for conv in col)}
    unused = {(b, c) for b, block in enumerate(model.blocks()) for c, col in enumerate(_convs(block))
              if all(conv.weight.grad is None for conv in col)}
    assert len(used) + len(unused) == 3 * 3                          # a column is all in or all out
    columns = {c for _, c in used}
    assert len(columns) == 1 and len(used) == 3                      # the same single column in each block


def test_global_drop_path_output_is_the_chosen_column_alone():
    torch.manual_seed(0)
    model = _tiny(drop_path="global").train()
    x = torch.randn(2, 3, 16, 16)
    state = torch.random.get_rng_state()
    column = int(torch.randint(3, ()))                              # what the forward pass will draw
    torch.random.set_rng_state(state)
    out = model(x)
    alone = _tiny(column=column)
    alone.load_state_dict(model.state_dict())
    alone.train()
    assert torch.allclose(out, alone(x), atol=1e-6)


def test_mixed_drop_path_picks_global_for_about_half_the_mini_batches():
    torch.manual_seed(0)
    model = _tiny(drop_path="mixed")
    picks = [model.sample_paths() for _ in range(2000)]
    share = sum(column is not None for column, _ in picks) / len(picks)
    assert abs(share - 0.5) < 0.05
    assert all(p == 0.15 for column, p in picks if column is None)
    assert {column for column, _ in picks if column is not None} == {0, 1, 2}
    assert _tiny(drop_path="local").sample_paths() == (None, 0.15)


def test_drop_path_draws_from_the_global_generator_so_a_reseeded_pass_repeats():
    model = _tiny(drop_path="mixed", block_dropout=0.1).train()
    x = torch.randn(2, 3, 16, 16)
    outs = []
    for _ in range(2):
        torch.manual_seed(7)
        outs.append([model(x) for _ in range(4)])
    assert all(torch.equal(a, b) for a, b in zip(*outs, strict=True))


# --- eval mode and single columns --------------------------------------------------------------------

def test_eval_mode_averages_every_input_of_every_join_and_draws_nothing():
    torch.manual_seed(0)
    block = FractalBlock(3, 4, 2).eval()
    x = torch.randn(2, 3, 6, 6)
    (c0,), (c1a, c1b) = block.columns
    with torch.no_grad():
        assert torch.allclose(block(x, drop_prob=0.5), (c0(x) + c1b(c1a(x))) / 2, atol=1e-6)
    plain = _tiny()
    for mode in ("local", "global", "mixed"):
        model = _tiny(drop_path=mode, block_dropout=0.1)
        model.load_state_dict(plain.state_dict())
        model.eval(), plain.eval()
        x = torch.randn(2, 3, 16, 16)
        state = torch.random.get_rng_state()
        with torch.no_grad():
            assert torch.equal(model(x), plain(x))
        assert torch.equal(torch.random.get_rng_state(), state)


def test_eval_uses_every_layer_of_every_column():
    model = _tiny(drop_path="mixed").eval()
    model(torch.randn(2, 3, 16, 16)).sum().backward()
    assert all(m.weight.grad is not None for m in model.modules() if isinstance(m, nn.Conv2d))


def test_the_deepest_column_alone_is_a_plain_network_of_its_layers():
    torch.manual_seed(0)
    model = _tiny().eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        full = model(x)
        deepest = model.use_column(-1)(x)
        z = x
        for b, block in enumerate(model.blocks()):
            z = getattr(model, f"pool{b + 1}")(block.columns[2](z))
        assert torch.allclose(deepest, model.forward_head(z), atol=1e-6)
        assert not torch.allclose(deepest, full)
        assert model.column == 2 and torch.equal(model.use_column(None)(x), full)


def test_bad_drop_path_and_column_arguments_are_clear_errors():
    with pytest.raises(CnnlabError, match="unknown drop-path mode 'globl'; did you mean 'global'"):
        _meta(drop_path="globl")
    with pytest.raises(CnnlabError, match=r"column must be an int in \[-3, 2\]"):
        _meta(column=3)
    with pytest.raises(CnnlabError, match="local_drop is a probability"):
        _meta(local_drop=1.5)
    with pytest.raises(CnnlabError, match="block_dropout"):
        _meta(block_dropout=0.3)


def test_paper_block_dropout_is_0_to_0_4_by_block():
    model = _meta(block_dropout=0.1)
    rates = [sorted({m.p for m in block.modules() if isinstance(m, nn.Dropout)}) for block in model.blocks()]
    assert rates == [[]] + [[pytest.approx(b / 10)] for b in range(1, 5)]           # 0, .1, .2, .3, .4
