"""grec records on real ML-100K: seqrec in both styles and LC-Rec's auxiliary tasks."""

import json

import pytest

from grec.base.errors import GrecError
from grec.base.sid import SidMap
from grec.records import RecordsConfig, build_records, prompt


def test_sid_records_with_auxiliary_tasks(ml100k, ml100k_sid, tmp_path):
    out = tmp_path / "sid"
    counts = build_records(
        RecordsConfig(
            data=str(ml100k),
            sid=str(ml100k_sid),
            out=str(out),
            max_history=5,
            tasks=["seqrec", "item2index", "index2item"],
        )
    )
    assert counts == {"train": 97171 + 2 * 1682, "valid": 943, "test": 943}
    sid_map = SidMap.load(ml100k_sid)
    test = json.loads((out / "test.json").read_text())
    prepared = [json.loads(line) for line in (ml100k / "test.jsonl").read_text().splitlines()]
    first, row = test[0], prepared[0]
    assert first["output"] == sid_map.sid_string(row["target"]) and first["target"] == row["target"]
    # the prompt shows the last 5; the record keeps the whole history it was given (what ranking excludes)
    assert first["history"] == row["history"] and len(row["history"]) > 5 and first["split"] == row["split"]
    assert first["input"] == "The user has interacted with: " + ", ".join(
        sid_map.sid_string(i) for i in row["history"][-5:]
    )
    train = json.loads((out / "train.json").read_text())
    aux = [r for r in train if r["template"] == "index2item"]
    assert len(aux) == 1682 and aux[0]["input"] == sid_map.sid_string(aux[0]["target"])
    text = prompt(first)
    assert text.endswith("### Response:\n") and first["input"] in text and first["output"] not in text


def test_title_records_sampled(ml100k, tmp_path):
    out = tmp_path / "title"
    counts = build_records(RecordsConfig(data=str(ml100k), style="title", out=str(out), sample=500, seed=3))
    assert counts["train"] == 500
    train = json.loads((out / "train.json").read_text())
    titles = {
        json.loads(line)["item_id"]: json.loads(line)["title"]
        for line in (ml100k / "items.jsonl").read_text().splitlines()
    }
    assert all(r["output"] == f'"{titles[r["target"]]}"' for r in train)
    again = tmp_path / "again"
    build_records(RecordsConfig(data=str(ml100k), style="title", out=str(again), sample=500, seed=3))
    assert (again / "train.json").read_bytes() == (out / "train.json").read_bytes()


def test_records_need_the_sid_folder(ml100k):
    with pytest.raises(GrecError, match="--sid: required"):
        RecordsConfig(data=str(ml100k), style="sid")
    with pytest.raises(GrecError, match="unknown task 'rank'"):
        RecordsConfig(data=str(ml100k), style="title", tasks=["rank"])


def test_sequence_windows_cover_every_training_interaction_once(ml100k, ml100k_sid, tmp_path):
    from grec.base.sequences import sequence_chunks, user_training_sequences

    assert sequence_chunks(list("abcde"), 2) == [list("abc"), list("cde")]
    assert sequence_chunks(list("abcdef"), 2) == [list("ab"), list("bcd"), list("def")]
    assert sequence_chunks(["a"], 3) == []
    out = tmp_path / "seq"
    counts = build_records(
        RecordsConfig(
            data=str(ml100k), sid=str(ml100k_sid), out=str(out), prompt="plain", tasks=["sequence"], max_history=50
        )
    )
    train = json.loads((out / "train.json").read_text())
    sid_map = SidMap.load(ml100k_sid)
    whole = user_training_sequences(json.loads(line) for line in (ml100k / "train.jsonl").read_text().splitlines())
    # every window's response items are targets; over all windows each training target appears once
    targets = [item for r in train for item in [*r["history"][1:], r["target"]]]
    assert len(targets) == 97171 == sum(len(s) - 1 for s in whole.values())
    assert counts == {"train": len(train), "valid": 943, "test": 943}
    assert all(len(r["history"]) <= 50 for r in train) and max(len(r["history"]) for r in train) == 50
    first = train[0]
    assert first["input"] == sid_map.sid_string(first["history"][0]) and prompt(first) == first["input"]
    assert first["output"] == "".join(sid_map.sid_string(i) for i in [*first["history"][1:], first["target"]])
    # valid and test stay one next-item record per user, their prompts the history's SIDs back to back
    valid = json.loads((out / "valid.json").read_text())
    assert valid[0]["input"] == "".join(sid_map.sid_string(i) for i in valid[0]["history"])
    with pytest.raises(GrecError, match="--tasks sequence: needs --prompt plain"):
        RecordsConfig(data=str(ml100k), sid=str(ml100k_sid), tasks=["sequence"])


