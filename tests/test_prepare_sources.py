"""Each reader on small files written here in the real formats."""

import gzip
import json

import pytest
from helpers import read_jsonl

from grec.base.errors import GrecError
from grec.prepare import PrepareConfig, prepare
from grec.prepare.readers.movielens import read_grouplens


def write_lines(path, lines, compress=False):
    text = "".join(line + "\n" for line in lines)
    if compress:
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def lines(path):
    """A split file's lines without their ``split`` tag (tests/test_prepare_temporal.py checks the tags)."""
    rows = read_jsonl(path)
    assert all(r["split"].startswith("loo:") for r in rows if path.stem != "train")
    return [{k: v for k, v in r.items() if k != "split"} for r in rows]


def splits(out):
    return {name: lines(out / f"{name}.jsonl") for name in ("train", "valid", "test")}


def test_grouplens_reader_decodes_latin1_and_keeps_file_order_for_ties(tmp_path):
    folder = tmp_path / "ml"
    folder.mkdir()
    flags = "|".join(["0"] * 19)
    drama = "|".join(["0"] * 8 + ["1"] + ["0"] * 10)
    (folder / "u.item").write_bytes(
        "\n".join(
            [
                f"1|Misérables, Les (1995)|01-Jan-1995||http://x/1|{drama}",
                f"2|Two (1996)|01-Jan-1996||http://x/2|{flags}",
                f"3|Three (1997)|||http://x/3|{flags}",
            ]
        ).encode("latin-1")
    )
    # user 7: items 3 and 1 share a timestamp; file order (3 before 1) breaks the tie
    (folder / "u.data").write_text("7\t2\t5\t100\n7\t3\t4\t200\n7\t1\t3\t200\n8\t1\t2\t50\n")
    log = read_grouplens(folder)
    assert log.catalog["1"]["title"] == "Misérables, Les (1995)"
    assert log.catalog["1"]["genres"] == ["Drama"]
    assert log.catalog["3"]["text"] == "Three (1997). Genres: ."
    out = tmp_path / "out"
    prepare(PrepareConfig(dataset="ml-100k", source=str(folder), out=str(out)))
    got = splits(out)
    assert got["test"] == [{"user_id": "7", "history": ["2", "3"], "target": "1"}]
    assert got["valid"] == [{"user_id": "7", "history": ["2"], "target": "3"}]
    assert got["train"] == []
    stats = json.loads((out / "stats.json").read_text())
    assert stats["removed"]["kcore_users"] == 1  # user 8 has one interaction


def amazon_2018_reviews(tmp_path):
    rows = []
    # users u1..u5 each review items A..E at times t = 10*k + (position); item F reviewed once
    for u in range(1, 6):
        for k, item in enumerate("ABCDE"):
            rows.append({"reviewerID": f"u{u}", "asin": item, "unixReviewTime": 1000 * u + 10 * k, "overall": 5.0})
    rows.append({"reviewerID": "u1", "asin": "F", "unixReviewTime": 5, "overall": 1.0})
    rows.append({"reviewerID": "u9", "asin": "A", "unixReviewTime": 7, "overall": 1.0})
    return write_lines(tmp_path / "Beauty_5.json.gz", [json.dumps(r) for r in rows], compress=True)


