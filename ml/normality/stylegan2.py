"""A native PyTorch StyleGAN2 generator (Karras et al., "Analyzing and Improving the Image Quality of
StyleGAN", CVPR 2020) whose state dict uses the key layout of rosinality's ``stylegan2-pytorch``
``g_ema`` so official FFHQ weights converted with that project's ``convert_weight.py`` load directly.

No custom CUDA ops: the FIR up-sampling (``upfirdn2d``) and the fused bias + leaky ReLU are written
with plain PyTorch operations, so the same code runs on CPU and GPU.

State-dict keys (``L`` = number of noise layers = 2·log2(size) − 3):

* ``style.{1..n_mlp}.weight`` ``(style_dim, style_dim)``, ``.bias`` ``(style_dim,)`` — mapping network
  (``style.0`` is the parameter-free pixel norm); equalised learning rate with multiplier ``lr_mlp``.
* ``input.input`` ``(1, C4, 4, 4)`` — constant input.
* ``conv1.conv.weight`` ``(1, out, in, 3, 3)``, ``conv1.conv.modulation.weight`` ``(in, style_dim)``,
  ``conv1.conv.modulation.bias`` ``(in,)``, ``conv1.noise.weight`` ``(1,)``, ``conv1.activate.bias``
  ``(out,)``; the same under ``convs.{i}.`` (odd ``i`` up-sample, with buffer ``convs.{i}.conv.blur.kernel``).
* ``to_rgb1.conv.weight`` ``(1, 3, in, 1, 1)``, ``to_rgb1.conv.modulation.*``, ``to_rgb1.bias``
  ``(1, 3, 1, 1)``; the same under ``to_rgbs.{j}.`` plus buffer ``to_rgbs.{j}.upsample.kernel``.
* ``noises.noise_{k}`` ``(1, 1, r, r)`` buffers, ``k < L`` — fixed noise used when ``randomize_noise``
  is off.

A file may hold that state dict directly or ``{"g_ema": state_dict, "latent_avg": tensor, ...}``
(the layout rosinality's training script saves); ``config`` and ``w_avg`` entries are read when present.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

BLUR_KERNEL = (1, 3, 3, 1)


def make_kernel(taps: tuple[int, ...] = BLUR_KERNEL) -> torch.Tensor:
    """Separable 2-D FIR kernel from 1-D taps, normalised to sum 1."""
    kernel = torch.tensor(taps, dtype=torch.float32)
    kernel = kernel[None, :] * kernel[:, None]
    return kernel / kernel.sum()


def upfirdn2d(
    image: torch.Tensor, kernel: torch.Tensor, up: int = 1, pad: tuple[int, int] = (0, 0)
) -> torch.Tensor:
    """Zero-insertion up-sampling by ``up``, padding ``pad`` (before, after) and FIR filtering per channel."""
    batch, channels, height, width = image.shape
    if up > 1:
        expanded = image.new_zeros(batch, channels, height, up, width, up)
        expanded[:, :, :, 0, :, 0] = image
        image = expanded.view(batch, channels, height * up, width * up)
    image = F.pad(image, (pad[0], pad[1], pad[0], pad[1]))
    weight = torch.flip(kernel, (0, 1)).to(image.dtype)[None, None].repeat(channels, 1, 1, 1)
    return F.conv2d(image, weight, groups=channels)


def fused_leaky_relu(value: torch.Tensor, bias: torch.Tensor, slope: float = 0.2) -> torch.Tensor:
    """Bias, leaky ReLU and the √2 gain that keeps activations at unit variance."""
    shape = [1, -1] + [1] * (value.ndim - 2)
    return F.leaky_relu(value + bias.view(shape), slope) * math.sqrt(2)


class PixelNorm(nn.Module):
    """Normalise each latent vector to unit root-mean-square."""

    def forward(self, value: torch.Tensor) -> torch.Tensor:
        return value * torch.rsqrt(torch.mean(value**2, dim=1, keepdim=True) + 1e-8)


class EqualLinear(nn.Module):
    """Fully connected layer with equalised learning rate and a learning-rate multiplier."""

    def __init__(
        self, in_dim: int, out_dim: int, bias_init: float = 0.0, lr_mul: float = 1.0, activation: bool = False
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init)))
        self.scale = 1 / math.sqrt(in_dim) * lr_mul
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, value: torch.Tensor) -> torch.Tensor:
        if self.activation:
            return fused_leaky_relu(F.linear(value, self.weight * self.scale), self.bias * self.lr_mul)
        return F.linear(value, self.weight * self.scale, self.bias * self.lr_mul)


class Blur(nn.Module):
    """FIR low-pass filter applied after a transposed convolution (anti-aliased up-sampling)."""

    def __init__(self, pad: tuple[int, int], upsample_factor: int = 1) -> None:
        super().__init__()
        self.register_buffer("kernel", make_kernel() * upsample_factor**2)
        self.pad = pad

    def forward(self, value: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(value, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    """×2 FIR up-sampling of the RGB skip branch."""

    def __init__(self, factor: int = 2) -> None:
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", make_kernel() * factor**2)
        padding = self.kernel.shape[0] - factor
        self.pad = ((padding + 1) // 2 + factor - 1, padding // 2)

    def forward(self, value: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(value, self.kernel, up=self.factor, pad=self.pad)


class ModulatedConv2d(nn.Module):
    """Modulated (and optionally demodulated) convolution, StyleGAN2 Eqs. 1–3."""

    def __init__(
        self,
        in_channel: int,
        out_channel: int,
        kernel_size: int,
        style_dim: int,
        demodulate: bool = True,
        upsample: bool = False,
    ) -> None:
        super().__init__()
        self.in_channel, self.out_channel, self.kernel_size = in_channel, out_channel, kernel_size
        self.upsample, self.demodulate = upsample, demodulate
        if upsample:
            factor = 2
            padding = (len(BLUR_KERNEL) - factor) - (kernel_size - 1)
            self.blur = Blur(pad=((padding + 1) // 2 + factor - 1, padding // 2 + 1), upsample_factor=factor)
        self.scale = 1 / math.sqrt(in_channel * kernel_size**2)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.randn(1, out_channel, in_channel, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_channel, bias_init=1.0)

    def forward(self, value: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        batch, in_channel, height, width = value.shape
        style = self.modulation(style).view(batch, 1, in_channel, 1, 1)
        weight = self.scale * self.weight * style
        if self.demodulate:
            demod = torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + 1e-8)
            weight = weight * demod.view(batch, self.out_channel, 1, 1, 1)
        value = value.reshape(1, batch * in_channel, height, width)
        if self.upsample:
            weight = weight.transpose(1, 2).reshape(batch * in_channel, self.out_channel, *weight.shape[-2:])
            out = F.conv_transpose2d(value, weight, padding=0, stride=2, groups=batch)
            out = self.blur(out.view(batch, self.out_channel, *out.shape[-2:]))
            return out
        weight = weight.view(batch * self.out_channel, in_channel, self.kernel_size, self.kernel_size)
        out = F.conv2d(value, weight, padding=self.padding, groups=batch)
        return out.view(batch, self.out_channel, *out.shape[-2:])


class NoiseInjection(nn.Module):
    """Adds per-pixel noise scaled by a learned per-layer strength (initially 0)."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, value: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        if noise is None:
            batch, _, height, width = value.shape
            noise = value.new_empty(batch, 1, height, width).normal_()
        return value + self.weight * noise


