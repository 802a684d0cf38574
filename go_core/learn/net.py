"""The policy/value net: a ResNet over the planes of `go_core.learn.features`, and its checkpoints.

    net = PolicyValueNet(NetConfig(blocks=6, channels=96))
    logits, value = net(x)       # x: (B, NUM_PLANES, S, S) from features.encode
    # logits: (B, S*S + 1) float32, pass last, -inf-like (-1e9) on padding points
    # value:  (B,) float32 in [-1, 1], the expected result for the player to move

One net plays any board size: the trunk is fully convolutional; the `on_board` input plane is a
mask applied after every layer (so padding behaves like the board edge), global pooling averages
and maxes over board points only, and the value/pass heads see the board area through KataGo's
size-scaled mean (`mean * (sqrt(area) - 14) / 10`). Optional KataGo-style global pooling bias
(`NetConfig.gpool_every`): in every k-th residual block a few channels are pooled over the board
and added as a per-channel bias to the others, which lets the net see whole-board facts (ko
threats, who is ahead) that 3x3 convolutions reach only slowly.

Devices: `select_device("auto")` is CUDA when present, else CPU. `autocast(device)` is bf16
mixed precision on CUDA and a no-op on CPU (fp32), for inference and training alike.

Checkpoints: `save_checkpoint(path, net, board_size=9, step=123, optimizer=..., ...)` writes
atomically (temp file + rename); `load_checkpoint(path, device) -> (net, meta)` rebuilds the net
from the stored `NetConfig`; `meta` holds `board_size`, `step`, `model_config` (a dict) and every
extra keyword given at save time (e.g. an optimizer state dict).
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from go_core.learn.features import NUM_PLANES

CHECKPOINT_FORMAT = "tengen-checkpoint"
CHECKPOINT_VERSION = 1
OFF_BOARD_LOGIT = -1e9
SCORE_SCALE = 10.0  # the score head's raw output is in units of 10 points (keeps it near unit scale)


@dataclass
class NetConfig:
    blocks: int = 6                 # residual blocks in the trunk
    channels: int = 96              # channels in the trunk
    gpool_every: int = 3            # every k-th block has a global-pooling bias; 0 = none
    gpool_channels: int = 32        # channels pooled in those blocks (and in the policy head)
    policy_channels: int = 32       # channels of the policy head's 1x1 conv
    value_channels: int = 32        # channels of the value head's 1x1 conv
    value_hidden: int = 64          # width of the value head's hidden fully-connected layer
    in_planes: int = NUM_PLANES     # input planes (go_core.learn.features.NUM_PLANES)
    ownership_head: bool = False    # KataGo auxiliary head: per-point final ownership in [-1, 1]
    score_head: bool = False        # KataGo auxiliary head: final score margin in points

    @classmethod
    def from_dict(cls, d: dict) -> "NetConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model config keys {sorted(unknown)}; known: {sorted(known)}")
        return cls(**d)


def masked_pool(x: torch.Tensor, mask: torch.Tensor | None, area: torch.Tensor) -> torch.Tensor:
    """KataGo global pooling over board points: (B, C, H, W) -> (B, 3C) = mean, scaled mean, max.

    `mask` is (B, 1, H, W) with 1 on the board, or None when every point is on the board; `area`
    is (B, 1) points on the board. x must be 0 off the board (it is after every masked layer)."""
    mean = x.sum(dim=(2, 3)) / area
    scaled = mean * (area.sqrt() - 14.0) / 10.0
    if mask is not None:
        x = x - (1.0 - mask) * 1e4  # off-board points never win the max
    mx = x.amax(dim=(2, 3))
    return torch.cat([mean, scaled, mx], dim=1)


def _masked(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return x if mask is None else x * mask


class ConvBN(nn.Module):
    def __init__(self, cin: int, cout: int, k: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, padding=k // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x, mask):
        return _masked(self.bn(self.conv(x)), mask)


class ResBlock(nn.Module):
    """conv-BN-ReLU-conv-BN + skip; with `gpool`, pooled channels bias the first conv's output."""

    def __init__(self, c: int, gpool_channels: int = 0):
        super().__init__()
        self.gpool = gpool_channels
        self.a = ConvBN(c, c - gpool_channels if gpool_channels else c, 3)
        if gpool_channels:
            self.g = ConvBN(c, gpool_channels, 3)
            self.g_to_bias = nn.Linear(3 * gpool_channels, c - gpool_channels)
        self.b = ConvBN(c - gpool_channels if gpool_channels else c, c, 3)

    def forward(self, x, mask, area):
        y = self.a(x, mask).relu_()  # in place: the conv/BN output is a fresh tensor
        if self.gpool:
            g = self.g(x, mask).relu_()
            bias = self.g_to_bias(masked_pool(g, mask, area))
            y = _masked((y + bias[:, :, None, None]).relu_(), mask)
        y = self.b(y, mask)
        return _masked((x + y).relu_(), mask)


