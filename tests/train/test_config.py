"""Run configs: a run saved before an experiment's option was removed still loads if it had it off."""

from __future__ import annotations

import json

import pytest

from genworld.train.config import RETIRED, RunConfig, tiny
from genworld.train.synthetic import synthetic_spec


def test_a_saved_run_with_retired_options_off_loads_and_one_with_them_on_is_refused() -> None:
    cfg = tiny(synthetic_spec())
    old = json.loads(cfg.to_json())
    old["model"].update(video_local=0, object_slots=0, object_render=32, contact_reader_mix=0.5)
    old["train"]["pair_batch"] = 448
    assert RunConfig.from_json_dict(old) == cfg
    assert "video_local" in old["model"]  # the caller's dict is left as it was
    for key, on in [("video_local", 16), ("object_slots", 10), ("proprio_residual", True)]:
        with pytest.raises(ValueError, match=f"model.{key}={json.dumps(on)} was an experiment"):
            RunConfig.from_json_dict({**old, "model": {**old["model"], key: on}})
    assert not any(k.split(".")[1] in json.loads(cfg.to_json())[k.split(".")[0]] for k in RETIRED)