class ConstantInput(nn.Module):
    """The learned 4×4 constant the synthesis network starts from."""

    def __init__(self, channel: int, size: int = 4) -> None:
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channel, size, size))

    def forward(self, batch: int) -> torch.Tensor:
        return self.input.repeat(batch, 1, 1, 1)


class FusedLeakyReLU(nn.Module):
    """Learned bias + leaky ReLU + √2 gain."""

    def __init__(self, channel: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channel))

    def forward(self, value: torch.Tensor) -> torch.Tensor:
        return fused_leaky_relu(value, self.bias)


class StyledConv(nn.Module):
    """Modulated 3×3 convolution, noise injection and activation."""

    def __init__(self, in_channel: int, out_channel: int, style_dim: int, upsample: bool = False) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channel, out_channel, 3, style_dim, upsample=upsample)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_channel)

    def forward(
        self, value: torch.Tensor, style: torch.Tensor, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.activate(self.noise(self.conv(value, style), noise=noise))


class ToRGB(nn.Module):
    """1×1 modulated convolution to RGB, added to the up-sampled RGB of the previous resolution."""

    def __init__(self, in_channel: int, style_dim: int, upsample: bool = True) -> None:
        super().__init__()
        if upsample:
            self.upsample = Upsample()
        self.conv = ModulatedConv2d(in_channel, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(
        self, value: torch.Tensor, style: torch.Tensor, skip: torch.Tensor | None = None
    ) -> torch.Tensor:
        out = self.conv(value, style) + self.bias
        if skip is not None:
            out = out + self.upsample(skip)
        return out


def default_channels(channel_multiplier: int = 2, max_channels: int = 512) -> dict[int, int]:
    """Feature maps per resolution (StyleGAN2 config F), capped at ``max_channels`` for small models."""
    base = {
        4: 512,
        8: 512,
        16: 512,
        32: 512,
        64: 256 * channel_multiplier,
        128: 128 * channel_multiplier,
        256: 64 * channel_multiplier,
        512: 32 * channel_multiplier,
        1024: 16 * channel_multiplier,
    }
    return {resolution: min(max_channels, channels) for resolution, channels in base.items()}


class Generator(nn.Module):
    """StyleGAN2 generator: 8-layer mapping network z → w, synthesis network w → RGB in about [−1, 1].

    ``size`` is a power of two ≥ 8. ``max_channels`` shrinks every layer for small test models;
    FFHQ config F is ``Generator(1024, 512, 8, channel_multiplier=2)``.
    """

    def __init__(
        self,
        size: int,
        style_dim: int = 512,
        n_mlp: int = 8,
        channel_multiplier: int = 2,
        lr_mlp: float = 0.01,
        max_channels: int = 512,
    ) -> None:
        super().__init__()
        log_size = int(math.log2(size)) if size > 0 else 0
        if size < 8 or 2**log_size != size:
            raise ValueError(f"Generator size must be a power of two ≥ 8; got {size}.")
        self.config: dict[str, Any] = {
            "size": size,
            "style_dim": style_dim,
            "n_mlp": n_mlp,
            "channel_multiplier": channel_multiplier,
            "lr_mlp": lr_mlp,
            "max_channels": max_channels,
        }
        self.size, self.style_dim, self.log_size = size, style_dim, log_size
        self.style = nn.Sequential(
            PixelNorm(),
            *[EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, activation=True) for _ in range(n_mlp)],
        )
        self.channels = default_channels(channel_multiplier, max_channels)
        self.input = ConstantInput(self.channels[4])
        self.conv1 = StyledConv(self.channels[4], self.channels[4], style_dim)
        self.to_rgb1 = ToRGB(self.channels[4], style_dim, upsample=False)
        self.num_layers = (log_size - 2) * 2 + 1
        self.convs = nn.ModuleList()
        self.upsamples = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        self.noises = nn.Module()
        for layer in range(self.num_layers):
            resolution = 2 ** ((layer + 5) // 2)
            self.noises.register_buffer(f"noise_{layer}", torch.randn(1, 1, resolution, resolution))
        in_channel = self.channels[4]
        for level in range(3, log_size + 1):
            out_channel = self.channels[2**level]
            self.convs.append(StyledConv(in_channel, out_channel, style_dim, upsample=True))
            self.convs.append(StyledConv(out_channel, out_channel, style_dim))
            self.to_rgbs.append(ToRGB(out_channel, style_dim))
            in_channel = out_channel
        self.n_latent = log_size * 2 - 2

    def noise_buffers(self) -> list[torch.Tensor]:
        """The fixed noise maps, coarse to fine (``noises.noise_0`` … ``noise_{L−1}``)."""
        return [getattr(self.noises, f"noise_{layer}") for layer in range(self.num_layers)]

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        """z ``(B, style_dim)`` → w ``(B, style_dim)``."""
        return self.style(z)

    @torch.no_grad()
    def mean_latent(
        self, samples: int = 10_000, seed: int = 0, batch: int = 1000
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``w_avg`` ``(1, style_dim)`` and the spread ``w_std`` = √(Σ‖w − w_avg‖² / n) of n mapped z."""
        generator = torch.Generator().manual_seed(seed)
        device = self.input.input.device
        chunks = []
        for start in range(0, samples, batch):
            z = torch.randn(min(batch, samples - start), self.style_dim, generator=generator).to(device)
            chunks.append(self.mapping(z))
        w = torch.cat(chunks)
        w_avg = w.mean(0, keepdim=True)
        w_std = torch.sqrt(((w - w_avg) ** 2).sum() / samples)
        return w_avg, w_std

    def synthesis(
        self, w: torch.Tensor, noise: list[torch.Tensor] | None = None, randomize_noise: bool = False
    ) -> torch.Tensor:
        """w ``(B, style_dim)`` (broadcast to every layer) or w+ ``(B, n_latent, style_dim)`` → image."""
        latent = w[:, None, :].expand(-1, self.n_latent, -1) if w.ndim == 2 else w
        if latent.shape[1] != self.n_latent:
            raise ValueError(f"Expected {self.n_latent} per-layer latents; got {latent.shape[1]}.")
        if noise is None:
            noise = [None] * self.num_layers if randomize_noise else self.noise_buffers()
        out = self.input(latent.shape[0])
        out = self.conv1(out, latent[:, 0], noise=noise[0])
        skip = self.to_rgb1(out, latent[:, 1])
        index = 1
        for conv_up, conv, noise_up, noise_same, to_rgb in zip(
            self.convs[::2], self.convs[1::2], noise[1::2], noise[2::2], self.to_rgbs, strict=True
        ):
            out = conv_up(out, latent[:, index], noise=noise_up)
            out = conv(out, latent[:, index + 1], noise=noise_same)
            skip = to_rgb(out, latent[:, index + 2], skip)
            index += 2
        return skip

    def decode(self, w: torch.Tensor, noise: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Inversion interface (:class:`ml.normality.projection.LatentDecoder`): w → image."""
        return self.synthesis(w, noise=noise)

    def forward(self, z: torch.Tensor, noise: list[torch.Tensor] | None = None) -> torch.Tensor:
        """z → image with the fixed noise buffers (or the given noise maps)."""
        return self.synthesis(self.mapping(z), noise=noise)


def save_generator(generator: Generator, path: str | Path, w_avg: torch.Tensor | None = None) -> None:
    """Save ``{"g_ema": state_dict, "config": ..., "latent_avg": w_avg}`` (rosinality-compatible)."""
    payload: dict[str, Any] = {"g_ema": generator.state_dict(), "config": dict(generator.config)}
    if w_avg is not None:
        payload["latent_avg"] = w_avg.detach().cpu().reshape(-1)
    torch.save(payload, Path(path))


def load_generator(
    path: str | Path,
    config: dict[str, Any] | None = None,
    map_location: str | torch.device = "cpu",
    default_config: dict[str, Any] | None = None,
) -> tuple[Generator, torch.Tensor | None]:
    """Load a generator and its ``latent_avg`` (``None`` if absent) from a checkpoint file.

    The architecture comes from ``config`` when given, else from the file's ``config`` entry, else
    from ``default_config``; a bare rosinality ``g_ema`` file needs one of those (at least ``size``).
    Loading is strict: a missing or unexpected key is an error naming the keys.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No StyleGAN2 checkpoint at {path}.")
    payload = torch.load(path, map_location=map_location, weights_only=True)
    state = payload.get("g_ema", payload) if isinstance(payload, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a StyleGAN2 state dict.")
    architecture = config or payload.get("config") or default_config
    if not architecture:
        raise ValueError(f"{path} has no 'config' entry: pass config={{'size': ..., ...}}.")
    generator = Generator(**architecture)
    result = generator.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(
            f"{path} does not match the generator: missing {result.missing_keys[:5]}, "
            f"unexpected {result.unexpected_keys[:5]}."
        )
    latent_avg = payload.get("latent_avg") if isinstance(payload, dict) else None
    if latent_avg is not None:
        latent_avg = latent_avg.reshape(1, -1).float()
    return generator.eval(), latent_avg