def test_amazon_2018_five_core_and_metadata(tmp_path):
    reviews = amazon_2018_reviews(tmp_path)
    meta_rows = [
        {
            "asin": "A",
            "title": "Lip &amp; Cheek Tint",
            "brand": "Acme",
            "category": ["Beauty", "Makeup", "Lips"],
            "description": ["Long lasting.", "Vegan."],
            "imageURL": ["http://img"],
        },
        {"asin": "B", "title": "Brush", "category": ["Beauty", "Tools"]},
        {"asin": "C", "title": "Comb"},
        {"asin": "D", "title": "Dryer"},
        {"asin": "E", "title": "Eyeliner"},
        {"asin": "F", "title": "Foundation"},
        {"asin": "Z", "title": "Never reviewed"},
    ]
    meta = write_lines(tmp_path / "meta_Beauty.json.gz", [json.dumps(r) for r in meta_rows], compress=True)
    out = tmp_path / "beauty"
    stats = prepare(PrepareConfig(dataset="amazon", reviews=str(reviews), meta=str(meta), out=str(out)))
    # 5-core: F (1 review) and u9 (1 review) go; everything else has exactly 5
    assert (stats["users"], stats["items"], stats["interactions"]) == (5, 5, 25)
    assert stats["removed"]["kcore_interactions"] == 2
    items = {r["item_id"]: r for r in read_jsonl(out / "items.jsonl")}
    assert sorted(items) == ["A", "B", "C", "D", "E"]
    assert items["A"]["title"] == "Lip & Cheek Tint"
    assert items["A"]["text"] == (
        "Lip & Cheek Tint. Brand: Acme. Categories: Beauty > Makeup > Lips. Description: Long lasting. Vegan."
    )
    assert items["A"]["category"] == ["Beauty", "Makeup", "Lips"] and "imageURL" not in items["A"]
    got = splits(out)
    assert got["test"][0] == {"user_id": "u1", "history": ["A", "B", "C", "D"], "target": "E"}
    assert [r["target"] for r in got["train"] if r["user_id"] == "u1"] == ["B", "C"]


def test_amazon_kcore_is_iterative(tmp_path):
    # Round 1 drops item C (2 reviews < 3), leaving u1 and u2 with 2 interactions; round 2 drops
    # them, leaving B with 1; round 3 drops B, leaving u3 with 2; round 4 drops u3.
    rows = [
        ("u1", "A", 1),
        ("u1", "B", 2),
        ("u1", "C", 3),
        ("u2", "A", 1),
        ("u2", "B", 2),
        ("u2", "C", 3),
        ("u3", "A", 1),
        ("u3", "B", 2),
        ("u3", "D", 3),
        ("u4", "A", 1),
        ("u4", "D", 2),
        ("u4", "E", 3),
        ("u5", "D", 1),
        ("u5", "E", 2),
        ("u5", "A", 3),
        ("u6", "E", 1),
        ("u6", "D", 2),
        ("u6", "A", 3),
    ]
    reviews = write_lines(
        tmp_path / "r.jsonl", [json.dumps({"reviewerID": u, "asin": i, "unixReviewTime": t}) for u, i, t in rows]
    )
    meta = write_lines(tmp_path / "m.jsonl", [json.dumps({"asin": i, "title": f"item {i}"}) for i in "ABCDE"])
    out = tmp_path / "k"
    stats = prepare(
        PrepareConfig(
            dataset="amazon", reviews=str(reviews), meta=str(meta), out=str(out), min_user_inter=3, min_item_inter=3
        )
    )
    assert sorted(r["user_id"] for r in read_jsonl(out / "test.jsonl")) == ["u4", "u5", "u6"]
    assert sorted(r["item_id"] for r in read_jsonl(out / "items.jsonl")) == ["A", "D", "E"]
    assert stats["kcore_rounds"] == 4
    assert (stats["removed"]["kcore_users"], stats["removed"]["kcore_items"]) == (3, 2)


def test_amazon_2014_meta_literals_and_missing_titles(tmp_path):
    reviews = amazon_2018_reviews(tmp_path)
    meta_lines = [
        "{'asin': 'A', 'title': 'Alpha', 'categories': [['Beauty', 'Skin Care'], ['Gifts']]}",
        "{'asin': 'B', 'title': 'Bravo', 'description': 'Soft bristles.'}",
        "{'asin': 'C', 'title': 'Charlie', 'salesRank': {'Beauty': 12}}",
        "{'asin': 'D', 'title': 'Delta'}",
        "{'asin': 'E', 'price': 3.5}",
        "{'asin': 'E', 'title': 'Echo, the duplicate'}",
    ]
    meta = write_lines(tmp_path / "meta_Beauty.json", meta_lines)
    out = tmp_path / "b14"
    stats = prepare(
        PrepareConfig(
            dataset="amazon", reviews=str(reviews), meta=str(meta), out=str(out), min_user_inter=3, min_item_inter=1
        )
    )
    items = {r["item_id"]: r for r in read_jsonl(out / "items.jsonl")}
    assert items["A"]["text"] == "Alpha. Categories: Beauty > Skin Care"
    assert items["B"]["text"] == "Bravo. Description: Soft bristles."
    assert "E" not in items
    assert stats["removed"]["items_without_title"] == 1
    assert stats["removed"]["duplicate_item_metadata"] == 1
    # E (no title) for 5 users and F (no metadata at all) for u1 lose their interactions
    assert stats["removed"]["interactions_without_item_metadata"] == 6
    # u9's single review of A goes to k-core; u1..u5 keep A..D
    assert stats["interactions"] == 5 * 4
    assert stats["users"] == 5 and stats["removed"]["kcore_users"] == 1


