"""Grow a trained ADM UNet into a wider one that starts from the same function (Net2WiderNet).

Net2Net (Chen, Goodfellow & Shlens, 2016, §3.1): a layer is widened by copying some of its units;
every layer that reads the copies splits its incoming weights among them, so the wider network
computes what the narrow one did and training continues from there instead of from scratch.

Here a level of the UNet may grow by an integer factor (`channel_mult` 1,2,2 -> 1,2,4). Three
details make it exact for this architecture:

- GroupNorm: each group of the narrow layer becomes one group of the wide layer holding every one
  of its channels the same number of times, so the group's mean and variance are unchanged.
- Attention: heads keep their width (`num_head_channels`), so the wide layer has more heads;
  each new head is a copy of an old one, so the softmax sees the same logits.
- Symmetry: copies that split their outgoing weights exactly in half would receive identical
  gradients for ever. The split is 1/k plus zero-sum noise, which keeps the sum (and so the
  function) and lets the copies drift apart.

The one place it cannot be exact: a decoder block whose input concatenates a grown tensor with
one that did not grow (a level boundary) has GroupNorm groups that mix the two. `grow_state_dict`
returns the worst output change it measured so the caller can report it.
"""

from __future__ import annotations

import dataclasses

import torch

from .config import UNetConfig
from .unet import UNet

GROUPS = 32  # GroupNorm32


