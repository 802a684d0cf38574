"""The net and its input features: shapes, masking across board sizes, checkpoints."""
import numpy as np
import pytest
import torch

from go_core.game.board import BLACK, WHITE, Board
from go_core.learn.features import NUM_PLANES, PLANES, encode, encode_reference, policy_index
from go_core.learn.net import (NetConfig, PolicyValueNet, load_checkpoint, save_checkpoint,
                         select_device)

SMALL = NetConfig(blocks=2, channels=16, gpool_every=2, gpool_channels=8, policy_channels=8,
                  value_channels=8, value_hidden=16)


def random_board(size, moves, seed):
    rng = np.random.default_rng(seed)
    b = Board(size, komi=7.5)
    for _ in range(moves):
        legal = b.legal_moves()
        b.play(int(rng.choice(legal[:-1] if len(legal) > 1 else legal)))
        if b.is_over:
            break
    return b


def test_features_match_reference_and_mark_the_mover():
    boards = [random_board(9, 30 + i, i) for i in range(4)] + [random_board(5, 12, 9)]
    for size in (None, 19):
        nine = encode(boards[:4], size=size)
        assert nine.shape == (4, NUM_PLANES, size or 9, size or 9)
        for i, b in enumerate(boards[:4]):
            np.testing.assert_array_equal(nine[i].numpy(), encode_reference(b, size))
    mixed = encode(boards, size=9)  # a 5x5 padded into 9x9
    np.testing.assert_array_equal(mixed[4].numpy(), encode_reference(boards[4], 9))
    assert mixed[4, PLANES.index("on_board")].sum() == 25


def test_features_atari_and_colour_planes():
    b = Board.from_ascii("""
        .....
        ..X..
        .XO..
        ..X..
        .....
    """, to_play=WHITE)
    x = encode([b])[0]
    # white to play: the white stone is "own" and in atari; black's stones are "opp" with 3+ libs
    assert x[PLANES.index("own"), 2, 2] == 1 and x[PLANES.index("own_lib1"), 2, 2] == 1
    assert x[PLANES.index("opp"), 1, 2] == 1 and x[PLANES.index("opp_lib3"), 1, 2] == 1
    assert x[PLANES.index("black_to_play")].sum() == 0
    b.play(b.size * b.size)  # white passes
    x = encode([b])[0]
    assert x[PLANES.index("last_was_pass")].sum() == 25
    assert x[PLANES.index("black_to_play")].sum() == 25
    assert x[PLANES.index("own_lib1"), 2, 2] == 0 and x[PLANES.index("opp_lib1"), 2, 2] == 1


def test_one_net_plays_9x9_and_19x19_and_padding_is_invisible():
    torch.manual_seed(0)
    net = PolicyValueNet(SMALL).eval()
    nine = [random_board(9, 20, s) for s in range(3)]
    big = [random_board(19, 40, 7)]
    with torch.no_grad():
        logits9, v9 = net(encode(nine))
        logits19, v19 = net(encode(big))
        padded_logits, padded_v = net(encode(nine, size=19))
    assert logits9.shape == (3, 82) and v9.shape == (3,)
    assert logits19.shape == (1, 362) and v19.shape == (1,)
    assert torch.all(v9.abs() <= 1) and torch.all(v19.abs() <= 1)
    # a 9x9 game padded to 19x19 gives the same outputs; the padding points get no policy mass
    idx = policy_index(9, 19)
    torch.testing.assert_close(padded_logits[:, idx], logits9, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(padded_v, v9, atol=1e-5, rtol=1e-5)
    off = np.setdiff1d(np.arange(362), idx)
    probs = torch.softmax(padded_logits, dim=1)
    assert probs[:, off].sum() < 1e-6


def test_no_global_pooling_variant_and_gradients_flow():
    net = PolicyValueNet(NetConfig(blocks=1, channels=8, gpool_every=0, gpool_channels=4,
                                   policy_channels=4, value_channels=4, value_hidden=8))
    x = encode([random_board(7, 10, 1), random_board(7, 11, 2)])
    logits, v = net(x)
    (logits.logsumexp(1).sum() + v.sum()).backward()
    assert all(p.grad is not None for p in net.parameters())


def test_fused_inference_net_matches_and_mask_skipping_is_exact():
    from go_core.learn.net import fuse_for_inference
    torch.manual_seed(2)
    net = PolicyValueNet(SMALL).eval()
    for m in net.modules():  # non-trivial BatchNorm statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.normal_()
    x = encode([random_board(9, 25, s) for s in range(3)])
    with torch.no_grad():
        ref = net(x, padded=True)  # the masked path
        plain = net(x)             # no padding detected: masks skipped
        fused = fuse_for_inference(net)(x)
    for got in (plain, fused):
        torch.testing.assert_close(got[0], ref[0], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(got[1], ref[1], atol=1e-5, rtol=1e-4)


def test_checkpoint_round_trip_keeps_weights_and_meta(tmp_path):
    torch.manual_seed(1)
    net = PolicyValueNet(SMALL).eval()
    path = save_checkpoint(tmp_path / "ck" / "latest.pt", net, board_size=9, step=42,
                           optimizer={"lr": 0.1})
    assert path.exists() and not list(path.parent.glob("*.tmp"))
    net2, meta = load_checkpoint(path, "cpu")
    assert meta["board_size"] == 9 and meta["step"] == 42 and meta["optimizer"] == {"lr": 0.1}
    assert meta["model_config"]["channels"] == 16
    x = encode([random_board(9, 15, 3)])
    with torch.no_grad():
        a, b = net(x), net2(x)
    torch.testing.assert_close(a[0], b[0])
    torch.testing.assert_close(a[1], b[1])


def test_loading_something_else_is_a_clear_error(tmp_path):
    bogus = tmp_path / "notes.pt"
    bogus.write_text("hello")
    with pytest.raises(ValueError, match="not a Tengen checkpoint"):
        load_checkpoint(bogus)
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a Tengen checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_device_selection():
    assert select_device("cpu").type == "cpu"
    assert select_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA"):
            select_device("cuda")
    with pytest.raises(ValueError, match="unknown device"):
        select_device("tpu")
