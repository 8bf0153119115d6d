"""Evaluation: ELBO terms, and test log-likelihood in nats by importance sampling (iwae_bound).

Test images are binarized once with a fixed seed (the usual protocol for models trained with
dynamic binarization), so numbers are comparable between runs and with published tables.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import partial

import torch
from torch import Tensor, nn

from vaekit import kernels
from vaekit.data import Split, binarize
from vaekit.distributions import dequantization_offset
from vaekit.memory import EvalPlan, default_budget, plan_passes
from vaekit.models.likelihoods import DISCRETE_LIKELIHOODS
from vaekit.objectives import batches, bound_metrics, iwae_bound

__all__ = ["EVAL_SEED", "eval_images", "elbo_metrics", "NLLResult", "NLLSettings", "estimate_nll", "protocol_name",
           "batches", "evaluation_copy",
           "latent_statistics", "reconstruction_error", "sample_quality", "pixel_diversity",
           "ACTIVE_UNIT_THRESHOLD", "PRECISIONS"]

ACTIVE_UNIT_THRESHOLD = 0.01

EVAL_SEED = 0

# fp32: every product in float32. bf16: the decoder's products in bfloat16 (autocast), everything summed into
# log p(x) in float32 (the likelihood's log-density, the prior and posterior densities, the logsumexp).
PRECISIONS = ("fp32", "bf16")


def eval_images(split: Split, binarization: str, limit: int | None = None) -> tuple[Tensor, Tensor]:
    """The first `limit` images of a split under the evaluation protocol (fixed binarization for binary data)."""
    part = split.head(limit)
    protocol = "none" if binarization == "none" else "static"
    return binarize(part.images, protocol, seed=EVAL_SEED), part.labels


def protocol_name(binarization: str) -> str:
    """How the evaluated images were prepared, printed beside every number."""
    if binarization == "none":
        return "continuous intensities"
    return f"{binarization} binarization in training, test set binarized once (seed {EVAL_SEED})"


def _labels_if_needed(model: torch.nn.Module, y: Tensor) -> Tensor | None:
    return y if _uses_labels(model) else None


def _uses_labels(model: torch.nn.Module) -> bool:
    own = getattr(model, "uses_labels", None)  # models without a ModelConfig (the poem model) say it themselves
    if isinstance(own, bool):
        return own
    return bool(getattr(getattr(model, "config", None), "uses_labels", False))


def _kind(model: torch.nn.Module) -> str:
    """The family member ('vae', 'cvae', ...); models from outside vaekit count as 'vae'."""
    config = getattr(model, "config", None)
    return getattr(config, "model", "vae")


def elbo_metrics(model: torch.nn.Module, images: Tensor, labels: Tensor, batch_size: int = 500,
                 device: torch.device | str = "cpu") -> dict[str, float]:
    """Mean ELBO, log-likelihood and KL per example (nats); reconstruction only for autoencoders."""
    return bound_metrics(model, images, _labels_if_needed(model, labels), batch_size=batch_size, device=device,
                         reconstruction_only=_kind(model) == "ae", kl=getattr(model, "kl_estimator", "analytic"))


@dataclass
class NLLResult:
    """-mean log p(x) over the images, its standard error over images, and the settings that produced it."""

    nll: float
    standard_error: float
    k: int
    images: int
    protocol: str
    bits_per_dim: float | None = None
    dequantized: bool = False  # a density scored on uniformly dequantized images: nll is a code-length bound
    precision: str = "fp32"  # of the decoder's products (PRECISIONS); densities and the logsumexp are fp32

    def line(self) -> str:
        bpd = f", {self.bits_per_dim:.4f} bits/dim" if self.bits_per_dim is not None else ""
        bpd += " (uniformly dequantized)" if self.dequantized else ""
        decoder = f", decoder in {self.precision}" if self.precision != "fp32" else ""
        return (f"nll: {self.nll:.2f} ± {self.standard_error:.2f} nats{bpd} "
                f"(k={self.k}, {self.images} images, {self.protocol}{decoder})")

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class NLLSettings:
    """How the NLL is estimated: k importance samples, the pass sizes (None: from the memory budget), how the
    images were prepared (`protocol`, for the record), their pixel levels (bits/dim), where and in what precision."""

    k: int = 5000
    batch_size: int | None = None
    chunk_size: int | None = None
    protocol: str = ""
    pixel_levels: int | None = None
    device: torch.device | str = "cpu"
    memory: int | None = None
    precision: str = "fp32"


@torch.no_grad()
def estimate_nll(model: torch.nn.Module, images: Tensor, labels: Tensor, k: int = 5000, batch_size: int | None = None,
                 chunk_size: int | None = None, protocol: str = "", pixel_levels: int | None = None,
                 device: torch.device | str = "cpu", progress: Callable[[int], None] | None = None,
                 memory: int | None = None, on_plan: Callable[[EvalPlan], None] | None = None,
                 precision: str = "fp32") -> NLLResult:
    """Test NLL = -mean_x log p(x), log p(x) estimated by iwae_bound with k samples, streamed in chunks.

    Unless given, batch and chunk sizes follow a memory budget (`memory` bytes; about 1 GB on a CPU) over the
    decoder's measured bytes per sample, so peak memory is bounded whatever k and the machine; the estimate
    itself does not depend on them. For `pixel_levels`-level intensities (8-bit grey or colour: 256) the number is
    a code length, also given in bits per dimension: a discrete likelihood scores the images as they are, a
    density (Gaussian, continuous Bernoulli) scores them uniformly dequantized, plus log(levels) nats a pixel, so
    the two kinds of model are compared on one scale. `precision="bf16"` runs the decoder's products in bfloat16
    and keeps every density and the logsumexp in fp32 (benchmarks/eval_memory.py measures speed and bias). The
    speed-ups run on a prepared copy of the model (`evaluation_copy`): the caller's model is never changed.
    """
    settings = NLLSettings(k, batch_size, chunk_size, protocol, pixel_levels, device, memory, precision)
    if settings.precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if _kind(model) == "ae":
        raise ValueError("an autoencoder defines no likelihood p(x): it has no NLL; use a vae, iwae or cvae run")
    return _estimate(model, images, labels, settings, progress, on_plan)


@contextmanager
def evaluation_copy(model: torch.nn.Module, device: torch.device, precision: str = "fp32") -> Iterator[torch.nn.Module]:
    """A copy of the model whose decoder runs in `precision`; the caller's model is left as it is. The estimate
    plans its passes on it, then adds the layout speed-ups of `_fast_layout` for its loop."""
    fast = copy.deepcopy(model)
    with _decoder_precision(fast, device, precision):
        yield fast


def _estimate(model: torch.nn.Module, images: Tensor, labels: Tensor, settings: NLLSettings,
              progress: Callable[[int], None] | None, on_plan: Callable[[EvalPlan], None] | None) -> NLLResult:
    device = torch.device(settings.device)
    k, levels = settings.k, settings.pixel_levels
    with evaluation_copy(model, device, settings.precision) as fast:
        # planned in the decoder's precision (bf16 activations are half the bytes), before the layout changes
        plan = plan_passes(fast, images[:1].to(device), _labels_if_needed(fast, labels[:1].to(device)), k,
                           settings.memory if settings.memory is not None else default_budget(device),
                           settings.batch_size, settings.chunk_size, images=len(images))
        if on_plan is not None:
            on_plan(plan)
        scored_as = _scored_as(fast) if levels is not None else None
        dequantize = scored_as == "density"
        if dequantize:
            noise = torch.rand(images.shape, generator=torch.Generator().manual_seed(EVAL_SEED))
            images = (images * (levels - 1) + noise) / levels
        values = []
        # inference mode, inside the layout change (a tensor made in it can never reach autograd, so no parameter
        # may be one): it skips autograd's bookkeeping, 1-2% here
        with _fast_layout(fast, device), torch.inference_mode():
            for x, y in batches(images, labels if _uses_labels(fast) else None, plan.batch_size, device):
                values.append(iwae_bound(fast, x, k, chunk_size=plan.chunk_size, y=y).double().cpu())
                if progress is not None:
                    progress(len(x))
    log_px = torch.cat(values)
    n = len(log_px)
    se = float(log_px.std(unbiased=True)) / math.sqrt(n) if n > 1 else float("nan")
    dims = math.prod(images.shape[1:])
    nll = -float(log_px.mean()) + (dequantization_offset(dims, levels) if dequantize else 0.0)
    bpd = nll / (dims * math.log(2)) if scored_as is not None else None
    return NLLResult(nll=nll, standard_error=se, k=k, images=n, protocol=settings.protocol, bits_per_dim=bpd,
                     dequantized=dequantize, precision=settings.precision)


@contextmanager
def _decoder_precision(model: torch.nn.Module, device: torch.device, precision: str) -> Iterator[None]:
    """Under "bf16", `model.likelihood` builds p(x|z) under bfloat16 autocast: the decoder's products run in bf16,
    and the distribution it returns scores in fp32 (vaekit's heads cast their parameters; log_prob is called
    outside the autocast region). The encoder, q(z|x) and p(z) are untouched. Undone after."""
    if precision == "fp32":
        yield
        return
    original, own = model.likelihood, "likelihood" in vars(model)

    def likelihood(z: Tensor, y: Tensor | None = None) -> torch.distributions.Distribution:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            p = original(z, y)
        return p

    model.likelihood = likelihood  # type: ignore[method-assign]
    try:
        yield
    finally:
        if own:
            model.likelihood = original  # type: ignore[method-assign]
        else:
            del model.likelihood


@contextmanager
def _fast_layout(model: torch.nn.Module, device: torch.device) -> Iterator[None]:
    """Faster inference while estimating the NLL, every change undone after; the numbers change only in rounding.

    - ReLUs that only ever see a fresh tensor work in place: a fresh 100 MB output of a conv decoder's ReLU costs
      an order of magnitude more in page faults than the in-place one. On bf16 tensors (`precision="bf16"`)
      they clear the sign through an int16 view (`_relu_in_place`).
    - On a CPU, conv weights in channels-last layout: oneDNN's transposed convolutions run faster on the conv
      decoder in that layout.
    - On a CPU, fp32 linear layers by oneDNN's matmul (the kernel torch's own compiler calls for them) instead of
      the BLAS, which is the slower of the two on some CPUs (`vaekit.kernels`).

    docs/benchmarks.md ("Evaluation memory and speed on CPU") measures what they buy.
    """
    relus = _relus_on_fresh_tensors(model)
    for relu in relus:
        relu.forward = _relu_in_place  # type: ignore[method-assign]
    channels_last = device.type == "cpu" and any(  # a model already channels-last (as the Trainer keeps it) stays so
        p.ndim == 4 and not p.is_contiguous(memory_format=torch.channels_last) for p in model.parameters())
    if channels_last:
        model.to(memory_format=torch.channels_last)
    linears = _onednn_linears(model) if device.type == "cpu" else []
    try:
        yield
    finally:
        for linear in linears:
            del linear.forward  # the class's forward again
        if channels_last:
            model.to(memory_format=torch.contiguous_format)
        for relu in relus:
            del relu.forward  # the class's forward again


def _relu_in_place(x: Tensor) -> Tensor:
    """max(x, 0) written over x. A bfloat16 is negative exactly when its bits read as a negative int16, so the
    clamp runs on that view: torch.relu_'s numbers but for NaNs with the sign bit (-> 0; a -0.0 turns +0.0): its bf16
    ReLU converts through fp32 and is several times slower than the int16 clamp."""
    if x.dtype == torch.bfloat16:
        x.view(torch.int16).clamp_min_(0)
        return x
    return torch.relu_(x)


def _onednn_linears(model: torch.nn.Module) -> list[nn.Linear]:
    """Give each fp32 nn.Linear of the model a forward through oneDNN's matmul (`vaekit.kernels.linear`, which
    falls back to torch's own when gradients are on); returns the layers changed, so the caller can restore them."""
    if not kernels.onednn_linear_available():
        return []
    changed = []
    for module in model.modules():
        if type(module) is nn.Linear and module.weight.dtype == torch.float32 and "forward" not in vars(module):
            module.forward = partial(_linear_forward, module)
            changed.append(module)
    return changed


