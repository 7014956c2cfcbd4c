"""benchmarks/explain_energy.py on untrained models and tiny benchmark folders."""
from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np
import torch

from pff.io import write_image
from pff.models import ModelCard, create, save

_SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "explain_energy.py"


def _model(folder: Path, task: str, channels: str) -> str:
    torch.manual_seed(0)
    model = create("pff-tiny", channels=channels, kernel=5)
    with torch.no_grad():
        for p in model.predictor.out.parameters():
            p.copy_(0.3 * torch.randn(p.shape))
    save(model, ModelCard(task=task, channels=channels, model=model.config), folder)
    return str(folder)


def _data(root: Path) -> None:
    rng = np.random.default_rng(0)
    image = lambda h, w: (rng.random((h, w, 3)) * 255).astype(np.uint8)  # noqa: E731
    write_image(root / "blur-moderate" / "a_GT.png", image(20, 24))
    write_image(root / "blur-moderate" / "a_blurry.png", image(20, 24))
    for i in range(2):
        write_image(root / "live1" / f"l{i}.png", image(17, 23))
    write_image(root / "set5" / "s.png", image(32, 28))
    write_image(root / "set14" / "t.png", image(22, 26))  # cropped to 20x24 for x4


def test_energy_table_for_every_task(tmp_path, capsys):
    _data(tmp_path / "data")
    models = [_model(tmp_path / t, t, c) for t, c in (("deblur", "rgb"), ("jpeg", "y"), ("sr", "y"))]
    main = runpy.run_path(str(_SCRIPT), run_name="explain_energy")["main"]
    args = ["--data", str(tmp_path / "data")] + [a for m in models for a in ("--model", m)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    print(printed)
    out = printed.splitlines()
    assert out[0].startswith("# ") and "torch" in out[0]
    assert len(out) == 3 + 5 + 1  # machine, header, rule, 5 rows, time
    by_set = {" ".join(r[2:-6]): r for r in (line.split() for line in out[3:-1])}
    # Columns from the right: images, filters, K, centred, uncentred, paper.
    assert by_set["blur-moderate"][-6:-3] == ["1", "480", "5x5"]
    assert by_set["LIVE1 q10"][-6:-3] == ["2", "782", "5x5"]  # 2 x 17 x 23 pixels
    assert by_set["Set5 x4 + Set14 x4"][-6:-4] == ["2", str(32 * 28 + 20 * 24)]
    for row in by_set.values():
        centred, uncentred, paper = map(float, row[-3:])
        assert 0 < centred <= 100 and 0 < uncentred <= 100 and paper > 99


def test_no_models_is_an_error(tmp_path, capsys, monkeypatch):
    import pff.models

    monkeypatch.setattr(pff.models, "available", lambda: [])
    main = runpy.run_path(str(_SCRIPT), run_name="explain_energy")["main"]
    assert main(["--data", str(tmp_path)]) == 1
    assert "no shipped models" in capsys.readouterr().err
