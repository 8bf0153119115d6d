"""The causal poem decoder: it never looks ahead, free bits leave the reported bound alone, it trains, the shared
objectives (elbo, iwae_bound) serve it unchanged, and the constrained decoder drives it like the parallel one."""

from pathlib import Path

import pytest
import torch

import vaekit
from steps import adam_steps
from vaekit.config import TrainConfig
from vaekit.objectives import elbo, iwae_bound
from vaekit.poetry import VerseRules, write
from vaekit.poetry.model import PoemVAE
from vaekit.poetry.verse import check, has_doubled_character
from vaekit.train import Trainer

FIXTURE = Path(__file__).parent / "fixtures" / "poetry"


def causal(vocab: int = 50, length: int = 20, layers: int = 4) -> PoemVAE:
    torch.manual_seed(0)
    return PoemVAE.build(vocab, latent_dim=8, embedding_dim=16, decoder="causal", decoder_layers=layers)


def test_a_causal_layer_is_its_gated_convolution_with_the_bias_moved_to_the_z_term():
    from vaekit.poetry.model import CausalGatedConv

    torch.manual_seed(1)
    layer = CausalGatedConv(channels=16, code_dim=8, dilation=4)
    x, z = torch.randn(3, 16, 20), torch.randn(3, 8)
    full = layer.conv(torch.nn.functional.pad(x, (layer.pad, 0))) + layer.from_z(z)[:, :, None]  # the definition
    a, b = full.chunk(2, dim=1)
    assert torch.allclose(layer(x, z), x + a * torch.sigmoid(b), atol=1e-6)


def test_the_causal_decoder_never_looks_ahead():
    model = causal().eval()
    x = torch.randint(1, 50, (3, 20))
    z = torch.randn(3, 8)
    before = model.causal_logits(z, x[:, :-1])
    changed = x.clone()
    changed[:, 9] = (changed[:, 9] % 49) + 1  # another character at position 9
    after = model.causal_logits(z, changed[:, :-1])
    assert torch.allclose(before[:, :10], after[:, :10])  # positions 0..9 see only what came before them
    assert not torch.allclose(before[:, 10:], after[:, 10:])  # later ones do read it
    step = model.step_decoder(z)
    assert torch.allclose(step(x[:, :7]), before[:, 7], atol=1e-6)  # one step is the teacher-forced logit


def test_free_bits_shape_the_loss_not_the_reported_bound():
    model = causal()
    x = torch.randint(1, 50, (16, 20))
    torch.manual_seed(3)
    plain = elbo(model, x)
    torch.manual_seed(3)
    floored = elbo(model, x, free_bits=2.0)
    assert torch.equal(plain.elbo, floored.elbo) and torch.equal(plain.kl, floored.kl)
    # an untrained posterior sits below a 2-nat floor per dimension, so the floor raises the loss
    assert float(floored.loss.detach()) > float(plain.loss.detach())


def test_the_shared_objectives_serve_the_causal_model():
    model = causal().eval()
    x = torch.randint(1, 50, (4, 20))
    with torch.no_grad():
        bound = iwae_bound(model, x, k=16, chunk_size=5)
        single = torch.stack([elbo(model, x).elbo for _ in range(32)]).mean(0)
    assert bound.shape == (4,) and bool((bound > single - 1.0).all())  # the k-sample bound is the tighter one


def test_a_training_step_lowers_the_loss():
    losses = adam_steps(causal(), torch.randint(1, 50, (32, 20)), steps=30, lr=3e-3, seed=1)
    assert losses[-1] < losses[0] - 5