class PolicyValueNet(nn.Module):
    def __init__(self, cfg: NetConfig | None = None):
        super().__init__()
        cfg = cfg or NetConfig()
        self.cfg = cfg
        c = cfg.channels
        self.stem = ConvBN(cfg.in_planes, c, 3)
        self.blocks = nn.ModuleList(
            ResBlock(c, cfg.gpool_channels if cfg.gpool_every and (i + 1) % cfg.gpool_every == 0 else 0)
            for i in range(cfg.blocks)
        )
        pc, gc, vc = cfg.policy_channels, cfg.gpool_channels, cfg.value_channels
        self.p_conv = ConvBN(c, pc, 1)
        self.p_gconv = ConvBN(c, gc, 1)
        self.p_gbias = nn.Linear(3 * gc, pc)
        self.p_board = nn.Conv2d(pc, 1, 1)
        self.p_pass = nn.Linear(3 * gc, 1)
        self.v_conv = ConvBN(c, vc, 1)
        self.v_fc1 = nn.Linear(3 * vc, cfg.value_hidden)
        self.v_fc2 = nn.Linear(cfg.value_hidden, 1)
        # auxiliary heads (training signal only; search never reads them): ownership from the
        # value head's per-point features, score from its hidden layer
        if cfg.ownership_head:
            self.o_conv = nn.Conv2d(vc, 1, 1)
        if cfg.score_head:
            self.s_fc = nn.Linear(cfg.value_hidden, 1)

    def forward(self, x: torch.Tensor, padded: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (B, NUM_PLANES, S, S). `padded`: whether some input points are off the board
        (None: look at the on_board plane); unpadded batches skip the mask multiplications."""
        out = self.forward_all(x, padded)
        return out["logits"], out["value"]

    def forward_all(self, x: torch.Tensor, padded: bool | None = None) -> dict[str, torch.Tensor]:
        """Every head: `logits`, `value`, and when configured `ownership` (B, S*S) in [-1, 1] for
        the player to move (0 off the board) and `score` (B,) the final margin in points for the
        player to move."""
        mask = x[:, 2:3]  # the on_board plane
        area = mask.sum(dim=(2, 3))
        if padded is None:
            padded = bool((area < x.shape[2] * x.shape[3]).any())
        board_mask = mask.flatten(1) < 0.5 if padded else None
        if not padded:
            mask = None
        h = self.stem(x, mask).relu_()
        for blk in self.blocks:
            h = blk(h, mask, area)
        # policy: board logits from a 1x1 conv biased by pooled channels; pass from the pool
        g = masked_pool(F.relu(self.p_gconv(h, mask)), mask, area)
        p = _masked(F.relu(self.p_conv(h, mask) + self.p_gbias(g)[:, :, None, None]), mask)
        board_logits = self.p_board(p).flatten(1).float()
        if board_mask is not None:
            board_logits = board_logits.masked_fill(board_mask, OFF_BOARD_LOGIT)
        logits = torch.cat([board_logits, self.p_pass(g).float()], dim=1)
        # value: pooled features -> MLP -> tanh, for the player to move
        vmap = F.relu(self.v_conv(h, mask))
        hidden = F.relu(self.v_fc1(masked_pool(vmap, mask, area)))
        out = {"logits": logits, "value": torch.tanh(self.v_fc2(hidden).float()).squeeze(1)}
        if self.cfg.ownership_head:
            out["ownership"] = _masked(torch.tanh(self.o_conv(vmap).float()), mask).flatten(1)
        if self.cfg.score_head:
            out["score"] = self.s_fc(hidden).float().squeeze(1) * SCORE_SCALE
        return out


def fuse_for_inference(net: PolicyValueNet) -> PolicyValueNet:
    """A copy of `net` for inference only: each BatchNorm folded into its convolution (one op
    fewer per layer), in eval mode, no gradients, weights in channels-last memory order (oneDNN's
    and cuDNN's fast convolution layout: about 1.5x the evaluations per second of the default
    layout on 2 CPU cores for b6c96 on 9x9; feed it channels-last inputs, see `to_inference_layout`).
    Same outputs up to rounding."""
    import copy
    fused = copy.deepcopy(getattr(net, "_orig_mod", net)).eval()
    for m in fused.modules():
        if isinstance(m, ConvBN) and isinstance(m.bn, nn.BatchNorm2d):
            bn, conv = m.bn, m.conv
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            new = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size,
                            padding=conv.padding, bias=True).to(conv.weight.device)
            with torch.no_grad():
                new.weight.copy_(conv.weight * scale[:, None, None, None])
                new.bias.copy_(bn.bias - bn.running_mean * scale)
            m.conv, m.bn = new, nn.Identity()
    for p in fused.parameters():
        p.requires_grad_(False)
    return fused.to(memory_format=torch.channels_last)


def to_inference_layout(x: torch.Tensor) -> torch.Tensor:
    """Input planes in the memory order `fuse_for_inference`'s net runs fastest on."""
    return x.contiguous(memory_format=torch.channels_last)


# ---------------------------------------------------------------- devices

def select_device(preference: str | torch.device = "auto") -> torch.device:
    """'auto' -> CUDA when available, else CPU; 'cuda' without a GPU is an error that says so."""
    if isinstance(preference, torch.device):
        return preference
    pref = (preference or "auto").lower()
    if pref == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if pref.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device '{preference}' was asked for but torch sees no CUDA GPU "
                           f"(torch {torch.__version__}); use device=cpu or device=auto")
    if pref not in ("cpu",) and not pref.startswith("cuda"):
        raise ValueError(f"unknown device '{preference}'; use auto, cpu, cuda or cuda:N")
    return torch.device(pref)


