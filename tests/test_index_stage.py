"""grec index on real ML-100K with the packaged MiniLM encoder, incremental update, bad input."""

import json

import numpy as np
import pytest
from helpers import leftovers, read_jsonl

from grec.base.errors import GrecError
from grec.base.sid import SidMap
from grec.index import IndexConfig, build_index


def test_default_index_of_ml100k_is_one_to_one(ml100k, ml100k_sid):
    report = json.loads((ml100k_sid / "report.json").read_text())
    x = np.load(ml100k_sid / "embeddings.npy")
    assert x.shape == (1682, 384) and x.dtype == np.float32
    assert np.allclose(np.linalg.norm(x, axis=1), 1, atol=1e-5)
    codes = np.load(ml100k_sid / "sid_codes.npy")
    assert codes.shape == (1682, 4)  # 3 levels + the dedup level
    assert len({tuple(r) for r in codes.tolist()}) == 1682
    assert report["collisions_after"] == {"collision_rate": 0.0, "items_in_collisions": 0, "max_items_per_sid": 1}
    assert report["collisions_before"]["collision_rate"] > 0
    assert report["per_level"][3]["codebook_size"] == report["collisions_before"]["max_items_per_sid"]
    for level in report["per_level"][:3]:
        assert level["codebook_size"] == 256 and level["codes_used"] == 256 and level["utilisation"] == 1.0
        assert 0 < level["entropy_normalised"] <= 1
    assert report["per_level"][0]["entropy_normalised"] > 0.85
    assert 0 < report["relative_reconstruction_error"] < 0.5
    sid_map = SidMap.load(ml100k_sid)
    ids = json.loads((ml100k_sid / "item_ids.json").read_text())
    assert sid_map.item_ids == ids == [r["item_id"] for r in read_jsonl(ml100k / "items.jsonl")]
    first = sid_map.tokens_of(ids[0])
    assert first == [f"<{c}_{v}>" for c, v in zip("abcd", codes[0].tolist())]
    assert sid_map.item_of_tokens(first) == ids[0]


def test_same_seed_same_map_and_skip(ml100k, ml100k_sid, tmp_path):
    out = tmp_path / "again"
    emb = str(ml100k_sid / "embeddings.npy")
    build_index(IndexConfig(data=str(ml100k), out=str(out), embeddings=emb))
    assert np.array_equal(np.load(out / "sid_codes.npy"), np.load(ml100k_sid / "sid_codes.npy"))
    other = tmp_path / "seed7"
    build_index(IndexConfig(data=str(ml100k), out=str(other), embeddings=emb, seed=7))
    assert not np.array_equal(np.load(other / "sid_codes.npy"), np.load(out / "sid_codes.npy"))
    with pytest.raises(GrecError, match="different settings"):
        build_index(IndexConfig(data=str(ml100k), out=str(out), embeddings=emb, levels=2))


