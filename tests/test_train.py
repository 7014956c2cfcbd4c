from __future__ import annotations

import csv
import dataclasses
import itertools
import json
import os
import signal
import subprocess
import sys
import time
import typing
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from pff.cli import main
from pff.config import apply_overrides, from_dict, parse_override
from pff.errors import PffError
from pff.models import build_model, load
from pff.train import (
    CHECKPOINT,
    DataConfig,
    Dist,
    LossConfig,
    OptimConfig,
    RunConfig,
    StepBatches,
    Trainer,
    load_checkpoint_state,
    lr_factor,
    restoration_loss,
    weights_digest,
)


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    """Six small synthetic photos (smooth colour fields with edges), written as PNG."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for i in range(6):
        coarse = rng.integers(0, 256, (10, 12, 3)).astype(np.uint8)
        image = np.asarray(Image.fromarray(coarse).resize((84, 70), Image.BICUBIC))
        image = image.copy()
        image[20:40, 10 + 5 * i : 50] = 255 - image[20:40, 10 + 5 * i : 50]  # sharp edges
        Image.fromarray(image).save(folder / f"img{i}.png")
    return folder


def _write_config(path: Path, images: Path, **sections: str) -> Path:
    """A tiny jpeg/luma run config; ``sections`` replaces whole [section] bodies."""
    body = {
        "model": 'arch = "pff-tiny"\nkernel = 5\nconstraint = "none"',
        "data": f'roots = ["{images}"]\nval_count = 1\nval_patch = 32\nval_per_image = 2\npatch = 24\nworkers = 0',
        "data.degrade": "quality = [10, 30]",
        "optim": 'lr = 2e-3\nschedule = "cosine"\nwarmup = 2',
        "train": "steps = 12\nbatch_size = 4\nlog_every = 2\nval_every = 6\nckpt_every = 4\nthreads = 1",
    }
    body.update(sections)
    text = 'task = "jpeg"\nchannels = "y"\nseed = 3\n' + "".join(f"\n[{k}]\n{v}\n" for k, v in body.items())
    path.write_text(text)
    return path


def _pff(*args: str, **popen) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "pff", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, **popen
    )


def _run_pff(*args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "pff", *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def test_train_writes_a_loadable_model_log_and_checkpoint(tmp_path, images, capsys):
    config = _write_config(tmp_path / "run.toml", images)
    out = tmp_path / "out"
    assert main(["train", "--config", str(config), "--out", str(out)]) == 0
    assert "done: 12 steps" in capsys.readouterr().out
    model, card = load(out)
    assert card.task == "jpeg" and card.channels == "y" and card.model.kernel == 5
    restored, filters = model(torch.rand(1, 1, 17, 23))
    assert restored.shape == (1, 1, 17, 23) and filters.shape == (1, 25, 17, 23)
    with open(out / "log.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows if r["loss"]] == [2, 4, 6, 8, 10, 12]
    val = [r for r in rows if r["val_psnr"]]
    assert [int(r["step"]) for r in val] == [6, 12] and float(val[0]["val_input_psnr"]) > 15
    assert load_checkpoint_state(out / CHECKPOINT)["step"] == 12
    assert not list(out.glob(".*.tmp"))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 12 and summary["rank_digests"] == [weights_digest(model)]


def test_deblur_run_on_camera_shake_keeps_its_physics_in_the_card(tmp_path, images):
    config = _write_config(
        tmp_path / "run.toml", images,
        model='arch = "pff-tiny"\nkernel = 5\nconstraint = "normalized"',
        **{"data.degrade": 'physics = "CameraShake"\nlength_range = [3, 9]\nnoise_max = 2.55',
           "train": "steps = 2\nbatch_size = 2\nlog_every = 1\nval_every = 2\nckpt_every = 2\nthreads = 1"},
    )  # fmt: skip
    config.write_text(config.read_text().replace('task = "jpeg"\nchannels = "y"', 'task = "deblur"\nchannels = "rgb"'))
    out = tmp_path / "out"
    assert main(["train", "--config", str(config), "--out", str(out)]) == 0
    _, card = load(out)
    physics = card.physics()
    assert type(physics).__name__ == "CameraShake" and physics.length_range == (3.0, 9.0) and physics.noise_max == 2.55


@pytest.mark.parametrize(("amp", "native", "enabled"), [(True, True, True), (True, False, False), (False, True, False)])
def test_bfloat16_autocast_only_where_the_device_has_it(monkeypatch, amp, native, enabled):
    import pff.train

    monkeypatch.setattr(pff.train, "bf16_native", lambda device: native)
    cfg = from_dict(RunConfig, {"model": {"arch": "pff-tiny", "kernel": 5}, "train": {"amp": amp}})
    trainer = Trainer(cfg, build_model(cfg.model, 3), torch.device("cpu"), Dist())
    with trainer.autocast():
        assert torch.is_autocast_enabled("cpu") is enabled
        x = torch.rand(1, 3, 8, 8)
        assert (trainer.module.predictor(x).dtype == torch.bfloat16) is enabled


def test_bf16_native_reads_the_cpu(monkeypatch):
    from pff.train import bf16_native

    for avx512_bf16, amx in ((False, False), (True, False), (False, True)):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda v=avx512_bf16: v, raising=False)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda v=amx: v, raising=False)
        assert bf16_native(torch.device("cpu")) is (avx512_bf16 or amx)


def test_tiny_config_overfits_a_fixed_batch(images):
    from pff import data, degrade

    cfg = from_dict(RunConfig, {
        "task": "jpeg", "channels": "y",
        "model": {"arch": "pff-tiny", "kernel": 5, "constraint": "none"},
        "optim": {"lr": 3e-3, "schedule": "constant"},
        "train": {"steps": 400, "amp": False, "channels_last": False},
    })  # fmt: skip
    pairs = data.PairDataset(data.list_images([images]), degrade.for_task("jpeg", quality=10), patch=24, channels="y")
    degraded = torch.stack([pairs[i][0] for i in range(8)])
    clean = torch.stack([pairs[i][1] for i in range(8)])
    torch.manual_seed(0)
    trainer = Trainer(cfg, build_model(cfg.model, 1), torch.device("cpu"), Dist())
    losses: list[float] = []
    trainer.callbacks.append(lambda tr: losses.append(tr.loss_parts["pixel"]))
    trainer.run(itertools.repeat((degraded, clean), cfg.train.steps))
    print(f"overfit: loss {losses[0]:.4f} -> {np.mean(losses[-5:]):.4f}")
    assert losses[0] / np.mean(losses[-5:]) > 8


def test_sigkill_then_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path, images):
    train = "steps = 150\nbatch_size = 4\nlog_every = 10\nval_every = 50\nckpt_every = 10\nthreads = 1"
    data = f'roots = ["{images}"]\nval_count = 1\nval_patch = 32\nval_per_image = 2\npatch = 24\nworkers = %d'
    ref_cfg = _write_config(tmp_path / "ref.toml", images, train=train, data=data % 2)
    cfg = _write_config(tmp_path / "run.toml", images, train=train, data=data % 1)
    ref, run = tmp_path / "ref", tmp_path / "run"

    killed = _pff("train", "--config", str(cfg), "--out", str(run))
    deadline = time.monotonic() + 120
    while not (run / CHECKPOINT).exists() and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    killed.send_signal(signal.SIGKILL)
    killed.communicate()
    assert killed.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    done_at_kill = load_checkpoint_state(run / CHECKPOINT)["step"]
    assert 10 <= done_at_kill < 150

    # Resumed with no data workers and the uninterrupted run with two: the
    # stream is a function of (seed, step) only.
    _run_pff("train", "--out", str(run), "--resume", "--set", "data.workers=0")
    _run_pff("train", "--config", str(ref_cfg), "--out", str(ref))
    a, b = _weights(ref), _weights(run)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    with open(run / "log.csv", newline="") as handle:
        steps = [int(r["step"]) for r in csv.DictReader(handle) if r["loss"]]
    assert steps == list(range(10, 151, 10))  # rows past the checkpoint were dropped on resume

    # --steps extends a finished run.
    _run_pff("train", "--out", str(run), "--resume", "--steps", "160")
    assert load_checkpoint_state(run / CHECKPOINT)["step"] == 160


# `pff train` under torchrun, then each rank lists its threads (Linux): gloo's must be gone
# once train() returns. Threads of a process group that outlived destroy_process_group ran
# into interpreter exit and aborted the process now and then (SIGABRT, about 1 run in 8).
_TRAIN_THEN_LIST_THREADS = """
import os, sys
from pff.cli import main
status = main(sys.argv[1:])
names = [open(f"/proc/self/task/{task}/comm").read().strip() for task in os.listdir("/proc/self/task")]
with open(os.path.join(os.environ["THREADS_DIR"], f"rank{os.environ['RANK']}.txt"), "w") as handle:
    handle.write(" ".join(sorted(names)))