def growth_factors(old: UNetConfig, new: UNetConfig) -> tuple[int, ...]:
    """Per-level width factors from `old` to `new`; ValueError if `new` is not a widening of `old`."""
    same = dataclasses.replace(new, channel_mult=old.channel_mult, dropout=old.dropout)
    if same != old:
        diff = [f.name for f in dataclasses.fields(old) if getattr(old, f.name) != getattr(same, f.name)]
        raise ValueError(f"can only widen levels (channel_mult); the networks also differ in {', '.join(diff)}")
    if len(new.channel_mult) != len(old.channel_mult):
        raise ValueError(f"channel_mult {old.channel_mult} -> {new.channel_mult}: the number of levels differs")
    factors = []
    for a, b in zip(old.channel_mult, new.channel_mult):
        if b % a or b < a:
            raise ValueError(f"channel_mult {old.channel_mult} -> {new.channel_mult}: each level must grow by a whole factor")
        factors.append(b // a)
    return tuple(factors)


def level_map(c_old: int, c_new: int) -> torch.Tensor:
    """For each channel of the wide layer, the narrow channel it copies, group by group (see module doc)."""
    g_old, g_new = c_old // GROUPS, c_new // GROUPS
    j = torch.arange(c_new)
    return g_old * (j // g_new) + (j % g_new) % g_old


def head_map(c_old: int, c_new: int, head: int) -> torch.Tensor:
    """q, k or v channels of the wide attention: head h copies old head h mod (old heads)."""
    j = torch.arange(c_new)
    return ((j // head) % (c_old // head)) * head + j % head


class _Splitter:
    """Builds wide weights: rows picked by the output map, columns by the input map and split."""

    def __init__(self, generator: torch.Generator, noise: float) -> None:
        self.g, self.noise = generator, noise

    def weight(self, w: torch.Tensor, out_map: torch.Tensor, in_map: torch.Tensor) -> torch.Tensor:
        w = w.float()[out_map][:, in_map]
        per_old = torch.bincount(in_map).float()  # copies of each narrow input channel
        count = per_old[in_map].view(1, -1, *([1] * (w.ndim - 2)))
        share = 1.0 / count
        if self.noise and bool((per_old > 1).any()):
            # Zero-sum noise over each input channel's copies: the sum, hence the function, is kept
            # (a channel with one copy gets exactly zero).
            eps = (torch.randn(w.shape, generator=self.g) * self.noise / count).movedim(1, 0)
            mean = torch.zeros((len(per_old), *eps.shape[1:])).index_add_(0, in_map, eps)
            mean = mean / per_old.view(-1, *([1] * (eps.ndim - 1)))
            share = share + (eps - mean[in_map]).movedim(0, 1)
        return w * share

    @staticmethod
    def vector(v: torch.Tensor, out_map: torch.Tensor) -> torch.Tensor:
        return v.float()[out_map]


@torch.no_grad()
def grow_state_dict(sd: dict[str, torch.Tensor], old: UNetConfig, new: UNetConfig, *, seed: int = 0,
                    noise: float = 0.1, check: bool = True) -> tuple[dict[str, torch.Tensor], float]:
    """The state_dict of `new` (a widening of `old`, see `growth_factors`) computing what `sd` does.

    Returns (state_dict, worst): `worst` is the largest |output change| over a few random inputs
    and noise levels relative to the output's RMS (0.0 when `check` is False).
    """
    growth_factors(old, new)  # refuses anything but a widening, with the reason
    g = torch.Generator().manual_seed(seed)
    split = _Splitter(g, noise)
    out: dict[str, torch.Tensor] = {}
    C = old.model_channels
    width_old = [C * m for m in old.channel_mult]
    width_new = [C * m for m in new.channel_mult]
    maps = [level_map(a, b) for a, b in zip(width_old, width_new)]
    heads = new.num_head_channels

    def ident(n: int) -> torch.Tensor:
        return torch.arange(n)

    def cat(a: torch.Tensor, b: torch.Tensor, a_old: int) -> torch.Tensor:
        return torch.cat([a, b + a_old])

    def conv(prefix: str, out_map: torch.Tensor, in_map: torch.Tensor) -> None:
        out[prefix + ".weight"] = split.weight(sd[prefix + ".weight"], out_map, in_map)
        out[prefix + ".bias"] = split.vector(sd[prefix + ".bias"], out_map)

    def norm(prefix: str, m: torch.Tensor) -> None:
        out[prefix + ".weight"] = split.vector(sd[prefix + ".weight"], m)
        out[prefix + ".bias"] = split.vector(sd[prefix + ".bias"], m)

    def resblock(prefix: str, in_map: torch.Tensor, c_in_old: int, out_map: torch.Tensor, c_out_old: int) -> None:
        norm(f"{prefix}.in_layers.0", in_map)
        conv(f"{prefix}.in_layers.2", out_map, in_map)
        emb = ident(sd[f"{prefix}.emb_layers.1.weight"].shape[1])
        rows = cat(out_map, out_map, c_out_old) if old.use_scale_shift_norm else out_map
        conv(f"{prefix}.emb_layers.1", rows, emb)
        norm(f"{prefix}.out_layers.0", out_map)
        conv(f"{prefix}.out_layers.3", out_map, out_map)
        key = f"{prefix}.skip_connection"
        if len(in_map) == len(out_map):  # the wide block's skip is the identity
            if key + ".weight" in sd or not torch.equal(in_map, out_map):
                raise ValueError(f"cannot widen {prefix}: it would change width in the narrow network but "
                                 "not in the wide one (its 1x1 skip would have to become the identity)")
        elif key + ".weight" in sd:
            conv(key, out_map, in_map)
        else:
            # The narrow block's skip was the identity; the wide one needs a 1x1 conv: the copy matrix.
            eye = torch.eye(c_out_old, c_in_old).view(c_out_old, c_in_old, 1, 1)
            out[key + ".weight"] = split.weight(eye, out_map, in_map)
            out[key + ".bias"] = torch.zeros(len(out_map))

    def attention(prefix: str, m: torch.Tensor, c_old: int) -> None:
        c_new = len(m)
        norm(f"{prefix}.norm", m)
        h = head_map(c_old, c_new, heads)
        rows = torch.cat([h + p * c_old for p in range(3)])
        conv(f"{prefix}.qkv", rows, m)
        conv(f"{prefix}.proj_out", m, h)

    # Walk the network as `UNet.__init__` builds it, carrying (map, old width) of the activation.
    conv("time_embed.0", ident(4 * C), ident(C))
    conv("time_embed.2", ident(4 * C), ident(4 * C))
    if old.num_classes is not None:
        out["label_emb.weight"] = sd["label_emb.weight"].float()
    m, c = maps[0], width_old[0]
    conv("input_blocks.0.0", m, ident(old.in_channels))
    skips = [(m, c)]
    idx, ds = 1, 1
    for level in range(len(old.channel_mult)):
        for _ in range(old.num_res_blocks):
            resblock(f"input_blocks.{idx}.0", m, c, maps[level], width_old[level])
            m, c = maps[level], width_old[level]
            if ds in old.attention_ds:
                attention(f"input_blocks.{idx}.1", m, c)
            skips.append((m, c))
            idx += 1
        if level != len(old.channel_mult) - 1:
            if old.resblock_updown:
                resblock(f"input_blocks.{idx}.0", m, c, m, c)
            skips.append((m, c))
            idx += 1
            ds *= 2
    resblock("middle_block.0", m, c, m, c)
    attention("middle_block.1", m, c)
    resblock("middle_block.2", m, c, m, c)
    idx = 0
    for level in reversed(range(len(old.channel_mult))):
        for i in range(old.num_res_blocks + 1):
            sm, sc = skips.pop()
            resblock(f"output_blocks.{idx}.0", cat(m, sm, c), c + sc, maps[level], width_old[level])
            m, c = maps[level], width_old[level]
            j = 1
            if ds in old.attention_ds:
                attention(f"output_blocks.{idx}.1", m, c)
                j += 1
            if level and i == old.num_res_blocks:
                if old.resblock_updown:
                    resblock(f"output_blocks.{idx}.{j}", m, c, m, c)
                ds //= 2
            idx += 1
    norm("out.0", m)
    conv("out.2", ident(old.out_channels), m)

    expected = UNet(new).state_dict()
    missing = set(expected) - set(out)
    extra = set(out) - set(expected)
    if missing or extra:  # a bug here, not a user error
        raise RuntimeError(f"grow: missing {sorted(missing)[:4]}, unexpected {sorted(extra)[:4]}")
    for k, v in out.items():
        if v.shape != expected[k].shape:
            raise RuntimeError(f"grow: {k} has shape {tuple(v.shape)}, expected {tuple(expected[k].shape)}")
    out = {k: v.to(expected[k].dtype).contiguous() for k, v in out.items()}
    worst = _output_change(sd, old, out, new) if check else 0.0
    return out, worst


@torch.no_grad()
def _output_change(sd_old: dict[str, torch.Tensor], old: UNetConfig, sd_new: dict[str, torch.Tensor],
                   new: UNetConfig) -> float:
    """Largest |F_new - F_old| / RMS(F_old) over random inputs at a few noise levels (fp32)."""
    a, b = UNet(dataclasses.replace(old, dropout=0.0)), UNet(dataclasses.replace(new, dropout=0.0))
    a.load_state_dict({k: v.float() for k, v in sd_old.items()})
    b.load_state_dict(sd_new)
    g = torch.Generator().manual_seed(1234)
    x = torch.randn(4, old.in_channels, old.image_size, old.image_size, generator=g)
    worst = 0.0
    for c_noise in (-1.5, 0.0, 1.0, 2.5):  # ln(sigma)/4 for sigma ~ 0.002 .. 80
        t = torch.full((4,), c_noise)
        labels = torch.zeros(4, dtype=torch.long) if old.num_classes is not None else None
        fa, fb = a(x, t, labels), b(x, t, labels)
        rms = fa.pow(2).mean().sqrt().clamp_min(1e-8)
        worst = max(worst, float((fb - fa).abs().max() / rms))
    return worst
