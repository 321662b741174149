"""`genworld plan` end to end on tiny budgets, and its errors."""

from __future__ import annotations

import json
import subprocess
import sys

from genworld.cli import main


def test_plan_in_the_simulator_writes_plan_json_and_video(tmp_path) -> None:
    out = tmp_path / "plan"
    status = main(["plan", "--world", "bounce", "--task", "touch", "--episodes", "2", "--steps", "8",
                   "--budget", "8,1,4", "--modes", "sim,random", "--videos", "1", "--out", str(out)])
    assert status == 0
    rep = json.loads((out / "plan.json").read_text())
    assert rep["task"] == "touch" and rep["episodes"] == 2
    assert rep["success_rate"] is None  # no model was given
    for mode in ("ceiling", "random"):
        s = rep[mode]
        assert s["episodes"] == 2 and s["success_rate"] == s["successes"] / 2  # a share of whole episodes
        assert s["success_ci95"][0] <= s["success_rate"] <= s["success_ci95"][1]
    assert rep["ceiling"]["seconds_per_step"] > 0 and rep["seconds_per_step"] > 0
    assert rep["budget"] == {"samples": 8, "iterations": 1, "horizon": 4, "replan_every": 1}
    assert (out / "plan.mp4").stat().st_size > 1000


def test_list_names_the_tasks(capsys) -> None:
    assert main(["plan", "--world", "bounce", "--list"]) == 0
    assert "push" in capsys.readouterr().out


def test_bad_input_gives_clear_errors(tmp_path, capsys) -> None:
    assert main(["plan", "--world", "bounce", "--task", "stack", "--episodes", "1", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "task 'stack' does not exist for world 'bounce'" in err and "push" in err
    assert main(["plan", "--world", "bounce", "--task", "push", "--out", str(tmp_path), "--episodes", "0"]) == 1
    assert "--episodes" in capsys.readouterr().err
    assert main(["plan", "--run", str(tmp_path / "nope"), "--task", "push", "--out", str(tmp_path)]) == 1
    assert "nope" in capsys.readouterr().err
    # argparse refuses a zero budget before anything runs
    p = subprocess.run([sys.executable, "-m", "genworld.cli", "plan", "--world", "bounce", "--task", "push",
                        "--budget", "0,3,8", "--out", str(tmp_path)], capture_output=True, text=True)
    assert p.returncode == 2 and "must all be >= 1" in p.stderr


def test_goal_image_of_the_wrong_shape_is_refused(tmp_path, capsys) -> None:
    from PIL import Image

    png = tmp_path / "goal.png"
    Image.new("RGB", (32, 32)).save(png)
    status = main(["plan", "--world", "bounce", "--task", "reach", "--goal-image", str(png), "--episodes", "1",
                   "--out", str(tmp_path / "o")])
    assert status == 1
    assert "shape (32, 32, 3)" in capsys.readouterr().err


def test_push_cost_flag_reaches_the_report(tmp_path) -> None:
    out = tmp_path / "plan"
    assert main(["plan", "--world", "bounce", "--task", "push", "--episodes", "1", "--steps", "3", "--budget",
                 "4,1,2", "--modes", "sim", "--videos", "0", "--push-cost", "behind", "--out", str(out)]) == 0
    rep = json.loads((out / "plan.json").read_text())
    assert rep["push_cost"] == "behind" and rep["config"]["push_cost"] == "behind"