@pytest.mark.parametrize(
    "settings",
    [
        {"method": "rqkmeans", "balanced": True},
        {"method": "rqkmeans", "dedup": "sinkhorn"},
        {"method": "rqvae", "rqvae_epochs": 100, "dedup": "sinkhorn"},
        {"method": "random", "dedup": "sinkhorn"},
        {"method": "sequential", "codebook_size": 16},
    ],
)
def test_every_method_is_one_to_one_on_ml100k(ml100k, ml100k_sid, tmp_path, settings):
    out = tmp_path / "m"
    report = build_index(
        IndexConfig(data=str(ml100k), out=str(out), embeddings=str(ml100k_sid / "embeddings.npy"), **settings)
    )
    codes = np.load(out / "sid_codes.npy")
    assert len({tuple(r) for r in codes.tolist()}) == 1682
    assert report["collisions_after"]["collision_rate"] == 0.0
    assert len(SidMap.load(out)) == 1682
    assert (out / "index.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # usage, items per code, collisions
    if settings.get("balanced"):
        assert report["per_level"][0]["max_items_per_code"] <= 7  # ceil(1682 / 256)
        assert report["collisions_before"]["collision_rate"] < 0.05
    if settings["method"] == "rqvae":
        assert all(level["utilisation"] > 0.9 for level in report["per_level"])


def write_items(folder, records):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return folder


@pytest.mark.parametrize(
    "settings",
    [{"dedup": "level"}, {"dedup": "sinkhorn"}, {"method": "random"}, {"method": "rqvae", "rqvae_epochs": 10}],
)
def test_update_keeps_existing_codes(ml100k, ml100k_sid, tmp_path, settings):
    items = read_jsonl(ml100k / "items.jsonl")
    x = np.load(ml100k_sid / "embeddings.npy")
    np.save(tmp_path / "old.npy", x[:1500])
    np.save(tmp_path / "all.npy", x)
    old = write_items(tmp_path / "old", items[:1500])
    new = write_items(tmp_path / "new", items)
    out = tmp_path / "sid"
    build_index(IndexConfig(data=str(old), out=str(out), embeddings=str(tmp_path / "old.npy"), **settings))
    before = np.load(out / "sid_codes.npy")
    report = build_index(IndexConfig(data=str(new), out=str(out), embeddings=str(tmp_path / "all.npy"), update=True))
    after = np.load(out / "sid_codes.npy")
    assert np.array_equal(after[:1500], before)
    assert len({tuple(r) for r in after.tolist()}) == 1682
    assert report["updates"][-1]["added_items"] == 182 and report["items"] == 1682
    assert json.loads((out / "item_ids.json").read_text()) == [r["item_id"] for r in items]


def test_bad_input(ml100k, ml100k_sid, tmp_path, grec_cli):
    empty = write_items(tmp_path / "empty", [])
    with pytest.raises(GrecError, match="no items"):
        build_index(IndexConfig(data=str(empty), out=str(tmp_path / "o1"), method="sequential"))
    with pytest.raises(GrecError, match="items.jsonl: file not found"):
        IndexConfig(data=str(tmp_path / "nowhere"))
    short = tmp_path / "short.npy"
    np.save(short, np.zeros((10, 4), dtype=np.float32))
    with pytest.raises(GrecError, match="10 rows but 1682 items"):
        build_index(IndexConfig(data=str(ml100k), out=str(tmp_path / "o2"), embeddings=str(short)))
    for name, array in (("flat", np.zeros(1682, dtype=np.float32)), ("text", np.array([["a"]] * 1682))):
        np.save(tmp_path / f"{name}.npy", array)
    np.save(tmp_path / "objects.npy", np.array([[{"a": 1}]] * 1682, dtype=object), allow_pickle=True)
    (tmp_path / "cut.npy").write_bytes((tmp_path / "flat.npy").read_bytes()[:100])
    for name, message in (
        ("flat", "flat.npy: a 1-D array of shape \\(1682,\\); expected items x dimensions"),
        ("text", "text.npy: holds <U1 values; expected numbers"),
        ("objects", "objects.npy: not a whole .npy array of numbers"),
        ("cut", "cut.npy: not a whole .npy array of numbers"),
    ):
        with pytest.raises(GrecError, match=message):
            build_index(
                IndexConfig(data=str(ml100k), out=str(tmp_path / "o2"), embeddings=str(tmp_path / f"{name}.npy"))
            )
    bad = np.load(ml100k_sid / "embeddings.npy")
    bad[17, 3] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(GrecError, match="row 17 holds NaN or inf"):
        build_index(IndexConfig(data=str(ml100k), out=str(tmp_path / "o3"), embeddings=str(tmp_path / "nan.npy")))
    with pytest.raises(GrecError, match="--codebook_size: must be at least 2"):
        IndexConfig(data=str(ml100k), codebook_size=1)
    with pytest.raises(GrecError, match="--levels: must be at least 1"):
        IndexConfig(data=str(ml100k), levels=0)
    with pytest.raises(GrecError, match="1682 items do not fit in 4\\^2 = 16 semantic IDs"):
        build_index(
            IndexConfig(data=str(ml100k), out=str(tmp_path / "o4"), method="sequential", levels=2, codebook_size=4)
        )
    for name in ("o1", "o2", "o3", "o4"):
        assert not (tmp_path / name).exists()
    assert leftovers(tmp_path) == []
    code, _, err = grec_cli("index", "--data", ml100k, "--out", tmp_path / "o5", "--embeddings", short)
    assert code == 1 and "short.npy: 10 rows but 1682 items" in err


def test_sid_map_mismatch_is_refused(ml100k_sid, tmp_path):
    sid_map = SidMap.load(ml100k_sid)
    other = SidMap(sid_map.item_ids, sid_map.codes[::-1].copy())
    with pytest.raises(GrecError, match="differs from the one the checkpoint was trained with"):
        sid_map.check_same(other, "ckpt/")
    sid_map.check_same(SidMap.load(sid_map.save(tmp_path)), "ckpt/")


def test_sequential_ids_need_no_encoder(ml100k, tmp_path):
    out = tmp_path / "seq"
    report = build_index(IndexConfig(data=str(ml100k), out=str(out), method="sequential", codebook_size=16))
    assert report["embedding_dim"] is None and not (out / "embeddings.npy").exists()
    assert report["collisions_before"]["collision_rate"] == 0.0
    assert SidMap.load(out).codes_of("1") == (0, 0, 0, 0) and SidMap.load(out).codes_of("17") == (0, 1, 0, 0)
    again = build_index(IndexConfig(data=str(ml100k), out=str(out), method="sequential", codebook_size=16))
    assert again == report  # same settings: nothing redone


def test_sequential_update_numbers_new_items_after_the_old(ml100k, tmp_path):
    items = read_jsonl(ml100k / "items.jsonl")
    old = write_items(tmp_path / "old", items[:100])
    out = tmp_path / "sid"
    build_index(IndexConfig(data=str(old), out=str(out), method="sequential", codebook_size=16, dedup="sinkhorn"))
    report = build_index(IndexConfig(data=str(ml100k), out=str(out), update=True))
    sid_map = SidMap.load(out)
    assert report["updates"][-1]["added_items"] == 1582 and not (out / "embeddings.npy").exists()
    assert sid_map.codes_of(items[99]["item_id"]) == (0, 6, 3) and sid_map.codes_of(items[100]["item_id"]) == (0, 6, 4)


def test_training_sequences_are_rebuilt_whole_from_cut_histories(ml100k, tmp_path):
    from grec.index.collab import training_sequences

    # prepare cuts histories to --max_history (2 here); the chained records still give the whole sequence
    lines = [
        {"user_id": "u", "history": ["a"], "target": "b"},
        {"user_id": "u", "history": ["a", "b"], "target": "c"},
        {"user_id": "u", "history": ["b", "c"], "target": "d"},
        {"user_id": "v", "history": ["x"], "target": "y"},
        {"user_id": "u", "history": ["c", "d"], "target": "e"},
        {"user_id": "w", "history": ["p"], "target": "q"},
        {"user_id": "w", "history": ["r", "s"], "target": "t"},
    ]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    # w's records do not chain (another tool's file): its longest history + target is kept
    assert training_sequences(tmp_path) == [["a", "b", "c", "d", "e"], ["x", "y"], ["r", "s", "t"]]
    # ML-100K's train.jsonl: every training interaction of every user (97,171 targets + 943 first items)
    sequences = training_sequences(ml100k)
    assert len(sequences) == 943 and sum(map(len, sequences)) == 97171 + 943


def test_cooccurrence_vectors_put_items_consumed_together_close(tmp_path):
    from grec.index.collab import cooccurrence_embeddings

    lines = []
    for user in range(40):  # users watch within one of two groups, in varying orders
        group = ["a", "b", "c", "d"] if user % 2 else ["w", "x", "y", "z"]
        order = [group[(user + k) % 4] for k in range(4)]
        lines += [{"user_id": str(user), "history": order[:k], "target": order[k]} for k in range(1, 4)]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    items = ["a", "b", "c", "d", "w", "x", "y", "z", "never"]
    x = cooccurrence_embeddings(tmp_path, items, dim=2)  # the two strongest directions: the two groups
    assert x.shape == (9, 2) and np.allclose(np.linalg.norm(x[:8], axis=1), 1, atol=1e-5)
    assert not x[8].any()  # an item nobody consumed gets no collaborative direction
    cos = x @ x.T
    assert cos[0, 1] > 0.9 and cos[4, 5] > 0.9 and cos[0, 4] < 0.1


def test_collaborative_mix_doubles_how_often_the_next_item_shares_a_code(ml100k, ml100k_sid, tmp_path):
    settings = dict(data=str(ml100k), embeddings=str(ml100k_sid / "embeddings.npy"), codebook_size=64, balanced=True)
    text = build_index(IndexConfig(out=str(tmp_path / "text"), **settings))
    mixed = build_index(IndexConfig(out=str(tmp_path / "mixed"), collab_weight=0.5, **settings))
    a, b = text["sequence_agreement"], mixed["sequence_agreement"]
    assert a["pairs"] == b["pairs"] == 943
    assert a["prefix1_next_item"] > 2 * a["prefix1_chance"]  # text codes already group related movies
    assert b["prefix1_next_item"] > 2 * a["prefix1_next_item"]  # measured 17.8% against 6.6%
    assert mixed["embedding_dim"] == 384 + 64 and mixed["collisions_after"]["collision_rate"] == 0
    from grec.index.collab import training_sequences

    consumed = {item for sequence in training_sequences(ml100k) for item in sequence}
    items = json.loads((tmp_path / "mixed" / "item_ids.json").read_text())
    norms = np.linalg.norm(np.load(tmp_path / "mixed" / "embeddings.npy"), axis=1)
    expected = np.array([1.0 if item in consumed else np.sqrt(0.5) for item in items])
    # items no user consumed in training (4 of 1,682 here) keep only their text part
    assert np.allclose(norms, expected, atol=1e-4) and (expected < 1).sum() == 4
    with pytest.raises(GrecError, match="--collab_weight: between 0"):
        IndexConfig(collab_weight=1.5, **settings)


def test_a_plugin_quantizer_is_chosen_by_name(ml100k, ml100k_sid, tmp_path):
    """A user's quantizer registered from a --plugin file indexes the catalog like the built-in ones."""
    plugin = tmp_path / "sign_codes.py"
    plugin.write_text(
        "import numpy as np\n"
        "from grec.base.registry import QUANTIZERS\n"
        "from grec.quantizers import SequentialCodes\n\n"
        "@QUANTIZERS.register('sign')\n"
        "class SignCodes(SequentialCodes):\n"
        "    uses_embeddings = True\n"
        "    def encode(self, x):\n"
        "        return (x[:, : self.levels] > 0).astype(np.int64), None\n"
    )
    out = tmp_path / "sign"
    settings = dict(data=str(ml100k), out=str(out), method="sign", levels=3, codebook_size=2, dedup="level")
    report = build_index(IndexConfig(**settings, embeddings=str(ml100k_sid / "embeddings.npy"), plugin=[str(plugin)]))
    codes = np.load(out / "sid_codes.npy")
    x = np.load(ml100k_sid / "embeddings.npy")
    assert report["method"] == "sign" and report["collisions_after"]["items_in_collisions"] == 0
    assert np.array_equal(codes[:, :3], (x[:, :3] > 0).astype(np.int64))  # the plugin's codes, then the dedup level
    with pytest.raises(GrecError, match="unknown method 'nope'; choose one of .*rqkmeans"):
        IndexConfig(**{**settings, "method": "nope"})


def test_a_codebook_larger_than_the_catalog_warns_and_still_indexes(tmp_path, caplog):
    items = write_items(
        tmp_path / "small", [{"item_id": str(k), "title": f"t{k}", "text": f"text {k}"} for k in range(40)]
    )
    np.save(tmp_path / "e.npy", np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32))
    report = build_index(
        IndexConfig(data=str(items), out=str(tmp_path / "sid"), embeddings=str(tmp_path / "e.npy"), codebook_size=64)
    )
    assert report["items"] == 40 and report["collisions_after"]["collision_rate"] == 0.0
    assert "--codebook_size 64 is more than the 40 items" in caplog.text and "a codebook near 6" in caplog.text