def test_under_bf16_autocast_the_poem_terms_stay_fp32_and_near_the_exact_ones():
    """`--precision bf16` autocasts the whole step: the heads cast back, so every term is fp32 and only rounded."""
    model = causal()
    x = torch.randint(1, 50, (32, 20))
    torch.manual_seed(1)
    exact = model(x)
    torch.manual_seed(1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = model(x)
    for name in ("log_likelihood", "kl", "elbo", "loss"):
        value = getattr(mixed, name)
        assert value.dtype == torch.float32, name
        torch.testing.assert_close(value, getattr(exact, name), rtol=0.02, atol=0.05)
    mixed.loss.backward()
    assert all(p.grad.dtype == torch.float32 for p in model.parameters() if p.grad is not None)


@pytest.fixture(scope="module")
def fixture_causal_model(tmp_path_factory):

    run = tmp_path_factory.mktemp("causal") / "run"
    cfg = TrainConfig.from_flat(task="poem", model="vae", run_dir=str(run), form="quatrain", corpus_dir=str(FIXTURE),
                      epochs=3, batch_size=32, latent_dim=8, embedding_dim=32, min_count=1, decoder="causal",
                      decoder_layers=3, free_bits=0.5, device="cpu", tensorboard=False)
    metrics = Trainer(cfg, log=lambda _m: None).fit()
    assert metrics["epoch"] == 3
    return vaekit.load(run)


def test_constrained_decoding_drives_the_causal_model_over_many_seeds(fixture_causal_model):
    model = fixture_causal_model
    assert not model.parallel
    for text in write(model, 25, seed=4, temperature=0.8, rules=VerseRules("quatrain")):
        verdict = check(text, "quatrain")
        assert verdict.fits, [str(b) for b in verdict.breaks]
        assert not has_doubled_character(text)
    heads = "".join(model.vocab.chars[1:5])
    for text in write(model, 5, seed=1, rules=VerseRules("quatrain", acrostic=heads)):
        assert [text[i * 5] for i in range(4)] == list(heads)


def test_the_stepping_decoder_gives_the_full_pass_logits_whatever_prefixes_it_is_given():
    from vaekit.poetry.model import CausalStepper

    model = causal(layers=5).eval()
    full = lambda z, prefix: model._output(model._causal_states(z, prefix, None)[:, -1])  # noqa: E731
    g = torch.Generator().manual_seed(0)
    z = torch.randn(6, 8, generator=g)
    z[3] = z[1]  # rows 1 and 3 share a code: they may stand in for each other
    step = model.step_decoder(z)
    assert isinstance(step, CausalStepper)
    prefix = torch.zeros(6, 0, dtype=torch.long)
    with torch.no_grad():
        for t in range(20):
            if t == 8:  # rows 1 and 3 swap their prefixes (kept rows reordered)
                prefix = prefix[[0, 3, 2, 1, 4, 5]]
            if t == 12:  # rows 0 and 2 swap theirs (their codes differ: the full pass)
                prefix = prefix[[2, 1, 0, 3, 4, 5]]
            prefix = torch.cat([prefix, torch.randint(1, 50, (6, 1), generator=g)], dim=1)
            assert torch.allclose(step(prefix), full(z, prefix), atol=1e-5), t
        jump = torch.randint(1, 50, (6, 5), generator=g)  # an unrelated, shorter prefix
        assert torch.allclose(step(jump), full(z, jump), atol=1e-5)
        jump = torch.cat([jump, torch.randint(1, 50, (6, 1), generator=g)], dim=1)  # and one step on from it
        assert torch.allclose(step(jump), full(z, jump), atol=1e-5)
    assert not isinstance(model.train().step_decoder(z), CausalStepper)  # dropout in training: the full pass


def test_the_stepping_decoder_of_a_themed_model_reads_the_theme():
    torch.manual_seed(0)
    model = PoemVAE.build(50, latent_dim=8, embedding_dim=16, decoder="causal", decoder_layers=3, themes=7,
                    conditioning="both").eval()
    z, y = torch.randn(3, 8), torch.tensor([0, 4, 6])
    prefix = torch.randint(1, 50, (3, 10))
    step = model.step_decoder(z, y)
    with torch.no_grad():
        for t in range(11):
            want = model._output(model._causal_states(z, prefix[:, :t], y)[:, -1])
            assert torch.allclose(step(prefix[:, :t]), want, atol=1e-5)