def _linear_forward(layer: nn.Linear, x: Tensor) -> Tensor:
    return kernels.linear(x, layer.weight, layer.bias)


_ALLOCATING = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm1d, nn.BatchNorm2d)


def _relus_on_fresh_tensors(model: torch.nn.Module) -> list[nn.ReLU]:
    """The out-of-place ReLUs of a Sequential that follow a layer writing a new tensor: no one else holds their
    input, so they may overwrite it (a ReLU first in a residual branch sees the block's input, and is left alone)."""
    found = []
    for seq in model.modules():
        if not isinstance(seq, nn.Sequential):
            continue
        fresh = False
        for module in seq:
            if isinstance(module, nn.ReLU) and fresh and not module.inplace:
                found.append(module)
            fresh = fresh or isinstance(module, _ALLOCATING)
    return found


def _scored_as(model: torch.nn.Module) -> str | None:
    """How p(x|z) scores pixel levels: 'levels' (a probability over them: a code length as it stands), 'density'
    (dequantize first), or None (a Bernoulli on grey levels is a cross-entropy: no bits/dim)."""
    kind = getattr(getattr(model, "head", None), "kind", "gaussian")  # models from outside vaekit: densities
    if kind == "bernoulli":
        return None
    return "levels" if kind in DISCRETE_LIKELIHOODS else "density"


