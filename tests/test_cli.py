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
    assert "--rank = 0 is out of range" in capsys.readouterr().err and not (tmp_path / "b").exists()
    assert main(["generate", "--adapter", str(tmp_path / "nothing")]) == 2
    assert "adapter folder" in capsys.readouterr().err
    assert main(["finetune", "--task", "poems", "--out", "x"]) == 2             # argparse's error, not SystemExit
    assert main(["finetune", "--help"]) == 0


def test_info_runs_as_a_console_script():
    run = subprocess.run([sys.executable, "-m", "lora_edu.cli", "info", "--device", "cpu"], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "shipped GPT: 3," in run.stdout and '"val_loss"' in run.stdout and "device 'auto' ->" in run.stdout


@pytest.mark.parametrize("argv, said", [
    (["finetune", "--out", "{file}"], "lora-edu finetune: error: --out must be a folder for the adapter"),
    (["finetune", "--steps", "0", "--out", "{dir}"], "lora-edu finetune: error: --steps = 0 is out of range"),
    (["finetune", "--lr", "nan", "--out", "{dir}"], "lora-edu finetune: error: --lr must be finite"),
    (["finetune", "--block-size", "1000", "--out", "{dir}"], "--block-size = 1000 is out of range"),
    (["finetune", "--text", "{dir}/none.txt", "--out", "{dir}"], "--text: no text file at"),
    (["finetune", "--task", "poems", "--out", "{dir}"], "lora-edu finetune: error: argument --task: invalid choice"),
    (["finetune"], "lora-edu finetune: error: the following arguments are required: --out"),
    (["finetune", "--rank", "eight", "--out", "{dir}"], "argument --rank: invalid int value: 'eight'"),
    (["generate", "--adapter", "{file}"], "lora-edu generate: error:"),
    (["generate", "--adapter", "{adapter}"], "'h.0.c_attn' is not an nn.Linear in this model"),
    (["generate", "--tokens", "-1"], "lora-edu generate: error: max_new_tokens"),
    (["info", "--device", "tpu"], "lora-edu info: error: unknown device 'tpu'"),
    (["frobnicate"], "lora-edu: error: argument cmd: invalid choice: 'frobnicate'"),
    ([], "lora-edu: error: the following arguments are required: cmd"),
    (["grade", "{dir}/none.ipynb"], "lora-edu grade: error: no such file or folder"),
    (["pretrain", "--steps", "x"], "lora-edu pretrain: error: argument --steps: invalid int value: 'x'"),
    (["pretrain", "--steps", "-1"], "lora-edu pretrain: error: --steps = -1 is out of range"),
    (["grade", "--jobs", "x"], "lora-edu grade: error: argument --jobs: invalid int value: 'x'"),
    (["grade"], "lora-edu grade: error: the following arguments are required"),
    (["finetune", "--rank", "300", "--out", "{dir}"], "lora-edu finetune: error: --rank = 300 is out of range"),
    (["finetune", "--out", ""], "lora-edu finetune: error: argument --out: must name a folder"),
    (["pretrain", "--out", "{file}/m"], "lora-edu pretrain: error: --out: cannot make the folder"),
    (["pretrain", "--out", "."], "lora-edu pretrain: error: --out must name the model's files"),
])
def test_every_user_error_is_one_line_and_status_2(argv, said, tmp_path, capsys):
    from lora_edu.lora import apply_lora, save_adapter
    from test_lora import Tiny
    (tmp_path / "file").write_text("x")
    model = Tiny()
    apply_lora(model, "c_attn", r=2)
    adapter = save_adapter(model, tmp_path / "ad")
    (adapter / "adapter.1.safetensors").write_bytes(b"broken")
    argv = [a.format(file=tmp_path / "file", dir=tmp_path, adapter=adapter) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert said in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
