"""vaekit's AdamW is torch.optim.AdamW(fused=True), step for step and state for state, minus its import cost."""

import copy
import subprocess
import sys

import pytest
import torch

from vaekit.optim import FusedAdamW, LRSchedule, adamw


def _pair(seed: int = 0) -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(seed)
    a = torch.nn.Sequential(torch.nn.Linear(7, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3), torch.nn.Linear(3, 2))
    b = torch.nn.Sequential(torch.nn.Linear(7, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3), torch.nn.Linear(3, 2))
    b.load_state_dict(a.state_dict())
    b[2].weight.requires_grad_(False)  # frozen in both: no state, no update
    a[2].weight.requires_grad_(False)
    return a, b


def _train(model: torch.nn.Module, opt, steps: int, seed: int, skip_last: bool = False) -> None:
    gen = torch.Generator().manual_seed(seed)
    for i in range(steps):
        x = torch.randn(16, 7, generator=gen)
        opt.zero_grad(set_to_none=True)
        out = model[:3](x) if skip_last and i % 2 else model(x)  # the last layer gets no gradient every other step
        out.pow(2).mean().backward()
        opt.step()


@pytest.mark.parametrize("betas, wd", [((0.9, 0.999), 0.0), ((0.5, 0.999), 0.05)])
def test_fused_adamw_matches_torch_bit_for_bit(betas, wd):
    ours_model, torch_model = _pair()
    ours = FusedAdamW([p for p in ours_model.parameters() if p.requires_grad], lr=3e-3, betas=betas, weight_decay=wd)
    theirs = torch.optim.AdamW([p for p in torch_model.parameters() if p.requires_grad], lr=3e-3, betas=betas,
                               weight_decay=wd, fused=True)
    _train(ours_model, ours, 12, seed=1, skip_last=True)
    _train(torch_model, theirs, 12, seed=1, skip_last=True)
    for p, q in zip(ours_model.parameters(), torch_model.parameters(), strict=True):
        assert torch.equal(p, q)
    mine, reference = ours.state_dict(), theirs.state_dict()
    assert mine["state"].keys() == reference["state"].keys()
    for pid, entry in reference["state"].items():
        for name, value in entry.items():
            assert torch.equal(mine["state"][pid][name], value), (pid, name)
            assert mine["state"][pid][name].dtype == value.dtype
    assert [g["params"] for g in mine["param_groups"]] == [g["params"] for g in reference["param_groups"]]