@torch.no_grad()
def latent_statistics(model: torch.nn.Module, images: Tensor, labels: Tensor, batch_size: int = 500,
                      device: torch.device | str = "cpu") -> dict[str, object]:
    """KL per latent dimension (averaged over images) and active units (Burda et al. 2015), of the top group; for a
    model of several groups, also the active units of each group (`active_units_per_group`, `group_dims`).

    Unit u is active when A_u = Cov_x(E_q[z_u | x]) > 0.01: its posterior mean moves with the input. In a top-down
    hierarchy a lower group's prior already moves with the input (through the groups above), so a group's unit is
    counted on what its posterior mean adds to its prior's, in prior standard deviations (`posterior_shifts`): a
    group collapsed onto its prior has none active.
    """
    means, kls, group_means = [], [], []
    grouped = hasattr(model, "posterior_shifts")
    for x, y in batches(images, labels if _uses_labels(model) else None, batch_size, device):
        q = model.posterior(x, y)
        means.append(q.mean.double().cpu())
        if grouped:
            group_means.append([m.flatten(1).double().cpu() for m in model.posterior_shifts(x, y)])
        base_q, base_p = getattr(q, "base_dist", None), getattr(model.prior(y), "base_dist", None)
        if base_q is not None and base_p is not None and _kind(model) != "ae":
            kls.append(torch.distributions.kl_divergence(base_q, base_p).double().cpu())
    activity = torch.cat(means).var(0)
    out: dict[str, object] = {"activity": activity.tolist(),
                              "active_units": int((activity > ACTIVE_UNIT_THRESHOLD).sum()),
                              "latent_dim": int(activity.numel())}
    if kls:
        out["kl_per_dim"] = torch.cat(kls).mean(0).tolist()
    if group_means and len(group_means[0]) > 1:
        per_group = [torch.cat(g).var(0) for g in zip(*group_means, strict=True)]
        out["active_units_per_group"] = [int((a > ACTIVE_UNIT_THRESHOLD).sum()) for a in per_group]
        out["group_dims"] = [int(a.numel()) for a in per_group]
    return out