sys.exit(status)
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="lists threads through /proc (Linux)")
def test_torchrun_two_processes_end_with_identical_weights(tmp_path, images):
    config = _write_config(tmp_path / "run.toml", images)
    out = tmp_path / "out"
    script = tmp_path / "train_then_list_threads.py"
    script.write_text(_TRAIN_THEN_LIST_THREADS)
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(script), "train", "--config", str(config), "--out", str(out), "--steps", "6"],
        capture_output=True, text=True, timeout=300,
        env=dict(os.environ, OMP_NUM_THREADS="1", THREADS_DIR=str(tmp_path)),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    # One file per rank: the two ranks share stdout, where their lines can interleave.
    listed = {rank: (tmp_path / f"rank{rank}.txt").read_text() for rank in (0, 1)}
    assert all(names and "gloo" not in names for names in listed.values()), listed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world"] == 2 and summary["steps"] == 6
    digests = summary["rank_digests"]  # computed by each process from its own weights
    assert len(digests) == 2 and digests[0] == digests[1]
    model, _ = load(out)
    assert weights_digest(model) == digests[0]


def test_step_batches_split_the_global_batch_across_ranks():
    single = list(StepBatches(3, 5, 8, Dist()))
    assert single == [list(range(24, 32)), list(range(32, 40))]
    ranks = [list(StepBatches(3, 5, 8, Dist(rank=r, world=2))) for r in range(2)]
    for step in range(2):
        assert ranks[0][step] + ranks[1][step] == single[step]


