"""pff export: ONNX (checked with onnxruntime) and TorchScript match PyTorch."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pff.errors import PffError
from pff.export import ExportWrapper, export_model, run_exported
from pff.models import ModelCard, create, save


def _model(**overrides):
    torch.manual_seed(0)
    model = create("pff-tiny", channels="y", **overrides).eval()
    with torch.no_grad():
        model.predictor.out.weight.normal_(0, 0.05)
    return model


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
@pytest.mark.parametrize("overrides", [{"constraint": "none"}, {"constraint": "softmax", "kernel": 5}, {"kind": "direct"}])
def test_export_matches_pytorch(tmp_path, fmt, overrides):
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
        pytest.importorskip("onnxscript")
    model = _model(**overrides)
    out = tmp_path / f"m.{fmt}"
    difference = export_model(model, out, fmt)
    assert difference <= 1e-4 and out.stat().st_size > 0
    image = torch.rand(1, 1, 48, 64, generator=torch.Generator().manual_seed(5))
    with torch.inference_mode():
        expected = ExportWrapper(model)(image).numpy()
        restored, _ = model(image, return_filters=False)
    np.testing.assert_allclose(expected, restored.clamp(0, 1).numpy(), atol=1e-6)
    assert np.abs(run_exported(out.read_bytes(), fmt, image.numpy()) - expected).max() <= 1e-4


def test_export_cli_and_errors(tmp_path, capsys):
    from pff.cli import main

    model = _model(constraint="none")
    save(model, ModelCard(task="jpeg", channels="y", model=model.config), tmp_path / "m")
    assert main(["export", "--model", str(tmp_path / "m"), "--format", "torchscript", str(tmp_path / "m.pt")]) == 0
    assert "max |difference|" in capsys.readouterr().out
    assert main(["export", "--model", "nope", "--format", "torchscript", str(tmp_path / "x.pt")]) == 2
    assert "pff: error: cannot load model 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()
    with pytest.raises(PffError, match="unknown export format"):
        export_model(model, tmp_path / "y", "tflite")