@torch.no_grad()
def reconstruction_error(model: torch.nn.Module, images: Tensor, labels: Tensor, batch_size: int = 500,
                         device: torch.device | str = "cpu") -> dict[str, float]:
    """Squared error per image (summed over pixels) of decoding the posterior mean (every group's, for a
    hierarchy), and -log p(x|z) there."""
    sq, nll = 0.0, 0.0
    for x, y in batches(images, labels if _uses_labels(model) else None, batch_size, device):
        px = model.likelihood_at_means(x, y)
        sq += float((px.mean - x).pow(2).flatten(1).sum(1).sum())
        nll += float(-px.log_prob(x).sum())
    return {"squared_error": sq / len(images), "neg_log_likelihood_at_mean": nll / len(images)}


def pixel_diversity(images: Tensor) -> float:
    """Mean over pixels of the standard deviation across images: near 0 when every image looks alike."""
    return float(images.flatten(1).float().std(0).mean())


@torch.no_grad()
def sample_quality(model: torch.nn.Module, dataset: str, real: Tensor, n: int = 5000,
                   device: torch.device | str = "cpu") -> dict[str, float]:
    """Classifier Frechet distance between n samples and n real images; conditional accuracy for a CVAE."""
    from vaekit.classifier import conditional_accuracy, feature_statistics, frechet_distance, load_classifier

    classifier = load_classifier(dataset, device)
    if _uses_labels(model):  # the same number of samples of every class, as the real test set roughly has
        k = model.config.num_classes
        samples = torch.cat([model.sample(n // k, label=c).to(device) for c in range(k)])
    else:
        samples = torch.cat([model.sample(min(1000, n - i)).to(device) for i in range(0, n, 1000)])
    mu_s, cov_s = feature_statistics(classifier, samples)
    mu_r, cov_r = feature_statistics(classifier, real[:n])
    out = {"frechet_distance": frechet_distance(mu_r, cov_r, mu_s, cov_s), "samples": len(samples),
           "diversity": pixel_diversity(samples), "real_diversity": pixel_diversity(real[:n])}
    if _uses_labels(model):
        out["conditional_accuracy"] = conditional_accuracy(classifier, model, per_class=max(1, n // 10))
    return out