@pytest.mark.parametrize(
    ("pixel", "expected"),
    [("l1", 0.35), ("l2", 0.185), ("charbonnier", ((0.01 + 1e-6) ** 0.5 + (0.36 + 1e-6) ** 0.5) / 2)],
)
def test_pixel_losses(pixel, expected):
    restored, clean = torch.tensor([0.1, 0.8]).view(1, 1, 1, 2), torch.tensor([0.0, 0.2]).view(1, 1, 1, 2)
    total, parts = restoration_loss(restored, clean, None, LossConfig(pixel=pixel))
    assert total.item() == pytest.approx(expected) and parts["pixel"] == pytest.approx(expected)


def test_lr_schedules():
    cosine = OptimConfig(lr=1.0, warmup=10, min_lr=0.1)
    assert lr_factor(cosine, 0, 110) == pytest.approx(0.1)
    assert lr_factor(cosine, 9, 110) == pytest.approx(1.0)
    assert lr_factor(cosine, 60, 110) == pytest.approx(0.55)
    assert lr_factor(cosine, 110, 110) == pytest.approx(0.1)
    step = OptimConfig(schedule="step", step_every=100, gamma=0.5)
    assert [lr_factor(step, s, 1000) for s in (0, 99, 100, 250)] == [1.0, 1.0, 0.5, 0.25]