def test_state_moves_both_ways_between_fused_adamw_and_torch():
    """A checkpoint from either optimizer resumes in the other with the same next steps."""
    for first, second in ((FusedAdamW, torch.optim.AdamW), (torch.optim.AdamW, FusedAdamW)):
        a, b = _pair(3)
        opt_a = first([p for p in a.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.01)
        _train(a, opt_a, 5, seed=2)
        b.load_state_dict(a.state_dict())
        opt_b = second([p for p in b.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.01)
        opt_b.load_state_dict(copy.deepcopy(opt_a.state_dict()))  # as a checkpoint holds it
        _train(a, opt_a, 4, seed=5)
        _train(b, opt_b, 4, seed=5)
        for p, q in zip(a.parameters(), b.parameters(), strict=True):
            torch.testing.assert_close(p, q, rtol=0, atol=1e-6)  # fused and foreach round apart


def test_moments_load_in_the_layout_of_a_channels_last_parameter():
    """The fused kernel walks the memory of a parameter and its moments alike: moments saved contiguous (as a
    checkpoint holds them) must load in the channels-last layout the Trainer gives conv weights on a CPU, or the
    next steps update the wrong elements."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 4, 3).to(memory_format=torch.channels_last)
    unbroken = copy.deepcopy(conv)
    opt, opt_unbroken = FusedAdamW(conv.parameters(), lr=1e-2), FusedAdamW(unbroken.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(1)
    batches = [torch.randn(2, 3, 6, 6, generator=gen) for _ in range(6)]

    def step(model: torch.nn.Module, optimizer: FusedAdamW, x: torch.Tensor) -> None:
        optimizer.zero_grad()
        model(x).pow(2).mean().backward()
        optimizer.step()

    for x in batches[:3]:
        step(conv, opt, x)
        step(unbroken, opt_unbroken, x)
    saved = copy.deepcopy(opt.state_dict())
    for entry in saved["state"].values():
        entry["exp_avg"], entry["exp_avg_sq"] = entry["exp_avg"].contiguous(), entry["exp_avg_sq"].contiguous()
    opt.load_state_dict(saved)
    assert opt.state[conv.weight]["exp_avg"].is_contiguous(memory_format=torch.channels_last)
    for x in batches[3:]:
        step(conv, opt, x)
        step(unbroken, opt_unbroken, x)
    torch.testing.assert_close(conv.weight, unbroken.weight, rtol=0, atol=1e-7)


def test_loading_state_of_the_wrong_shape_is_refused():
    a, _ = _pair()
    opt = FusedAdamW([p for p in a.parameters() if p.requires_grad])
    _train(a, opt, 1, seed=0)
    state = opt.state_dict()
    state["state"][0]["exp_avg"] = torch.zeros(3, 3)
    with pytest.raises(ValueError, match="shape"):
        FusedAdamW([p for p in a.parameters() if p.requires_grad]).load_state_dict(state)


def test_adamw_falls_back_to_torch_where_the_fused_kernel_does_not_serve():
    assert isinstance(adamw(torch.nn.Linear(2, 2).parameters(), lr=1e-3, weight_decay=0.0), FusedAdamW)
    half_int = [torch.zeros(2, dtype=torch.int64)]
    with pytest.raises(ValueError, match="floating-point"):
        FusedAdamW(half_int)


def test_schedule_sets_the_rate_from_the_factor_and_round_trips():
    a, _ = _pair()
    opt = FusedAdamW([p for p in a.parameters() if p.requires_grad], lr=0.1)
    progress = {"f": 1.0}
    sched = LRSchedule(opt, lambda: progress["f"])
    assert sched.get_last_lr() == [0.1]
    progress["f"] = 0.25
    sched.step()
    assert sched.get_last_lr() == [pytest.approx(0.025)]
    opt2 = FusedAdamW([p for p in a.parameters() if p.requires_grad], lr=0.7)  # a resumed run under another --lr
    opt2.load_state_dict(opt.state_dict())
    sched2 = LRSchedule(opt2, lambda: progress["f"])
    sched2.load_state_dict(sched.state_dict())
    assert sched2.base_lrs == [pytest.approx(0.1)]
    sched2.step()
    assert sched2.get_last_lr() == [pytest.approx(0.025)]


def test_training_does_not_import_the_compiler(tmp_path):
    """torch.optim imports torch._dynamo (about a second at start-up); one vaekit training epoch must not."""
    code = ("import sys; from vaekit.cli import main; "
            "rc = main(['train', '--arch', 'mlp', '--epochs', '1', '--train-size', '256', '--eval-size', '256', "
            f"'--no-tensorboard', '--run-dir', {str(tmp_path / 'run')!r}]); "
            "assert rc == 0, rc; print('dynamo' if 'torch._dynamo' in sys.modules else 'clean')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "clean"


def test_schedule_reads_the_lambdalr_state_of_older_checkpoints():
    a, _ = _pair()
    old_opt = torch.optim.AdamW([p for p in a.parameters() if p.requires_grad], lr=0.3)
    old = torch.optim.lr_scheduler.LambdaLR(old_opt, lambda step: 0.5 ** step)
    old_opt.step()
    old.step()
    opt = FusedAdamW([p for p in a.parameters() if p.requires_grad], lr=1.0)
    opt.load_state_dict(copy.deepcopy(old_opt.state_dict()))
    sched = LRSchedule(opt, lambda: 0.5)
    sched.load_state_dict(copy.deepcopy(old.state_dict()))
    assert sched.get_last_lr() == [pytest.approx(0.15)]  # the rate in force when the checkpoint was written
    sched.step()
    assert sched.get_last_lr() == [pytest.approx(0.15)]  # base 0.3 from the old state, times the factor


@pytest.mark.parametrize("skip, moved", [(1e-6, False), (1e9, True), (0.0, True)])
def test_a_step_whose_gradient_norm_passes_the_skip_threshold_is_not_taken(skip, moved):
    from vaekit.config import TrainConfig
    from vaekit.models import build_model
    from vaekit.models.trainable import StepContext

    torch.manual_seed(0)
    model = build_model(TrainConfig.from_flat(arch="mlp", hidden=[16], latent_dim=2, image_shape=[1, 28, 28],
                                              num_classes=10).model_config())
    before = copy.deepcopy(model.state_dict())
    ctx = StepContext.standalone([adamw(model.parameters(), lr=1e-2, weight_decay=0.0)], forward=model, grad_clip=100.0)
    ctx.grad_skip = skip
    result = model.training_step(torch.rand(8, 1, 28, 28).round(), None, ctx)
    assert result.skipped is not moved
    unchanged = all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert unchanged is not moved
