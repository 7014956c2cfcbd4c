"""pff export: ONNX (checked with onnxruntime) and TorchScript match PyTorch and the Restorer at any size."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pff.errors import PffError
from pff.export import ExportWrapper, export_model, run_exported
from pff.models import ModelCard, create, save
from pff.restore import Restorer

# Neither a multiple of the stride (8) nor of the example the graph is traced on.
ODD = (61, 75)


def _model(**overrides):
    torch.manual_seed(0)
    model = create("pff-tiny", channels="y", **overrides).eval()
    with torch.no_grad():
        model.predictor.out.weight.normal_(0, 0.05)
        for module in model.modules():  # batch norms that are not the identity, so folding them matters
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 2.0)
    return model


def _image(h: int, w: int, seed: int = 5) -> torch.Tensor:
    return torch.rand(1, 1, h, w, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
@pytest.mark.parametrize(
    "overrides",
    [{"constraint": "none"}, {"constraint": "softmax", "kernel": 5}, {"kind": "direct"}, {"constraint": "none", "context": 4}],
)
def test_export_matches_restorer_at_odd_sizes(tmp_path, fmt, overrides):
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
        pytest.importorskip("onnxscript")
    model = _model(**overrides)
    if model.predictor.context is not None:  # away from its start (no change): a mean over the whole image
        with torch.no_grad():
            model.predictor.context[2].weight.normal_(0, 0.5)
    out = tmp_path / f"m.{fmt}"
    difference = export_model(model, out, fmt)
    assert difference <= 1e-4 and out.stat().st_size > 0
    restorer = Restorer(model, ModelCard(task="jpeg", channels="y", model=model.config))
    for h, w in (ODD, (48, 64), (1, 1), (9, 3)):
        image = _image(h, w)
        expected = restorer.run(image)[0].numpy()
        got = run_exported(out.read_bytes(), fmt, image.numpy())
        assert got.shape == (1, 1, h, w)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)  # float32, < 0.003 grey levels


@pytest.mark.parametrize(("scale", "padding"), [(2, "replicate"), (3, "zeros")])
def test_upscaling_model_exports_to_torchscript(tmp_path, scale, padding):
    """An SR model computing in low resolution: the graph returns the s times larger image of the Restorer."""
    model = create("pff-tiny", channels="y", kernel=5, head="full", constraint="none", padding=padding, upscale=scale)
    with torch.no_grad():
        for p in model.predictor.out.parameters():  # away from the bicubic start
            p.normal_(0, 0.05, generator=torch.Generator().manual_seed(1))
    out = tmp_path / "sr.pt"
    assert export_model(model, out, "torchscript") <= 1e-4
    card = ModelCard(task="sr", channels="y", model=model.config, degrade={"scale": scale, "upsample": False})
    restorer = Restorer(model.eval(), card, tile=0)
    image = _image(*ODD)
    got = run_exported(out.read_bytes(), "torchscript", image.numpy())
    assert got.shape == (1, 1, scale * ODD[0], scale * ODD[1])
    np.testing.assert_allclose(got, restorer.run(image)[0].numpy(), rtol=0, atol=1e-5)


def test_wrapper_is_the_model_pass_clamped():
    model = _model(constraint="none")
    image = _image(*ODD)
    with torch.inference_mode():
        restored, _ = model(image, return_filters=False)
        np.testing.assert_array_equal(ExportWrapper(model)(image).numpy(), restored.clamp(0, 1).numpy())


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
