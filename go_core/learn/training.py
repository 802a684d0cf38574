"""One training step: policy cross-entropy against MCTS visits plus value loss, AdamW, a schedule.

    loss = policy_weight * CE(pi_mcts, p_net)   (only on samples with a policy target)
         + value_weight  * value_loss(z, v_net)  (every sample)
         + ownership_weight * mean over points of BCE((o+1)/2, (o_net+1)/2)   (ownership head on)
         + score_weight * Huber(s_net - s) / board side                        (score head on)

The two auxiliary terms (KataGo) are taken only on samples from games played out (`has_aux`):
ownership o is the end position's owner of each point and s the final margin, both for the player
to move. The score error is measured in board rows (points / side) so that one weight suits 9x9
and 19x19.

`v_net` is in [-1, 1] for the player to move and `z` is the game's outcome for that player.
`value_loss="mse"` is AlphaGo Zero's (z - v)^2; `"bce"` treats (v+1)/2 as a win probability.
Each batch is augmented by a random board symmetry per sample (`symmetry.augment_batch`).
On CUDA the forward pass runs under bfloat16 autocast (no loss scaling needed).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from go_core.learn.replay import Batch
from go_core.learn.warmstart import WarmStartConfig
from go_core.game.symmetry import augment_batch


@dataclass
class TrainConfig:
    """Training's settings (the `train` config group's schema): the optimizer, its schedule, the
    loss weights, the replay window and how much training each iteration gets."""
    batch_size: int = 256               # samples per optimizer step
    steps_per_iteration: int = 0        # optimizer steps per iteration (0: derived from sample_reuse)
    sample_reuse: float = 2.0           # when steps_per_iteration is 0: steps = reuse * new samples / batch_size
    max_steps_per_iteration: int = 200  # upper bound on derived steps, so training cannot starve self-play
    replay_samples: int = 50000         # replay window: most recent positions kept
    replay_games: int = 0               # ... and only those of the most recent games (0: no game limit)
    lr: float = 2e-3                    # peak learning rate of AdamW
    weight_decay: float = 1e-4          # AdamW weight decay (not applied to biases and norms)
    warmup_steps: int = 50              # linear learning-rate warmup
    schedule: str = "cosine"            # after warmup: cosine | step | constant
    decay_steps: int = 5000             # cosine: steps from peak to min_lr_ratio * lr
    min_lr_ratio: float = 0.1           # cosine: floor as a fraction of lr
    step_every: int = 1000              # step: multiply lr by step_gamma every this many steps
    step_gamma: float = 0.3             # step: the factor
    grad_clip: float = 1.0              # clip the gradient's global norm to this (0: off)
    policy_weight: float = 1.0          # weight of the policy cross-entropy
    value_weight: float = 1.0           # weight of the value loss
    value_loss: str = "mse"             # mse on v in [-1,1] | bce on (v+1)/2
    augment: bool = True                # random board symmetry per sample (8-fold)
    ownership_weight: float = 1.5       # weight of the ownership loss (per-point BCE, mean over points; needs model.ownership_head)
    score_weight: float = 0.02          # weight of the score loss (Huber on margin / board side; needs model.score_head)
    checkpoint_every: int = 1           # write checkpoints/latest.pt every this many iterations
    torch_threads: int = 0              # torch CPU threads (0: torch's default, one per core)
    warm_start: WarmStartConfig = field(default_factory=WarmStartConfig)  # what the net knows before self-play (go_core/learn/warmstart.py)


def lr_factor(step: int, cfg) -> float:
    """The learning-rate multiplier at optimizer step `step`: linear warmup, then the schedule."""
    if cfg.warmup_steps > 0 and step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    t = step - cfg.warmup_steps
    if cfg.schedule == "constant":
        return 1.0
    if cfg.schedule == "cosine":
        frac = min(1.0, t / max(1, cfg.decay_steps))
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * frac))
    if cfg.schedule == "step":
        return cfg.step_gamma ** (t // max(1, cfg.step_every))
    raise ValueError(f"unknown lr schedule {cfg.schedule!r}: use cosine, step or constant")


def make_optimizer(net: torch.nn.Module, cfg) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW (no weight decay on biases and norm parameters) and its warmup + decay schedule."""
    decay, no_decay = [], []
    for p in net.parameters():
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg))
    return opt, sched