def test_amazon_2023_jsonl_with_millisecond_times(tmp_path):
    rows = []
    for u in range(3):
        for k, item in enumerate(["P1", "P2", "P3", "P4"][u:] + ["P1", "P2", "P3", "P4"][:u]):
            rows.append(
                {
                    "rating": 4.0,
                    "title": "Great",
                    "text": "...",
                    "asin": f"C{item}",
                    "parent_asin": item,
                    "user_id": f"AG{u}",
                    "timestamp": 1588000000000 + 1000 * k,
                    "verified_purchase": True,
                }
            )
    reviews = write_lines(tmp_path / "All_Beauty.jsonl", [json.dumps(r) for r in rows])
    meta_rows = [
        {
            "main_category": "All Beauty",
            "title": f"Product {p}",
            "store": "Shop",
            "categories": [],
            "features": ["small"],
            "description": [],
            "parent_asin": p,
            "images": [],
        }
        for p in ["P1", "P2", "P3", "P4"]
    ]
    meta = write_lines(tmp_path / "meta_All_Beauty.jsonl.gz", [json.dumps(r) for r in meta_rows], compress=True)
    out = tmp_path / "b23"
    stats = prepare(
        PrepareConfig(
            dataset="amazon", reviews=str(reviews), meta=str(meta), out=str(out), min_user_inter=3, min_item_inter=1
        )
    )
    assert (stats["users"], stats["items"], stats["interactions"]) == (3, 4, 12)
    assert stats["time_range"] == [1588000000000, 1588000003000]
    test = {r["user_id"]: r for r in lines(out / "test.jsonl")}
    assert test["AG1"] == {"user_id": "AG1", "history": ["P2", "P3", "P4"], "target": "P1"}
    items = {r["item_id"]: r for r in read_jsonl(out / "items.jsonl")}
    assert items["P1"]["text"] == "Product P1. Brand: Shop"
    assert items["P1"]["store"] == "Shop" and items["P1"]["features"] == ["small"]


def test_generic_tsv_with_named_columns(tmp_path):
    inter = write_lines(
        tmp_path / "events.tsv",
        [
            "uid\tmovie\twhen\tscore",
            "a\t10\t3\t1",
            "a\t11\t1\t1",
            "a\t12\t2\t1",
            "b\t10\t1.5\t1",
            "b\t12\t9\t1",
            "b\t13\t4\t1",
            "b\t11\t4\t1",
        ],
    )
    items = write_lines(
        tmp_path / "movies.csv",
        ["movie,name,genre", '10,"Heat, 1995",Crime', "11,Up,Animation", "12,Alien,Sci-Fi", "13,Ran,"],
    )
    out = tmp_path / "gen"
    stats = prepare(
        PrepareConfig(
            dataset="csv",
            interactions=str(inter),
            items=str(items),
            user_col="uid",
            item_col="movie",
            time_col="when",
            item_id_col="movie",
            title_col="name",
            out=str(out),
        )
    )
    assert (stats["users"], stats["items"], stats["interactions"]) == (2, 4, 7)
    got = splits(out)
    assert got["test"] == [
        {"user_id": "a", "history": ["11", "12"], "target": "10"},
        {"user_id": "b", "history": ["10", "13", "11"], "target": "12"},
    ]
    assert got["train"] == [{"user_id": "b", "history": ["10"], "target": "13"}]
    items_out = {r["item_id"]: r for r in read_jsonl(out / "items.jsonl")}
    assert items_out["10"] == {
        "item_id": "10",
        "title": "Heat, 1995",
        "text": "Heat, 1995. genre: Crime",
        "genre": "Crime",
    }
    assert items_out["13"]["text"] == "Ran"