def test_overrides_are_parsed_as_toml_values():
    assert parse_override("model.kernel=9") == (["model", "kernel"], 9)
    assert parse_override("optim.lr=5e-4") == (["optim", "lr"], 5e-4)
    assert parse_override("model.constraint=softmax") == (["model", "constraint"], "softmax")
    assert parse_override("data.roots=['a', 'b']") == (["data", "roots"], ["a", "b"])
    data = apply_overrides({"model": {"kernel": 3}}, ["model.kernel=9", "data.degrade.quality=10"])
    assert data == {"model": {"kernel": 9}, "data": {"degrade": {"quality": 10}}}
    cfg = from_dict(RunConfig, {"model": {"arch": "pff-base", "kernel": 11}})
    assert cfg.model.arch == "pff-base" and cfg.model.kernel == 11 and cfg.model.widths == (48, 96, 192, 256)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"model": 'arch = "pff-tiny"\nwidht = 3'}, "unknown config key 'model.widht'"),
        ({"optim": 'lr = "fast"'}, "optim.lr: must be a number, got str 'fast'"),
        ({"train": "steps = 2.5"}, "train.steps: must be an integer"),
        ({"model": 'arch = "pff-huge"'}, "model.arch: unknown architecture 'pff-huge'"),
        ({"model": "kernel = 4"}, "model.kernel: must be an odd number"),
        ({"data": 'roots = ["/no/such/folder"]'}, "data.roots: image folder '/no/such/folder' does not exist"),
        ({"data.degrade": "qualty = 10"}, "data.degrade: unknown parameter(s) qualty"),
    ],
)
def test_bad_config_is_a_one_line_error_naming_the_key(tmp_path, images, capsys, edit, message):
    config = _write_config(tmp_path / "bad.toml", images, **edit)
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pff: error: ") and err.count("\n") == 1
    assert message in err


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("data.workers=-1", "data.workers: must be >= 0 and <= 1024, got -1"),
        ("train.threads=-1", "train.threads: must be >= 0 and <= 1024, got -1"),
        ("seed=-1", "seed: must be >= 0"),
        ("optim.lr=nan", "optim.lr: must be a finite number, got nan"),
        ("optim.lr=inf", "optim.lr: must be a finite number, got inf"),
        ("optim.lr=0", "optim.lr: must be > 0, got 0.0"),
        ("optim.betas=[0.9, 1.0]", "optim.betas[1]: must be >= 0 and < 1, got 1.0"),
        ("optim.min_lr=1.5", "optim.min_lr: must be >= 0 and <= 1, got 1.5"),
        ("loss.eps=-inf", "loss.eps: must be a finite number, got -inf"),
        ("train.batch_size=0", "train.batch_size: must be >= 1 and <= 65536, got 0"),
        ("train.steps=1e3", "train.steps: must be an integer, got float 1000.0"),
        ("data.val_count=6", "data.val_count: expected 0 <= val_count < 6"),
    ],
)
def test_bad_setting_is_one_line_naming_the_key_and_writes_nothing(tmp_path, images, capsys, setting, message):
    config = _write_config(tmp_path / "run.toml", images)
    out = tmp_path / "out"
    assert main(["train", "--config", str(config), "--out", str(out), "--set", setting]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pff: error: ") and err.count("\n") == 1
    assert message in err
    assert not out.exists()


def _numeric_fields(cls) -> list[tuple[str, dataclasses.Field]]:
    """Dotted names and fields of every int/float (or tuple of them) in a training config class."""
    hints = typing.get_type_hints(cls)
    found = []
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            if hint.__module__ == "pff.train":  # ModelConfig checks itself (pff.models)
                found += [(f"{f.name}.{name}", g) for name, g in _numeric_fields(hint)]
        elif hint in (int, float) or typing.get_args(hint)[:1] in ((int,), (float,)):
            found.append((f.name, f))
    return found


def test_every_numeric_training_setting_is_bounded_and_rejects_nan():
    fields = _numeric_fields(RunConfig)
    assert "data.workers" in [name for name, _ in fields] and len(fields) > 20
    unbounded = [name for name, f in fields if "bounds" not in f.metadata]
    assert unbounded == []  # declare new numbers with pff.config.bounded
    for name, f in fields:
        value = [float("nan")] * len(f.default) if isinstance(f.default, tuple) else float("nan")
        section, _, key = name.rpartition(".")
        data = {section: {key: value}} if section else {key: value}
        with pytest.raises(PffError, match=f"^{name}(\\[0\\])?: must be "):
            from_dict(RunConfig, data)


def test_configs_built_in_python_are_checked_too():
    with pytest.raises(PffError, match="^lr: must be a finite number, got nan$"):
        OptimConfig(lr=float("nan"))
    with pytest.raises(PffError, match="^workers: must be >= 0"):
        DataConfig(workers=-1)


def test_out_naming_a_file_is_refused_and_the_file_kept(tmp_path, images, capsys):
    config = _write_config(tmp_path / "run.toml", images)
    precious = tmp_path / "notes.txt"
    precious.write_text("mine")
    for out in (precious, precious / "run"):
        for extra in ([], ["--resume"]):
            assert main(["train", "--config", str(config), "--out", str(out), *extra]) == 2
            err = capsys.readouterr().err
            assert err == f"pff: error: --out: '{precious}' is a file, not a folder; choose another run folder\n"
    assert precious.read_text() == "mine"


def test_corrupt_training_image_is_one_line_before_the_run_starts(tmp_path, images):
    folder = tmp_path / "photos"
    folder.mkdir()
    for path in images.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "img2.png").write_bytes((images / "img2.png").read_bytes()[:400])  # header intact, pixels cut
    data = f'roots = ["{folder}"]\nval_count = 1\nval_patch = 32\nval_per_image = 2\npatch = 24\nworkers = 2'
    config = _write_config(tmp_path / "run.toml", images, data=data)
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "pff", "train", "--config", str(config), "--out", str(out)],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr == f"pff: error: cannot read image '{folder / 'img2.png'}': truncated or corrupt (image file is truncated)\n"
    assert not out.exists()