def autocast(device: torch.device):
    """bf16 autocast on CUDA (mixed precision); a no-op context on CPU (fp32)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


# ---------------------------------------------------------------- checkpoints

# Fields added after checkpoints were in use: left out while off, so that a checkpoint without
# them stays readable by code that predates them (a pinned referee, an older node's worktree).
_OPTIONAL_OFF = ("ownership_head", "score_head")


def _model_config(cfg: NetConfig) -> dict:
    return {k: v for k, v in asdict(cfg).items() if not (k in _OPTIONAL_OFF and not v)}


def save_checkpoint(path: str | os.PathLike, net: PolicyValueNet, *, board_size: int | None = None,
                    step: int = 0, **extra) -> Path:
    """Write `net` and `extra` to `path` atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = getattr(net, "_orig_mod", net)  # a torch.compile'd net saves its original module
    state = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "model_config": _model_config(module.cfg),
        "board_size": board_size,
        "step": int(step),
        "state_dict": {k: v.detach().cpu() for k, v in module.state_dict().items()},
        **extra,
    }
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu"
                    ) -> tuple[PolicyValueNet, dict]:
    """Load a checkpoint written by `save_checkpoint` -> (net in eval mode on `device`, meta)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint '{path}' does not exist (give the path of a .pt file "
                                "written by training, e.g. <run_dir>/checkpoints/latest.pt)")
    device = select_device(device)
    try:
        # Our own files: they may hold optimizer/RNG state beyond plain tensors.
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means "not a checkpoint"
        raise ValueError(f"'{path}' is not a Tengen checkpoint (torch.load failed: "
                         f"{type(e).__name__}: {e})") from e
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"'{path}' is not a Tengen checkpoint (no '{CHECKPOINT_FORMAT}' marker); "
                         "checkpoints come from go_core.learn.net.save_checkpoint")
    if state.get("version", 0) > CHECKPOINT_VERSION:
        raise ValueError(f"checkpoint '{path}' has format version {state['version']}; this code "
                         f"reads up to {CHECKPOINT_VERSION} (update the code)")
    cfg = NetConfig.from_dict(state["model_config"])
    net = PolicyValueNet(cfg)
    net.load_state_dict(state["state_dict"])
    net.to(device).eval()
    meta = {k: v for k, v in state.items() if k != "state_dict"}
    return net, meta


def check_board_size(meta: dict, size: int, path: str = "checkpoint") -> None:
    """Raise a clear error when a checkpoint trained on one size is used where another is needed."""
    trained = meta.get("board_size")
    if trained is not None and trained != size:
        raise ValueError(f"{path} was trained on {trained}x{trained}; this run is {size}x{size} "
                         f"(set board.size={trained}, or warm-start a {size}x{size} run from it)")