def test_generic_jsonl_interactions(tmp_path):
    inter = write_lines(
        tmp_path / "log.jsonl",
        [
            json.dumps({"user_id": u, "item_id": i, "timestamp": t})
            for u, i, t in [(1, "x", 5), (1, "y", 6), (1, "z", 7), (1, "x", 8)]
        ],
    )
    items = write_lines(tmp_path / "items.jsonl", [json.dumps({"item_id": i, "title": i.upper()}) for i in "xyz"])
    out = tmp_path / "j"
    stats = prepare(PrepareConfig(dataset="csv", interactions=str(inter), items=str(items), out=str(out)))
    assert stats["removed"]["duplicate_interactions"] == 1  # the second "x" of user 1
    assert lines(out / "test.jsonl") == [{"user_id": "1", "history": ["x", "y"], "target": "z"}]
    no_dedup = tmp_path / "nd"
    prepare(PrepareConfig(dataset="csv", interactions=str(inter), items=str(items), out=str(no_dedup), dedup=False))
    assert lines(no_dedup / "test.jsonl") == [{"user_id": "1", "history": ["x", "y", "z"], "target": "x"}]


def test_iso_8601_timestamps_order_a_log_as_unix_seconds_do(tmp_path):
    times = ["2014-07-01", "2014-07-01T12:30:00Z", "2014-07-01T14:00:00+02:00", "2014-07-02T00:00:00.5"]
    # as unix seconds: 1404172800, 1404217800, 1404216000 (12:00 UTC), 1404259200.5
    inter = write_lines(
        tmp_path / "log.csv", ["user_id,item_id,timestamp", *(f"u,{i},{t}" for i, t in zip("abcd", times))]
    )
    items = write_lines(tmp_path / "items.csv", ["item_id,title", *(f"{i},{i.upper()}" for i in "abcd")])
    prepare(PrepareConfig(dataset="csv", interactions=str(inter), items=str(items), out=str(tmp_path / "iso")))
    assert lines(tmp_path / "iso" / "test.jsonl") == [{"user_id": "u", "history": ["a", "c", "b"], "target": "d"}]


def test_amazon_category_download_by_name_checks_the_gzip_and_caches(tmp_path, monkeypatch):
    """--category Beauty --amazon_version 2018 --download fetches All_Beauty's 5-core reviews and metadata
    from the release's layout (here a file:// mirror); a cut-short file is refused, named and not kept."""
    mirror = tmp_path / "mirror"
    reviews = amazon_2018_reviews(tmp_path)
    (mirror / "categoryFilesSmall").mkdir(parents=True)
    (mirror / "metaFiles2").mkdir()
    meta = [json.dumps({"asin": a, "title": f"Item {a}"}) for a in "ABCDEF"]
    write_lines(mirror / "metaFiles2" / "meta_All_Beauty.json.gz", meta, compress=True)
    whole = reviews.read_bytes()
    (mirror / "categoryFilesSmall" / "All_Beauty_5.json.gz").write_bytes(whole[: len(whole) // 2])
    monkeypatch.setenv("GREC_AMAZON_URL", mirror.as_uri())
    monkeypatch.setenv("GREC_CACHE", str(tmp_path / "cache"))
    flags = dict(dataset="amazon", category="Beauty", amazon_version=2018, download=True)
    with pytest.raises(GrecError, match=r"All_Beauty_5.json.gz: the download is damaged \("):
        prepare(PrepareConfig(**flags, out=str(tmp_path / "bad")))
    assert not list((tmp_path / "cache" / "amazon" / "2018").iterdir())
    (mirror / "categoryFilesSmall" / "All_Beauty_5.json.gz").write_bytes(whole)
    stats = prepare(PrepareConfig(**flags, out=str(tmp_path / "beauty")))
    assert (stats["users"], stats["items"], stats["interactions"]) == (5, 5, 25)
    assert (tmp_path / "cache" / "amazon" / "2018" / "meta_All_Beauty.json.gz").is_file()
    with pytest.raises(
        GrecError, match="--category Industrial: not in the Amazon 2014 release; use --amazon_version 2018"
    ):
        PrepareConfig(
            dataset="amazon", category="Industrial", amazon_version="2014", download=True, out=str(tmp_path / "x")
        )
    with pytest.raises(GrecError, match="--category with --dataset amazon: add --download"):
        PrepareConfig(dataset="amazon", category="Beauty", out=str(tmp_path / "x"))