def test_sid_maps_round_trip_through_lcrec_and_minionerec_files(ml100k, ml100k_sid, tmp_path):
    import shutil

    shutil.copytree(ml100k_sid, tmp_path / "sid")
    original = SidMap.load(ml100k_sid)
    for layout in ("lcrec", "minionerec"):
        build_index(
            IndexConfig(data=str(ml100k), out=str(tmp_path / "sid"), export_format=layout)
        )  # built: export only
        exported = tmp_path / "sid" / layout / "ml-100k.index.json"
        index = json.loads(exported.read_text())
        assert index["0"] == original.tokens_of(original.item_ids[0]) and len(index) == 1682
        report = build_index(IndexConfig(data=str(ml100k), out=str(tmp_path / layout), import_file=str(exported)))
        back = SidMap.load(tmp_path / layout)
        assert back.item_ids == original.item_ids and (back.codes == original.codes).all()
        assert report["collisions_before"]["collision_rate"] == 0.0 and report["sid_length"] == 4
    info = (tmp_path / "sid" / "minionerec" / "ml-100k.info.txt").read_text().splitlines()
    assert info[0] == f"{original.sid_string(original.item_ids[0])}\tToy Story (1995)\t0"
    # MiniOneRec's own maps may give two items one ID: a last code tells them apart
    index["1"] = index["0"]
    (tmp_path / "clash.index.json").write_text(json.dumps(index))
    shutil.copy(tmp_path / "sid" / "lcrec" / "ml-100k.item.json", tmp_path / "clash.item.json")
    report = build_index(
        IndexConfig(data=str(ml100k), out=str(tmp_path / "clash"), import_file=str(tmp_path / "clash.index.json"))
    )
    assert report["collisions_before"]["items_in_collisions"] == 2 and report["sid_length"] == 5
    assert len(SidMap.load(tmp_path / "clash")) == 1682
    index["0"] = ["<a_1>", "<c_2>"]
    (tmp_path / "bad.index.json").write_text(json.dumps(index))
    with pytest.raises(GrecError, match="token '<c_2>' is not <b_N>, level 2"):
        build_index(
            IndexConfig(data=str(ml100k), out=str(tmp_path / "bad"), import_file=str(tmp_path / "bad.index.json"))
        )