def test_a_sid_folder_built_from_another_catalog_is_refused(ml100k, ml100k_sid, tmp_path):
    import shutil

    other = tmp_path / "other"
    shutil.copytree(ml100k, other)
    lines = (other / "items.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    lines[0] = json.dumps({**first, "text": "Another catalog's item 1"})  # same ids, other items
    (other / "items.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(
        GrecError, match=r"rqkmeans: built from another catalog than .*other/items.jsonl \(fingerprint "
    ):
        build_records(RecordsConfig(data=str(other), sid=str(ml100k_sid), style="sid", out=str(tmp_path / "r")))
    assert not (tmp_path / "r").exists()


def test_item_text_shaped_like_a_token_never_becomes_one(ml100k, ml100k_sid, smol_tokenizer_dir, tmp_path):
    import shutil

    from transformers import AutoTokenizer

    from grec.base.sid import add_sid_tokens
    from grec.base.templates import item_text
    from grec.decoding.title_trie import title_outputs

    assert item_text("Heat <a_1> </s> <|im_start|> <pad> <3 a<b") == "Heat ‹a_1> ‹/s> ‹|im_start|> ‹pad> <3 a<b"
    data = tmp_path / "ml"
    shutil.copytree(ml100k, data)
    rows = [json.loads(line) for line in (data / "items.jsonl").read_text().splitlines()]
    target = json.loads((data / "test.jsonl").read_text().splitlines()[0])["target"]
    for row in rows:
        if row["item_id"] == target:
            row["title"] = "Heat <a_1></s>"
    (data / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    sid = tmp_path / "sid"
    shutil.copytree(ml100k_sid, sid)  # the catalog fingerprint covers item text, not the title changed here
    tokenizer = AutoTokenizer.from_pretrained(smol_tokenizer_dir)
    add_sid_tokens(tokenizer, SidMap.load(sid))
    specials = set(tokenizer.all_special_ids) | set(tokenizer.get_added_vocab().values())
    out = tmp_path / "r"
    build_records(
        RecordsConfig(data=str(data), sid=str(sid), style="sid", tasks=["item2index", "index2item"], out=str(out))
    )
    asked = [r for r in json.loads((out / "train.json").read_text()) if r["target"] == target]
    assert sorted(r["template"] for r in asked) == ["index2item", "item2index"]
    for record in asked:
        title = record["input"] if record["template"] == "item2index" else record["output"]
        assert title == "Heat ‹a_1>‹/s>"
        assert not set(tokenizer(title, add_special_tokens=False)["input_ids"]) & specials
    titled = tmp_path / "t"
    build_records(RecordsConfig(data=str(data), style="title", out=str(titled)))
    (record,) = [r for r in json.loads((titled / "test.json").read_text()) if r["target"] == target][:1]
    assert record["output"] == '"Heat ‹a_1>‹/s>"'
    catalog = {r["item_id"]: r["title"] for r in rows}
    trie_path = title_outputs(tokenizer, {target: catalog[target]})[0]  # the trie spells it as training does
    assert trie_path == tokenizer(record["output"], add_special_tokens=False)["input_ids"]


def test_chat_records_read_in_the_models_chat_template(ml100k, smol_tokenizer_dir, t5_tokenizer_dir, tmp_path):
    """--prompt chat: one user turn in SmolLM2's own template, ending where the answer starts; the training
    data path and the inference path cut it to the same token ids; a tokenizer without a template reads alpaca."""
    from transformers import AutoTokenizer

    from grec.decoding.ranker import prompt_batch
    from grec.train.data import tokenize_records

    build_records(
        RecordsConfig(data=str(ml100k), style="title", prompt="chat", out=str(tmp_path / "chat"), max_history=30)
    )
    record = json.loads((tmp_path / "chat" / "test.json").read_text())[0]
    smol = AutoTokenizer.from_pretrained(smol_tokenizer_dir)
    text = prompt(record, smol)
    assert record["prompt"] == "chat" and text.startswith("<|im_start|>system\n")
    assert f"<|im_start|>user\n{record['instruction']}\n\n{record['input']}<|im_end|>\n" in text
    assert text.endswith("<|im_start|>assistant\n")
    assert prompt(record, AutoTokenizer.from_pretrained(t5_tokenizer_dir)) == prompt(
        {k: v for k, v in record.items() if k != "prompt"}
    )  # no chat template: the alpaca prompt
    (train_ids,), _ = tokenize_records([record], smol, False, cutoff_len=96)
    response = len(smol(record["output"], add_special_tokens=False)["input_ids"]) + 1
    ids, _ = prompt_batch([record], smol, 96, False, "cpu", response)
    assert len(train_ids["input_ids"]) == 96  # a history longer than the limit: cut the same way on both paths
    assert ids[0].tolist() == train_ids["input_ids"][:-response] and len(ids[0]) == 96 - response


def test_lcrec_alignment_tasks_spell_each_item_both_ways(ml100k, ml100k_sid, tmp_path):
    """desc2index (item search from the text without the title), titles2index and index2title (a history in
    one spelling, the next item in the other): 97,171 + 97,171 + 1,682 records, 400 of them sampled here."""
    from grec.base.templates import quote

    out = tmp_path / "align"
    tasks = ["desc2index", "titles2index", "index2title"]
    config = RecordsConfig(data=str(ml100k), sid=str(ml100k_sid), out=str(out), max_history=5, tasks=tasks, sample=400)
    assert build_records(config) == {"train": 400, "valid": 0, "test": 0}  # no seqrec: train only
    sid_map = SidMap.load(ml100k_sid)
    items = {r["item_id"]: r for r in map(json.loads, (ml100k / "items.jsonl").read_text().splitlines())}
    train = json.loads((out / "train.json").read_text())
    assert sorted({r["template"] for r in train}) == sorted(tasks)
    # about 1,682 / 196,024 of 400 draws are items: the two per-interaction tasks make up the rest
    assert sum(r["template"] == "desc2index" for r in train) < 20
    windows = {(r["user_id"], r["target"]) for r in map(json.loads, (ml100k / "train.jsonl").read_text().splitlines())}
    for record in train:
        target, shown = record["target"], record["history"][-5:]
        if record["template"] == "desc2index":
            assert record["output"] == sid_map.sid_string(target) and record["history"] == []
            assert record["input"] == items[target]["text"].removeprefix(items[target]["title"] + ". ")
            assert record["input"].startswith("Genres: ")
            continue
        assert (record["user_id"], target) in windows  # a training interaction
        if record["template"] == "titles2index":
            spelt, answer = [quote(items[i]["title"]) for i in shown], sid_map.sid_string(target)
        else:
            spelt, answer = [sid_map.sid_string(i) for i in shown], items[target]["title"]
        assert record["input"] == "The user has interacted with: " + ", ".join(spelt) and record["output"] == answer
