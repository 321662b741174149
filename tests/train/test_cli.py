"""`genworld train` and `genworld dream` on a small dataset written to disk (tiny preset, a few steps)."""

from __future__ import annotations

import json

import av
import pytest

from genworld.cli import main
from genworld.data import DatasetWriter
from genworld.train.synthetic import synthetic_episode, synthetic_spec


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("data") / "synthetic"
    spec = synthetic_spec(size=32, samples=200)
    with DatasetWriter(root, spec) as w:
        for seed in range(8):
            w.add_episode(synthetic_episode(spec, 16, seed), task="move")
    return root


def test_train_then_dream_from_the_command_line(tmp_path, dataset, capsys) -> None:
    run = tmp_path / "run"
    assert main(["train", "--data", str(dataset), "--out", str(run), "--preset", "tiny", "--max-steps", "6",
                 "--batch-size", "4", "--no-progress"]) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["preset"] == "tiny" and cfg["train"]["tok_steps"] + cfg["train"]["dyn_steps"] == 6
    assert main(["train", "--data", str(dataset), "--out", str(run), "--max-steps", "6"]) == 1
    assert "--resume" in capsys.readouterr().err
    assert main(["train", "--data", str(dataset), "--out", str(run), "--resume", "--max-steps", "6",
                 "--no-progress"]) == 0  # already finished: nothing to do, no error
    out = tmp_path / "dream.mp4"
    assert main(["dream", "--run", str(run), "--data", str(dataset), "--episode", "1", "--context", "4",
                 "--horizon", "8", "--out", str(out)]) == 0
    with av.open(str(out)) as c:
        assert c.streams.video[0].frames in (0, 12) and len(c.streams.audio) == 1
        assert sum(1 for _ in c.decode(video=0)) == 12
    assert main(["dream", "--run", str(run), "--data", str(dataset), "--episode", "99", "--out", str(out)]) == 1
    assert "--episode 99" in capsys.readouterr().err


def test_a_foreign_lerobot_v21_dataset_trains_dreams_and_evaluates_as_it_is(tmp_path, make_v21, capsys) -> None:
    """A LeRobot v2.1 dataset (as LeRobot 0.3 writes it, no genworld metadata) needs no import step."""
    import numpy as np

    rng = np.random.default_rng(0)
    eps = [{"observation.images.laptop": rng.integers(0, 255, (20, 32, 32, 3), dtype=np.uint8),
            "observation.state": rng.normal(size=(20, 3)).astype(np.float32),
            "action": rng.uniform(-1, 1, (20, 3)).astype(np.float32)} for _ in range(6)]
    data, run = tmp_path / "koch", tmp_path / "run"
    make_v21(data, eps)
    assert main(["train", "--data", str(data), "--out", str(run), "--preset", "tiny", "--max-steps", "6",
                 "--batch-size", "4", "--no-progress"]) == 0
    spec = json.loads((run / "spec.json").read_text())
    assert {m["key"] for m in spec["modalities"]} == {"observation.images.laptop", "observation.state", "action"}
    out = tmp_path / "dream.mp4"
    assert main(["dream", "--run", str(run), "--data", str(data), "--episode", "1", "--context", "4",
                 "--horizon", "8", "--out", str(out)]) == 0
    with av.open(str(out)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 12
    assert main(["eval", "--run", str(run), "--data", str(data), "--out", str(tmp_path / "report"),
                 "--episodes", "2", "--horizon", "8", "--quiet"]) == 0
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert len(report["per_horizon"]["psnr"]["model"]) == 8
    assert report["identity"]["available"] is False  # no ground-truth objects in a foreign dataset


def test_a_timed_run_shows_progress_over_its_clock(tmp_path, dataset, capsys) -> None:
    """With --max-minutes the step cap is only a cap (10**9): the bar counts seconds and shows the steps."""
    assert main(["train", "--data", str(dataset), "--out", str(tmp_path / "run"), "--preset", "tiny",
                 "--max-minutes", "0.1", "--batch-size", "4"]) == 0
    err = capsys.readouterr().err
    assert "stage 2: dynamics, " in err and "step=" in err
    assert "1000000000" not in err  # no bar towards the unreachable step cap
    assert "tokenizing the episodes" in err and "tokenized " in err  # the minute between the stages is shown too


def test_set_changes_one_setting_of_the_preset_and_names_what_is_wrong(tmp_path, dataset, capsys) -> None:
    from genworld.train.config import set_options, tiny

    spec = synthetic_spec(size=32, samples=200)
    cfg = set_options(tiny(spec), ["model.flow_width=8", "model.dynamics.window=6", "train.lr_dyn=2e-3",
                                   "model.loss_weights.touch=5", "model.image.levels=[8,8,5,5]", "train.max_minutes=2",
                                   "train.device=cpu"])
    m, t = cfg.model, cfg.train
    assert (m.flow_width, m.dynamics.window, t.lr_dyn, m.loss_weights["touch"]) == (8, 6, 2e-3, 5.0)
    assert m.image.levels == (8, 8, 5, 5) and t.max_minutes == 2 and t.device == "cpu"
    assert tiny(spec).model.flow_width == 0  # the preset itself is untouched
    lr = set_options(tiny(spec), ["train.lr_dyn=1"]).train.lr_dyn
    assert type(lr) is float and lr == 1.0, lr  # "1" reads as the field's type, not as an int
    for bad, words in [("model.flow_widht=8", ["unknown key 'flow_widht'", "flow_width"]),
                       ("modle.flow_width=8", ["no section 'modle'", "model"]),
                       ("model.flow_width=8.5", ["expected a value like 0 (int)", "float"]),
                       ("model.video_delta=1", ["(bool)"]),
                       ("model.flow_width", ["expected KEY=VALUE"]),
                       ("model.spec.fps=3", ["cannot be changed"]), ("format_version=9", ["cannot be changed"])]:
        with pytest.raises(ValueError) as e:
            set_options(tiny(spec), [bad])
        assert all(w in str(e.value) for w in words), (bad, str(e.value))
    # through the command line: the run's config.json records the change, and a resumed run refuses it
    run = tmp_path / "run"
    assert main(["train", "--data", str(dataset), "--out", str(run), "--max-steps", "4", "--batch-size", "4",
                 "--no-progress", "--set", "model.flow_width=4", "--set", "model.dynamics.window=5"]) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["model"]["flow_width"] == 4 and cfg["model"]["dynamics"]["window"] == 5
    assert main(["train", "--data", str(dataset), "--out", str(run), "--resume", "--set", "model.flow_width=8"]) == 1
    assert "keeps the settings" in capsys.readouterr().err
    assert main(["train", "--data", str(dataset), "--out", str(tmp_path / "r2"), "--set", "train.lr_dyn=fast"]) == 1
    assert "--set train.lr_dyn=fast" in capsys.readouterr().err
