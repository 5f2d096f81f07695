"""The ADM UNet (Dhariwal & Nichol, 2021) in the layout of OpenAI's consistency-model checkpoints.

`UNet(config)(x_in, c_noise, class_labels) -> F_x`. Module names reproduce the official
state_dict keys (`input_blocks.N.M.in_layers.2.weight`, ...), so an official file loads with
``strict=True``. Preconditioning lives in `engine.denoiser`, not here.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import UNetConfig


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding (Vaswani et al., 2017): first half cos, second half sin, as in ADM."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t[:, None].float() * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class GroupNorm32(nn.GroupNorm):
    """GroupNorm computed in float32 whatever the activation dtype (the released models' numerics)."""

    def __init__(self, channels: int) -> None:
        super().__init__(32, channels, eps=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.float32:
            return super().forward(x)
        w, b = self.weight.float(), self.bias.float()
        if x.device.type == "cpu":
            # The CPU kernel accumulates bf16/fp16 input in fp32 given fp32 affine parameters:
            # same numerics as upcasting, without two full-size copies per norm.
            if x.shape[0] > 1 and x.shape[-1] * x.shape[-2] <= 256 and not x.is_contiguous():
                # Its channels_last path is 4-25x slower on batches of small maps (measured:
                # 7.8 ms vs 0.3 ms at 64x32x16x16); two layout copies are far cheaper there.
                y = F.group_norm(x.contiguous(), self.num_groups, w, b, self.eps)
                return y.contiguous(memory_format=torch.channels_last)
            return F.group_norm(x, self.num_groups, w, b, self.eps)
        return F.group_norm(x.float(), self.num_groups, w, b, self.eps).to(x.dtype)


class ResBlock(nn.Module):
    """Residual block with time-embedding injection, optionally resampling (up or down) by 2."""

    def __init__(self, channels: int, emb_channels: int, out_channels: int, *, dropout: float,
                 scale_shift: bool, up: bool = False, down: bool = False) -> None:
        super().__init__()
        self.scale_shift = scale_shift
        self.up, self.down = up, down
        self.in_layers = nn.Sequential(GroupNorm32(channels), nn.SiLU(), nn.Conv2d(channels, out_channels, 3, padding=1))
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_channels, 2 * out_channels if scale_shift else out_channels))
        self.out_layers = nn.Sequential(
            GroupNorm32(out_channels), nn.SiLU(), nn.Dropout(dropout), nn.Conv2d(out_channels, out_channels, 3, padding=1)
        )
        # Up/down blocks always keep the width, so their skip is the identity.
        self.skip_connection = nn.Identity() if channels == out_channels else nn.Conv2d(channels, out_channels, 1)

    def _resample(self, x: torch.Tensor) -> torch.Tensor:
        if self.up:
            return F.interpolate(x, scale_factor=2.0, mode="nearest")
        if self.down:
            return F.avg_pool2d(x, kernel_size=2, stride=2)
        return x

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        norm, act, conv = self.in_layers
        h = act(norm(x))
        if self.up or self.down:
            h, x = self._resample(h), self._resample(x)
        h = conv(h)
        emb_out = self.emb_layers(emb).to(h.dtype)[:, :, None, None]
        out_norm, out_act, out_drop, out_conv = self.out_layers
        if self.scale_shift:
            scale, shift = emb_out.chunk(2, dim=1)  # scale first, as in the released models
            h = out_norm(h) * (1 + scale) + shift
        else:
            h = out_norm(h + emb_out)
        h = out_conv(out_drop(out_act(h)))
        return self.skip_connection(x) + h


