"""The default checkpoint's recipe end to end (scripts/train_default.py), at a toy size and budget."""

import json
import shutil

import numpy as np
import pytest
import torch

import pipeline.cli.train_default as recipe
from model import load_checkpoint
from model.checkpoint import stored_config
from pipeline.data.trainset import build

TOY = [
    "model.features=4",
    "model.resblocks=1",
    "train.crop=32",
    "train.batch=2",
    "train.workers=0",
    "train.checkpoint_every=1",
    "flow.size=64",
    "flow.batch=2",
    "flow.val_pairs=2",
    "flow.workers=0",
    "flow.checkpoint_every=1",
    "flow.val_every=1",
    "flow.val_frames=3",
    "flow.matching_updates=1",
    "flow.fit_batches=1",
    "recipe.export_frames=4",
    "recipe.flow_share=0.6",
    "recipe.stage1_share=0.2",
]


@pytest.fixture
def run_folder(sources, tmp_path):
    """A recipe folder whose data phase is done: the toy training set of `sources`."""
    out = tmp_path / "run"
    build(sources, out / "data", base=tmp_path, seed=0)
    return out


def test_recipe_trains_every_phase_exports_and_installs(run_folder, tmp_path, monkeypatch):
    """One call runs flow (rendered and footage pairs), stage 1 and cascade (windows blurred on the fly)
    within the budget, scores the validation clip under the protocol's blurred conditions with the cascade
    and with stage 1 alone and the flow net, and installs the better model and its card; a second call
    resumes nothing and re-exports the same figures; a run started from the installed checkpoint carries its
    card."""
    installed = tmp_path / "weights" / "cdvd_tsp_default.pt"
    monkeypatch.setattr(recipe, "DEFAULT_CHECKPOINT", installed)
    arguments = [
        "--out",
        str(run_folder),
        "--budget",
        "0.2",  # minutes: the flow phase's 7 s hold its matching start (1.4 s on 2 cores) and a few steps
        "--device",
        "cpu",
        "--install",
        *[f"--set={item}" for item in TOY],
    ]
    assert recipe.main(arguments) == 0
    card = json.loads((run_folder / "card.json").read_text())
    assert set(card["phases"]) == {"flow", "stage1", "cascade"}
    assert all(phase["steps"] >= 1 for phase in card["phases"].values())
    assert set(card["validation"]) == {f"held__{name}" for name in card["data"]["val_conditions"]}
    assert all(row["frames"] == 4 for row in card["validation"].values())
    gains = [row["gain_db"] for row in card["validation"].values()]
    assert card["mean_gain_db"] == pytest.approx(np.mean(gains))
    candidates = card["candidates"]
    assert {name: c["stages"] for name, c in candidates.items()} == {"cascade": 2, "stage1": 1}
    assert card["validation"] == candidates[card["shipped"]]["validation"]
    assert card["mean_gain_db"] == max(c["mean_gain_db"] for c in candidates.values())
    assert card["flow"]["pairs"]["pairs"] == 2 and set(card["flow"]["footage"]) == {"held"}
    assert json.loads(installed.with_suffix(".json").read_text()) == card
    model = load_checkpoint(installed)
    assert model.config.stages == candidates[card["shipped"]]["stages"]
    assert model.config.features == 4 and model.config.residual
    assert stored_config(installed) == model.config
    dtype = torch.float16 if card["stored"] == "fp16" else torch.float32
    weights = torch.load(installed, weights_only=True)["model"]
    assert {value.dtype for value in weights.values() if value.is_floating_point()} == {dtype}

    steps = {name: phase["steps"] for name, phase in card["phases"].items()}
    assert recipe.main(arguments) == 0  # every phase is done: nothing trains again
    again = json.loads((run_folder / "card.json").read_text())
    assert {name: phase["steps"] for name, phase in again["phases"].items()} == steps
    assert again["validation"] == card["validation"]

    # trained further from the installed checkpoint: the new card carries the old one's
    assert card["started_from"] is None
    further = tmp_path / "further"
    shutil.copytree(run_folder / "data", further / "data")
    arguments[1] = str(further)
    assert recipe.main([*arguments, f"--set=train.init={installed}", "--set=recipe.flow_share=0"]) == 0
    later = json.loads((further / "card.json").read_text())
    assert set(later["phases"]) == {"stage1", "cascade"}
    assert later["started_from"] == {
        "path": str(installed), "card": {key: again[key] for key in recipe.CHECKPOINT_CARD}
    }
    assert recipe.main(arguments) == 0  # a rerun after --install replaced that file: the same origin
    assert json.loads((further / "card.json").read_text())["started_from"] == later["started_from"]


def test_a_bad_setting_is_a_one_line_error(run_folder, capsys):
    assert recipe.main(["--out", str(run_folder), "--set", "train.clip=-1"]) == 2
    assert "train.clip must be >= 0" in capsys.readouterr().err
