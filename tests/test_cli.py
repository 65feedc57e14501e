"""`lora-edu` on a tiny budget: finetune writes an adapter, generate uses it, info describes the model."""
import json
import subprocess
import sys

import pytest

from lora_edu.cli import main


def test_finetune_then_generate(tmp_path, capsys):
    out = tmp_path / "adapter"
    assert main(["finetune", "--task", "calendar", "--rank", "2", "--steps", "4", "--batch-size", "2",
                 "--block-size", "32", "--eval-every", "2", "--tokens", "20", "--quiet", "--out", str(out),
                 "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    for line in ("task: Corpus('calendar'", "LoRA r=2 on 16 matrices", "trainable params:",
                 "validation loss before:", "validation loss after:", "wrote the adapter to", "sample:"):
        assert line in text, line
    card = json.loads((out / "adapter.json").read_text())
    assert card["r"] == 2 and len(card["targets"]) == 16
    assert main(["generate", "--adapter", str(out), "--prompt", "March", "--tokens", "10"]) == 0
    assert capsys.readouterr().out.startswith("March")


def test_own_text_and_errors(tmp_path, capsys):
    f = tmp_path / "notes.txt"
    f.write_text("".join(f"note {i}: remember the milk\n" for i in range(100)))
    assert main(["finetune", "--text", str(f), "--steps", "2", "--batch-size", "2", "--block-size", "16",
                 "--tokens", "5", "--quiet", "--out", str(tmp_path / "a")]) == 0
    assert "task: Corpus('notes'" in capsys.readouterr().out
    assert main(["finetune", "--rank", "0", "--steps", "1", "--out", str(tmp_path / "b")]) == 2
    assert "r = 0 is out of range" in capsys.readouterr().err and not (tmp_path / "b").exists()
    assert main(["generate", "--adapter", str(tmp_path / "nothing")]) == 2
    assert "adapter folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["finetune", "--task", "poems", "--out", "x"])


def test_info_runs_as_a_console_script():
    run = subprocess.run([sys.executable, "-m", "lora_edu.cli", "info", "--device", "cpu"], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "shipped GPT: 3," in run.stdout and '"val_loss"' in run.stdout and "device 'auto' ->" in run.stdout
