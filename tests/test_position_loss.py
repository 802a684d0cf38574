"""The fixed KataGo position set and a checkpoint's loss on it (go_core.arena.katago_positions,
benchmarks.position_loss): the shipped file loads and is what its header says; the losses are
the numbers a user would compute by hand; a net taught KataGo's policy scores better."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from go_core.arena.katago_positions import default_path, encode_policy, load_positions, parse_policy
from benchmarks.position_loss import clustered_mean_se, loss_on_positions
from go_core.learn.features import encode
from go_core.learn.net import NetConfig, PolicyValueNet, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]
TINY = NetConfig(blocks=1, channels=8, gpool_every=0, gpool_channels=4, policy_channels=4,
                 value_channels=4, value_hidden=8)


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    """The first 3 games of the shipped set, as its own file."""
    lines = default_path(9).read_text().splitlines()
    path = tmp_path_factory.mktemp("pos") / "three.jsonl"
    path.write_text("\n".join(lines[:4]) + "\n")
    return load_positions(path)


def test_the_shipped_set_loads_and_matches_its_header():
    path = default_path(9)
    head = json.loads(path.read_text().splitlines()[0])
    s = load_positions(path)
    assert len(s) == head["positions"] >= 1000 and s.games == head["games"]
    assert path.stat().st_size < 400_000                      # compact: move lists, not planes
    assert np.allclose(s.policy.sum(1), 1.0, atol=1e-5)
    assert set(np.unique(s.z)) <= {-1.0, 0.0, 1.0}
    assert np.all(np.abs(s.kata_value) <= 1.0)
    # KataGo's choice is mostly its raw policy's top move (a few visits of search change some)
    assert 0.5 < float(np.mean(s.policy.argmax(1) == s.move)) < 1.0
    # results from both colours' side: the player to move wins about half of the positions
    assert 0.3 < float(np.mean(s.z > 0)) < 0.7


def test_a_corrupt_file_is_refused_loudly(tmp_path):
    lines = default_path(9).read_text().splitlines()
    game = json.loads(lines[1])
    game["moves"][game["first"] + 1] = game["moves"][game["first"]]     # play on an occupied point
    bad = tmp_path / "bad.jsonl"
    bad.write_text(lines[0] + "\n" + json.dumps(game) + "\n")
    with pytest.raises(ValueError, match="illegal"):
        load_positions(bad)


def test_policy_text_round_trips_and_renormalises():
    p = np.zeros(82)
    p[40], p[30], p[81], p[0] = 0.6, 0.3, 0.0995, 0.0005            # 0.05% is below the stored floor
    text = encode_policy(p, 9)
    assert text == "E5 600 D6 300 pass 100"   # 99.5 per mille rounds to 100
    q = parse_policy(text, 9)
    assert q[40] == pytest.approx(0.6) and q[81] == pytest.approx(0.1) and q[0] == 0


def test_clustered_se_is_the_plain_se_with_one_point_per_cluster_and_larger_with_clones():
    x = np.array([1.0, 3.0, 2.0, 6.0])
    mean, se = clustered_mean_se(x, np.arange(4))
    assert mean == 3.0 and se == pytest.approx(np.std(x, ddof=1) / 2)
    # every point duplicated inside its cluster: same information, so the same se (not /sqrt 2)
    mean2, se2 = clustered_mean_se(np.repeat(x, 2), np.repeat(np.arange(4), 2))
    assert mean2 == 3.0 and se2 == pytest.approx(se)


def test_losses_are_the_hand_computed_ones(tmp_path, small_set):
    torch.manual_seed(0)
    net = PolicyValueNet(TINY)
    with torch.no_grad():   # a value head that always says 0: value loss = mean z^2, exactly
        net.v_fc2.weight.zero_()
        net.v_fc2.bias.zero_()
    ck = save_checkpoint(tmp_path / "tiny.pt", net, board_size=9)
    r = loss_on_positions(ck, small_set)
    assert r["n"] == len(small_set) and r["games"] == 3
    assert r["value_loss"] == pytest.approx(float(np.mean(small_set.z ** 2)))
    assert r["value_loss_kata"] == pytest.approx(float(np.mean(small_set.kata_value.astype(np.float64) ** 2)), rel=1e-5)
    net.eval()
    with torch.no_grad():
        logits, _ = net(encode(small_set.boards, 9))
    logp = torch.log_softmax(logits, -1).numpy()
    assert r["policy_loss"] == pytest.approx(float(-(small_set.policy * logp).sum(1).mean()), rel=1e-5)
    assert r["policy_acc"] == pytest.approx(float(np.mean(logits.argmax(-1).numpy() == small_set.move)))
    # a random net may miss KataGo's move in every game: policy_acc's se can then be 0
    assert all(r[f"{k}_se"] > 0 for k in ("policy_loss", "value_loss")) and r["policy_acc_se"] >= 0


def test_a_net_taught_katagos_policy_scores_a_lower_policy_loss(tmp_path, small_set):
    torch.manual_seed(0)
    net = PolicyValueNet(TINY)
    before = loss_on_positions(save_checkpoint(tmp_path / "a.pt", net, board_size=9), small_set)
    x, target = encode(small_set.boards, 9), torch.from_numpy(small_set.policy)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    net.train()
    for _ in range(15):
        logits, _ = net(x)
        loss = -(target * torch.log_softmax(logits, -1)).sum(-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = loss_on_positions(save_checkpoint(tmp_path / "b.pt", net, board_size=9), small_set)
    assert after["policy_loss"] < before["policy_loss"] - 5 * before["policy_loss_se"]
    assert after["policy_acc"] > before["policy_acc"]


def test_cli_prints_one_json_object(tmp_path):
    ck = save_checkpoint(tmp_path / "tiny.pt", PolicyValueNet(TINY), board_size=9)
    small = tmp_path / "one.jsonl"
    small.write_text("\n".join(default_path(9).read_text().splitlines()[:2]) + "\n")
    out = subprocess.run([sys.executable, "-m", "benchmarks.position_loss", "--checkpoint", str(ck),
                          "--positions", str(small)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["games"] == 1 and r["n"] > 10 and r["policy_loss"] > 0
    assert r["policy_loss_se"] is None           # one game: no honest se, and no NaN in the JSON


def test_a_checkpoint_for_another_board_size_is_refused(tmp_path, small_set):
    ck = save_checkpoint(tmp_path / "t13.pt", PolicyValueNet(TINY), board_size=13)
    with pytest.raises(ValueError, match="13x13"):
        loss_on_positions(ck, small_set)
