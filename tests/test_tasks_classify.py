"""Tasks image_cls (digits, image folders) and text_cls (clothing reviews with the packaged MiniLM)."""

import json

import numpy as np
import pytest

from grec.base.errors import GrecError
from grec.tasks import TaskConfig, train_task


def test_digits_cnn_above_90_percent_with_a_confusion_matrix(tmp_path):
    state = train_task(
        TaskConfig(
            task="image_cls", data="digits", output_dir=str(tmp_path), num_epochs=4, batch_size=64, learning_rate=3e-3
        )
    )
    assert state["test"]["accuracy"] > 0.9  # ten classes: chance is 0.1
    assert (tmp_path / "confusion_matrix.png").stat().st_size > 1000
    assert json.loads((tmp_path / "best" / "task.json").read_text())["classes"] == [str(k) for k in range(10)]


def test_digits_vit_built_from_config_learns(tmp_path):
    state = train_task(
        TaskConfig(
            task="image_cls",
            model="vit",
            output_dir=str(tmp_path),
            num_epochs=8,
            batch_size=64,
            learning_rate=3e-3,
            lr_scheduler="cosine",
            warmup_ratio=0.05,
            model_args={"dim": 32, "layers": 2, "dropout": 0.0},
        )
    )
    assert state["test"]["accuracy"] > 0.5  # chance is 0.1; a ViT needs more data or epochs than the CNN


def test_image_folder_skips_or_refuses_undecodable_files(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    root = tmp_path / "shapes"
    for name, value in (("dark", 30), ("light", 220)):
        (root / name).mkdir(parents=True)
        for k in range(20):
            pixels = np.clip(rng.normal(value, 20, (12, 12)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{k}.png")
    (root / "dark" / "broken.png").write_bytes(b"not a png")
    state = train_task(
        TaskConfig(
            task="image_cls",
            data=str(root),
            output_dir=str(tmp_path / "run"),
            num_epochs=3,
            batch_size=8,
            learning_rate=3e-3,
            data_args={"image_size": 8},
        )
    )
    assert state["test"]["accuracy"] == 1.0  # dark against light
    with pytest.raises(GrecError, match="broken.png: cannot decode the image"):
        train_task(
            TaskConfig(
                task="image_cls", data=str(root), output_dir=str(tmp_path / "strict"), data_args={"strict": True}
            )
        )


@pytest.mark.slow
def test_reviews_text_classifier_with_minilm_lora(tmp_path):
    state = train_task(
        TaskConfig(
            task="text_cls",
            output_dir=str(tmp_path),
            num_epochs=1,
            batch_size=32,
            learning_rate=2e-3,
            eval_batch_size=128,
            model_args={"finetune": "lora", "lora_r": 8},
            data_args={"sample": 320, "max_len": 48, "split": [0.05, 0.01, 0.02]},
        )
    )
    test = state["test"]
    assert test["auc"] > 0.75  # 82% of reviews recommend: AUC is the meaningful figure, chance 0.5
    assert (tmp_path / "best" / "tokenizer.json").is_file()


def test_text_labels_outside_the_declared_classes_are_refused(tmp_path):
    data = tmp_path / "t.csv"
    data.write_text("text,label\ngood,pos\nbad,neg\nmeh,neutral\n")
    with pytest.raises(
        GrecError, match=r"t.csv:4: label 'neutral' is not one of the declared classes \['neg', 'pos'\]"
    ):
        train_task(
            TaskConfig(
                task="text_cls",
                data=str(data),
                output_dir=str(tmp_path / "r"),
                data_args={"text_columns": ["text"], "label_column": "label", "classes": ["neg", "pos"]},
            )
        )