class AttentionBlock(nn.Module):
    """Spatial self-attention. `qkv` channels are laid out [all q | all k | all v], heads contiguous.

    The 1x1 convolutions are stored as convolutions (official key shapes) but applied as matrix
    products on a (B, H*W, C) view, which is free for channels_last inputs and hands
    `scaled_dot_product_attention` contiguous q, k, v (its fast CPU kernel needs that).
    """

    def __init__(self, channels: int, num_head_channels: int) -> None:
        super().__init__()
        if channels % num_head_channels:
            raise ValueError(f"attention width {channels} is not a multiple of num_head_channels {num_head_channels}")
        self.heads = channels // num_head_channels
        self.norm = GroupNorm32(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        b, c, h, w = x.shape
        tokens = self.norm(x).permute(0, 2, 3, 1).reshape(b, h * w, c)
        qkv = F.linear(tokens, self.qkv.weight.view(3 * c, c), self.qkv.bias)
        q, k, v = qkv.view(b, h * w, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        a = F.scaled_dot_product_attention(q.contiguous(), k.contiguous(), v.contiguous())
        a = a.transpose(1, 2).reshape(b, h * w, c)
        out = F.linear(a, self.proj_out.weight.view(c, c), self.proj_out.bias)
        return x + out.view(b, h, w, c).permute(0, 3, 1, 2)


class Downsample(nn.Module):
    """Plain 2x average-pool (used only when resblock_updown=False)."""

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        return F.avg_pool2d(x, kernel_size=2, stride=2)


class Upsample(nn.Module):
    """Plain 2x nearest upsampling (used only when resblock_updown=False)."""

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2.0, mode="nearest")


class EmbedSequential(nn.Sequential):
    """A sequence of blocks that all receive the embedding (ADM's TimestepEmbedSequential)."""

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        for layer in self:
            x = layer(x, emb) if isinstance(layer, (ResBlock, AttentionBlock, Downsample, Upsample)) else layer(x)
        return x


class UNet(nn.Module):
    """ADM UNet: (x_in: (B, 3, H, W), c_noise: (B,), class_labels: (B,) | None) -> F_x: (B, 3, H, W)."""

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        self.config = cfg = config
        C = cfg.model_channels
        emb_ch = 4 * C
        self.time_embed = nn.Sequential(nn.Linear(C, emb_ch), nn.SiLU(), nn.Linear(emb_ch, emb_ch))
        if cfg.num_classes is not None:
            self.label_emb = nn.Embedding(cfg.num_classes, emb_ch)

        def res(ch_in: int, ch_out: int, **kw: bool) -> ResBlock:
            return ResBlock(ch_in, emb_ch, ch_out, dropout=cfg.dropout, scale_shift=cfg.use_scale_shift_norm, **kw)

        def attn(ch: int) -> AttentionBlock:
            return AttentionBlock(ch, cfg.num_head_channels)

        # Encoder.
        ch = C * cfg.channel_mult[0]
        self.input_blocks = nn.ModuleList([EmbedSequential(nn.Conv2d(cfg.in_channels, ch, 3, padding=1))])
        skip_chans, ds = [ch], 1
        for level, mult in enumerate(cfg.channel_mult):
            for _ in range(cfg.num_res_blocks):
                layers: list[nn.Module] = [res(ch, C * mult)]
                ch = C * mult
                if ds in cfg.attention_ds:
                    layers.append(attn(ch))
                self.input_blocks.append(EmbedSequential(*layers))
                skip_chans.append(ch)
            if level != len(cfg.channel_mult) - 1:
                self.input_blocks.append(EmbedSequential(res(ch, ch, down=True) if cfg.resblock_updown else Downsample()))
                skip_chans.append(ch)
                ds *= 2

        # Bottleneck.
        self.middle_block = EmbedSequential(res(ch, ch), attn(ch), res(ch, ch))

        # Decoder: each block eats one skip connection, the last of each level (but level 0) upsamples.
        self.output_blocks = nn.ModuleList()
        for level, mult in reversed(list(enumerate(cfg.channel_mult))):
            for i in range(cfg.num_res_blocks + 1):
                layers = [res(ch + skip_chans.pop(), C * mult)]
                ch = C * mult
                if ds in cfg.attention_ds:
                    layers.append(attn(ch))
                if level and i == cfg.num_res_blocks:
                    layers.append(res(ch, ch, up=True) if cfg.resblock_updown else Upsample())
                    ds //= 2
                self.output_blocks.append(EmbedSequential(*layers))

        self.out = nn.Sequential(GroupNorm32(ch), nn.SiLU(), nn.Conv2d(C * cfg.channel_mult[0], cfg.out_channels, 3, padding=1))
        self.zero_output_layers()

    def zero_output_layers(self) -> None:
        """Zero the last conv of every residual branch and of the head (ADM init: a fresh model outputs 0)."""
        for m in self.modules():
            if isinstance(m, ResBlock):
                nn.init.zeros_(m.out_layers[3].weight)
                nn.init.zeros_(m.out_layers[3].bias)
            elif isinstance(m, AttentionBlock):
                nn.init.zeros_(m.proj_out.weight)
                nn.init.zeros_(m.proj_out.bias)
        nn.init.zeros_(self.out[2].weight)
        nn.init.zeros_(self.out[2].bias)

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor, class_labels: torch.Tensor | None = None) -> torch.Tensor:
        param = self.time_embed[0].weight
        emb = self.time_embed(timestep_embedding(c_noise, self.config.model_channels).to(param.dtype))
        if self.config.num_classes is not None:
            if class_labels is None:
                raise ValueError("this model is class-conditional: pass class_labels (0..%d)" % (self.config.num_classes - 1))
            emb = emb + self.label_emb(class_labels)
        h = x.to(param.dtype)
        skips = []
        for block in self.input_blocks:
            h = block(h, emb)
            skips.append(h)
        h = self.middle_block(h, emb)
        for block in self.output_blocks:
            h = block(torch.cat([h, skips.pop()], dim=1), emb)
        return self.out(h).to(x.dtype)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