def test_bad_command_lines(tmp_path, images, capsys):
    config = _write_config(tmp_path / "run.toml", images)
    out = str(tmp_path / "out")
    cases = [
        (["--config", str(config), "--out", out, "--set", "model.kernel"], "not of the form key=value"),
        (["--config", str(config), "--out", out, "--set", "modle.kernel=3"], "unknown config key 'modle'"),
        (["--out", out, "--resume"], "nothing to resume"),
        (["--config", str(tmp_path / "missing.toml"), "--out", out], "does not exist"),
    ]
    for args, message in cases:
        assert main(["train", *args]) == 2
        assert message in capsys.readouterr().err
    assert main(["train", "--config", str(config), "--out", out, "--steps", "2"]) == 0
    assert main(["train", "--config", str(config), "--out", out]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert main(["train", "--out", out, "--resume", "--set", "model.kernel=7"]) == 2
    assert "model.kernel = 7 differs from the saved run's 5" in capsys.readouterr().err


def test_list_archs_prints_parameter_counts(capsys):
    assert main(["train", "--list-archs"]) == 0
    out = capsys.readouterr().out
    assert "paper" in out and "12,793,832" in out


def test_tensorboard_request_without_the_package_is_an_error(tmp_path, images, capsys, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name == "tensorboard":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    config = _write_config(tmp_path / "run.toml", images)
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "o"), "--set", "train.tensorboard=true"]) == 2
    assert "train.tensorboard" in capsys.readouterr().err


def test_checkpoint_is_not_pickle(tmp_path, images):
    config = _write_config(tmp_path / "run.toml", images)
    out = tmp_path / "out"
    assert main(["train", "--config", str(config), "--out", str(out), "--steps", "4"]) == 0
    tensors = load_file(str(out / CHECKPOINT))
    assert any(k.startswith("optim.") for k in tensors) and any(k.startswith("model.") for k in tensors)
    with pytest.raises(PffError, match="cannot read checkpoint"):
        (tmp_path / "bad").mkdir()
        (tmp_path / "bad" / CHECKPOINT).write_bytes(b"garbage")
        load_checkpoint_state(tmp_path / "bad" / CHECKPOINT)


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.toml")), ids=lambda p: p.name)
def test_shipped_configs_parse_and_build(path):
    from pff.train import load_config

    cfg = load_config(path)
    assert path.stem.startswith(cfg.task)
    model = build_model(cfg.model, 3 if cfg.channels == "rgb" else 1)
    restored, _ = model(torch.rand(1, 3 if cfg.channels == "rgb" else 1, 33, 35))
    s = cfg.model.upscale  # an SR model computing in low resolution returns an s times larger image
    assert restored.shape[-2:] == (33 * s, 35 * s)


def test_init_starts_a_colour_model_from_a_trained_luma_model(tmp_path, images, capsys):
    luma_out = tmp_path / "luma"
    assert main(["train", "--config", str(_write_config(tmp_path / "luma.toml", images)), "--out", str(luma_out)]) == 0
    colour = _write_config(
        tmp_path / "colour.toml", images,
        model='arch = "pff-tiny"\nkernel = 5\nconstraint = "none"\ncolor = "ycbcr"',
        **{"data.degrade": "gray = false\nquality = [10, 30]\nsubsampling = [\"4:2:0\", \"4:4:4\"]"},
    )  # fmt: skip
    text = colour.read_text().replace('channels = "y"', f'channels = "rgb"\ninit = "{luma_out}"')
    colour.write_text(text.replace("workers = 0", "workers = 0\ngray = 0.5"))
    out = tmp_path / "colour"
    # One step at a negligible learning rate: the saved weights are the transplanted start.
    assert main(["train", "--config", str(colour), "--out", str(out), "--set", "train.steps=1", "--set", "optim.lr=1e-12"]) == 0
    before, after = _weights(luma_out), _weights(out)
    n = before["predictor.out.weight"].shape[0]
    torch.testing.assert_close(after["basis"], before["basis"], rtol=0, atol=1e-9)
    torch.testing.assert_close(after["predictor.out.weight"][:n], before["predictor.out.weight"], rtol=0, atol=1e-9)
    assert after["predictor.out.weight"][n:].abs().max() < 1e-9  # chroma starts at the identity
    assert load(out)[1].model.color == "ycbcr"
    capsys.readouterr()
    assert main(["train", "--config", str(colour), "--out", str(tmp_path / "x"), "--set", "init='nope'"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pff: error: init: no model 'nope'") and err.count("\n") == 1
    assert not (tmp_path / "x").exists()
    assert main(["train", "--config", str(_write_config(tmp_path / "g.toml", images)), "--out", str(tmp_path / "y"),
                 "--set", "data.gray=0.5"]) == 2  # fmt: skip
    assert "data.gray: gray crops need channels = 'rgb'" in capsys.readouterr().err