def losses(net: torch.nn.Module, planes: torch.Tensor, policy: torch.Tensor, has_policy: torch.Tensor,
           value: torch.Tensor, cfg, ownership: torch.Tensor | None = None, score: torch.Tensor | None = None,
           has_aux: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Policy, value (and, with the net's auxiliary heads and their targets, ownership and score)
    and total loss of one batch (tensors on the net's device)."""
    device_type = planes.device.type
    with torch.autocast(device_type=device_type, dtype=torch.bfloat16, enabled=device_type == "cuda"):
        out = net.forward_all(planes)
    logits, v = out["logits"].float(), out["value"].float()
    logp = F.log_softmax(logits, dim=-1)
    ce = -(policy * logp).sum(-1)
    n_pol = has_policy.sum()
    policy_loss = (ce * has_policy).sum() / n_pol.clamp(min=1)
    if cfg.value_loss == "mse":
        value_loss = F.mse_loss(v, value)
    elif cfg.value_loss == "bce":
        p_win = ((v + 1) / 2).clamp(1e-6, 1 - 1e-6)
        value_loss = F.binary_cross_entropy(p_win, (value + 1) / 2)
    else:
        raise ValueError(f"unknown value_loss {cfg.value_loss!r}: use mse or bce")
    loss = cfg.policy_weight * policy_loss + cfg.value_weight * value_loss
    extra = {}
    if has_aux is not None:
        n_aux = has_aux.sum().clamp(min=1)
        if "ownership" in out and ownership is not None:
            p_own = ((out["ownership"].float() + 1) / 2).clamp(1e-6, 1 - 1e-6)
            bce = F.binary_cross_entropy(p_own, (ownership + 1) / 2, reduction="none").mean(-1)
            extra["ownership_loss"] = (bce * has_aux).sum() / n_aux
            loss = loss + getattr(cfg, "ownership_weight", 1.5) * extra["ownership_loss"]
        if "score" in out and score is not None:
            side = planes.shape[-1]
            hub = F.huber_loss(out["score"].float() / side, score / side, reduction="none")
            extra["score_loss"] = (hub * has_aux).sum() / n_aux
            loss = loss + getattr(cfg, "score_weight", 0.02) * extra["score_loss"]
    with torch.no_grad():
        hit = (logits.argmax(-1) == policy.argmax(-1)).float()
        policy_acc = (hit * has_policy).sum() / n_pol.clamp(min=1)
    return {"loss": loss, "policy_loss": policy_loss, "value_loss": value_loss,
            "policy_acc": policy_acc, "policy_samples": n_pol, **extra}


def to_tensors(batch: Batch, device: torch.device) -> tuple[torch.Tensor, ...]:
    return (torch.from_numpy(np.ascontiguousarray(batch.planes, dtype=np.float32)).to(device),
            torch.from_numpy(batch.policy).to(device),
            torch.from_numpy(batch.has_policy.astype(np.float32)).to(device),
            torch.from_numpy(batch.value).to(device))


def aux_tensors(batch: Batch, device: torch.device) -> tuple[torch.Tensor | None, ...]:
    """(ownership (B, S*S), score (B,), has_aux (B,) as float) or Nones when the batch has none."""
    if batch.ownership is None or batch.has_aux is None:
        return None, None, None
    return (torch.from_numpy(np.asarray(batch.ownership, dtype=np.float32)).to(device),
            torch.from_numpy(np.asarray(batch.score, dtype=np.float32)).to(device),
            torch.from_numpy(batch.has_aux.astype(np.float32)).to(device))


def train_step(net: torch.nn.Module, opt: torch.optim.Optimizer, sched, batch: Batch, cfg,
               device: torch.device, generator: torch.Generator | None = None) -> dict[str, float]:
    """One optimizer step on `batch`; returns the losses as floats and the learning rate used."""
    net.train()
    planes, policy, has_policy, value = to_tensors(batch, device)
    ownership, score, has_aux = aux_tensors(batch, device)
    if cfg.augment:
        if ownership is None:
            planes, policy = augment_batch(planes, policy, generator)
        else:  # ownership rides along as one more plane, so it gets each sample's same symmetry
            s = planes.shape[-1]
            both = torch.cat([planes, ownership.view(-1, 1, s, s)], dim=1)
            both, policy = augment_batch(both, policy, generator)
            planes, ownership = both[:, :-1].contiguous(), both[:, -1].reshape(-1, s * s)
    out = losses(net, planes, policy, has_policy, value, cfg, ownership, score, has_aux)
    opt.zero_grad(set_to_none=True)
    out["loss"].backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip if cfg.grad_clip > 0 else float("inf"))
    lr = opt.param_groups[0]["lr"]
    opt.step()
    if sched is not None:
        sched.step()
    stats = {k: float(v.detach()) for k, v in out.items()}
    stats["grad_norm"] = float(grad_norm)
    stats["lr"] = lr
    return stats


def train_steps(net, opt, sched, buffer, n_steps: int, batch_size: int, cfg, device, rng: np.random.Generator,
                generator: torch.Generator | None = None) -> dict[str, float]:
    """`n_steps` steps on batches from the replay buffer; returns the mean of each statistic."""
    totals: dict[str, float] = {}
    for _ in range(n_steps):
        stats = train_step(net, opt, sched, buffer.sample(batch_size, rng), cfg, device, generator)
        for k, v in stats.items():
            totals[k] = totals.get(k, 0.0) + v
    return {k: v / max(1, n_steps) for k, v in totals.items()}
