"""The data set registry's readers on small files in their published layouts, bad input, and ML-1M offline."""

import json

import pytest
from helpers import read_jsonl

from grec.base.errors import GrecError
from grec.prepare import PrepareConfig, log, prepare
from grec.prepare.datasets import DATASETS

USERS = 4  # each user rates the same 4 movies one second apart, in the order given


def ratings(users=USERS):
    return [(u, m, 5 - m % 2, 978300000 + 10 * u + k) for u in range(1, users + 1) for k, m in enumerate((1, 2, 3, 10))]


def write(path, text, encoding="utf-8", newline="\n"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.replace("\n", newline).encode(encoding))
    return path


def ml1m_folder(root):
    folder = root / "ml-1m"
    write(folder / "ratings.dat", "".join(f"{u}::{m}::{r}::{t}\n" for u, m, r, t in ratings()))
    movies = "1::Toy Story (1995)::Animation|Children's|Comedy\n2::Jumanji (1995)::Adventure\n"
    movies += "3::Grumpier Old Men (1995)::Comedy|Romance\n10::Cité des enfants perdus, La (1995)::Sci-Fi\n"
    write(folder / "movies.dat", movies, encoding="latin-1")
    return folder


def test_grouplens_dat_layout_ml1m_latin1_titles_and_ratings(tmp_path):
    stats = prepare(PrepareConfig(dataset="ml-1m", source=str(ml1m_folder(tmp_path)), out=str(tmp_path / "o")))
    assert (stats["users"], stats["items"], stats["interactions"]) == (USERS, 4, 16)
    items = {r["item_id"]: r for r in read_jsonl(tmp_path / "o" / "items.jsonl")}
    assert items["10"]["title"] == "Cité des enfants perdus, La (1995)"
    assert items["1"]["text"] == "Toy Story (1995). Genres: Animation, Children's, Comedy."
    test = read_jsonl(tmp_path / "o" / "test.jsonl")
    assert [(r["history"], r["target"]) for r in test][0] == (["1", "2", "3"], "10")
    only_liked = prepare(
        PrepareConfig(
            dataset="ml-1m",
            source=str(tmp_path / "ml-1m"),
            out=str(tmp_path / "p"),
            min_rating=5,
            split="temporal",
            min_user_inter=1,
        )
    )
    assert only_liked["removed"]["below_min_rating"] == 8  # movies 2 and 10 were rated 4


def test_grouplens_csv_layout_ml20m(tmp_path, monkeypatch):
    folder = tmp_path / "ml-20m"
    write(
        folder / "ratings.csv",
        "userId,movieId,rating,timestamp\n" + "".join(f"{u},{m},{r}.0,{t}\n" for u, m, r, t in ratings()),
    )
    write(
        folder / "movies.csv",
        'movieId,title,genres\n1,Toy Story (1995),Animation|Comedy\n2,"Jumanji, The (1995)",Adventure\n'
        "3,Heat (1995),(no genres listed)\n10,GoldenEye (1995),Action\n",
    )
    prepare(PrepareConfig(dataset="ml-20m", source=str(folder), out=str(tmp_path / "o")))
    items = {r["item_id"]: r for r in read_jsonl(tmp_path / "o" / "items.jsonl")}
    assert items["2"]["title"] == "Jumanji, The (1995)" and items["3"]["text"] == "Heat (1995)."
    # the whole-column (pyarrow) path and the row-by-row path that reports bad lines give the same files
    liked = dict(dataset="ml-20m", source=str(folder), min_rating=5, split="temporal", min_user_inter=1)
    fast = prepare(PrepareConfig(**liked, out=str(tmp_path / "fast")))
    monkeypatch.setattr(log, "read_columns", lambda *args: None)
    slow = prepare(PrepareConfig(**liked, out=str(tmp_path / "slow")))
    assert slow["removed"] == fast["removed"] and slow["removed"]["below_min_rating"] == 8
    for name in ("items.jsonl", "train.jsonl", "valid.jsonl", "test.jsonl"):
        assert (tmp_path / "slow" / name).read_text() == (tmp_path / "fast" / name).read_text()


def recbole_folder(root, header="user_id:token\titem_id:token\trating:float\ttimestamp:float"):
    folder = root / "books"
    rows = "".join(f"{u}\tb{m}\t{r}\t{t}\n" for u, m, r, t in ratings())
    write(folder / "books.inter", header + "\n" + rows, newline="\r\n")
    items = "item_id:token\tbook_title:token_seq\tauthor:token\tcategories:token_seq\n"
    items += "".join(f"b{m}\tBook {m}\tAuthor{m}\tfiction classic\n" for m in (1, 2, 3, 10))
    write(folder / "books.item", items, newline="\r\n")
    return folder


def test_recbole_atomic_files_with_crlf_and_a_named_title_field(tmp_path):
    folder = recbole_folder(tmp_path)
    cfg = PrepareConfig(dataset="recbole", source=str(folder), out=str(tmp_path / "o"), title_col="book_title")
    assert prepare(cfg)["interactions"] == 16
    item = read_jsonl(tmp_path / "o" / "items.jsonl")[0]
    assert item["title"] == "Book 1" and item["text"] == "Book 1. Author: Author1. Categories: fiction, classic."
    with pytest.raises(GrecError, match=r"books.item: no title field \(title or movie_title or item_name or name\)"):
        prepare(PrepareConfig(dataset="recbole", source=str(folder / "books.inter"), out=str(tmp_path / "p")))


@pytest.mark.parametrize(
    "dataset, setup, message",
    [
        (
            "ml-1m",
            lambda root: write(ml1m_folder(root) / "ratings.dat", "1\t1\t5\t978300000\n"),
            r"ratings.dat:1: expected 4 '::'-separated fields \(UserID::MovieID::Rating::Timestamp\), got 1",
        ),
        (
            "ml-1m",
            lambda root: write(ml1m_folder(root) / "ratings.dat", "1::1::5::978300000\n1::2::five::978300001\n"),
            r"ratings.dat:2: column 'Rating' must be a number",
        ),
        (
            "ml-20m",
            lambda root: write(root / "ml-1m" / "ratings.csv", "userId,movieId,timestamp\n1,1,978300000\n"),
            r"ratings.csv:\d+: .*'rating'",
        ),
        (
            "ml-20m",
            lambda root: write(
                root / "ml-1m" / "ratings.csv", "userId,movieId,rating,timestamp\n1,1,5,97830\xe9\n", "latin-1"
            ),
            r"ratings.csv:2: not utf-8 text at byte",
        ),
        (
            "recbole",
            lambda root: write(recbole_folder(root) / "books.inter", "user_id:token,item_id:token,timestamp:float\n"),
            r"books.inter:1: no 'item_id' field in the header \(user_id:token,item_id:token,timestamp:float\) "
            r"\(a RecBole header is tab-separated\)",
        ),
        (
            "recbole",
            lambda root: write(
                recbole_folder(root) / "books.inter", "user_id:token\titem_id:token\ttimestamp:float\n1\tb1\n"
            ),
            r"books.inter:2: 2 tab-separated fields, the header has 3",
        ),
    ],
)
def test_bad_files_name_the_file_line_and_fix(tmp_path, dataset, setup, message):
    setup(tmp_path)
    source = tmp_path / ("books" if dataset == "recbole" else "ml-1m")
    with pytest.raises(GrecError, match=message):
        prepare(PrepareConfig(dataset=dataset, source=str(source), out=str(tmp_path / "o")))
    assert not (tmp_path / "o").exists()  # nothing half-written


def test_registry_checks_flags_and_help_names_every_data_set_and_its_files(tmp_path, grec_cli):
    with pytest.raises(GrecError, match=r"--source: required with --dataset ml-25m \(--source: the unpacked"):
        PrepareConfig(dataset="ml-25m", out=str(tmp_path / "o"))
    with pytest.raises(GrecError, match="--reviews: not read by --dataset ml-1m .only by amazon."):
        PrepareConfig(dataset="ml-1m", reviews=str(tmp_path), out=str(tmp_path / "o"))
    with pytest.raises(GrecError, match="unknown data set 'ml-2m'; choose one of ml-100k, ml-1m, ml-10m"):
        PrepareConfig(dataset="ml-2m", out=str(tmp_path / "o"))
    code, stdout, _ = grec_cli("prepare", "--help")
    assert code == 0
    for name in DATASETS:
        assert f"{name}: " in stdout
    assert "ratings.dat UserID::MovieID::Rating::Timestamp" in stdout and "<name>.inter" in stdout


@pytest.mark.slow
def test_ml1m_offline_matches_the_published_counts(tmp_path):
    """1,000,209 ratings of 6,040 users on 3,706 movies (GroupLens's README), from the packaged copy.
    The compact train format: the same counts without writing 1.2 GB of windows."""
    stats = prepare(PrepareConfig(dataset="ml-1m", out=str(tmp_path / "ml-1m"), train_format="sequences"))
    assert stats["read"]["interactions"] == stats["interactions"] == 1_000_209
    assert stats["read"]["users"] == stats["users"] == 6_040 and stats["items"] == 3_706
    assert stats["examples"]["test"] == 6_040 and stats["examples"]["train_lines"] == 6_040
    first = json.loads((tmp_path / "ml-1m" / "items.jsonl").open().readline())
    assert first["title"] == first["item_id"] and first["text"].startswith(first["title"] + ". Genre: ")


def prepare_reviews(dataset, reviews, meta, out, **flags):
    return prepare(PrepareConfig(dataset=dataset, reviews=str(reviews), meta=str(meta), out=str(out), **flags))


def test_yelp_reviews_and_businesses(tmp_path):
    reviews = [
        {
            "review_id": f"r{k}",
            "user_id": f"U{u}",
            "business_id": f"B{b}",
            "stars": 5.0 - b % 2,
            "useful": 0,
            "text": "Great.",
            "date": f"2018-07-0{u + 1} 22:0{b}:11",
        }
        for k, (u, b) in enumerate((u, b) for u in range(5) for b in range(5))
    ]
    write(tmp_path / "review.json", "".join(json.dumps(r) + "\n" for r in reviews))
    businesses = [
        {
            "business_id": f"B{b}",
            "name": f"Cafe {b}",
            "city": "Tucson",
            "state": "AZ",
            "stars": 4.0,
            "categories": "Coffee & Tea, Breakfast & Brunch" if b else None,
            "attributes": {"WiFi": "u'free'"},
        }
        for b in range(5)
    ]
    write(tmp_path / "business.json", "".join(json.dumps(b) + "\n" for b in businesses))
    stats = prepare_reviews("yelp", tmp_path / "review.json", tmp_path / "business.json", tmp_path / "o", min_rating=4)
    assert (stats["users"], stats["items"], stats["interactions"]) == (5, 5, 25)
    items = {r["item_id"]: r for r in read_jsonl(tmp_path / "o" / "items.jsonl")}
    assert items["B1"]["text"] == "Cafe 1. Categories: Coffee & Tea, Breakfast & Brunch. Location: Tucson, AZ."
    assert items["B0"]["text"] == "Cafe 0. Location: Tucson, AZ."
    assert [r["target"] for r in read_jsonl(tmp_path / "o" / "test.jsonl")] == ["B4"] * 5
    write(tmp_path / "review.json", json.dumps({"user_id": "U1", "business_id": "B1", "stars": 5}) + "\n")
    with pytest.raises(GrecError, match=r"review.json:1: missing field 'date' in a Yelp review record"):
        prepare_reviews("yelp", tmp_path / "review.json", tmp_path / "business.json", tmp_path / "p")


def test_steam_python_literal_lines_gzipped(tmp_path):
    import gzip

    lines = [
        repr(
            {
                "username": f"gamer {u}",
                "hours": 1.5,
                "products": 10,
                "product_id": str(700 + g),
                "page_order": 0,
                "date": f"2017-10-{10 + u + g:02d}",
                "text": "fun",
                "early_access": False,
            }
        )
        for u in range(5)
        for g in range(5)
    ]
    with gzip.open(tmp_path / "steam_reviews.json.gz", "wt") as handle:
        handle.write("\n".join(lines) + "\n")
    games = [
        repr(
            {
                "publisher": "Kotoshiro",
                "genres": ["Action", "Indie"],
                "app_name": f"Game {g}",
                "title": f"Game {g}",
                "id": str(700 + g),
                "developer": "Kotoshiro",
                "price": 4.99,
                "tags": ["Action"],
                "early_access": False,
            }
        )
        for g in range(5)
    ]
    games.append(repr({"app_name": "No id", "title": "No id"}))  # the dump has a few of these
    write(tmp_path / "steam_games.json", "\n".join(games) + "\n")
    stats = prepare_reviews("steam", tmp_path / "steam_reviews.json.gz", tmp_path / "steam_games.json", tmp_path / "o")
    assert (stats["users"], stats["items"]) == (5, 5)
    items = {r["item_id"]: r for r in read_jsonl(tmp_path / "o" / "items.jsonl")}
    assert items["700"]["text"] == "Game 0. Genres: Action, Indie. Tags: Action. Developer: Kotoshiro."
    test = {r["user_id"]: r for r in read_jsonl(tmp_path / "o" / "test.jsonl")}
    assert test["gamer 0"]["history"] == ["700", "701", "702", "703"] and test["gamer 0"]["target"] == "704"
    write(tmp_path / "steam_games.json", "{'id': '700', 'title': 'Game'\n")
    with pytest.raises(GrecError, match=r"steam_games.json:1: not valid JSON"):
        prepare_reviews("steam", tmp_path / "steam_reviews.json.gz", tmp_path / "steam_games.json", tmp_path / "p")


def test_download_checks_the_published_md5_before_unpacking(tmp_path, monkeypatch):
    import hashlib
    import zipfile

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    source = ml1m_folder(tmp_path / "files")
    with zipfile.ZipFile(mirror / "ml-1m.zip", "w") as zipped:
        for name in ("ratings.dat", "movies.dat"):
            zipped.write(source / name, f"ml-1m/{name}")
    digest = hashlib.md5((mirror / "ml-1m.zip").read_bytes()).hexdigest()
    (mirror / "ml-1m.zip.md5").write_text(f"MD5 (ml-1m.zip) = {'0' * 32}\n")
    monkeypatch.setenv("GREC_GROUPLENS_URL", mirror.as_uri())
    monkeypatch.setenv("GREC_CACHE", str(tmp_path / "cache"))
    with pytest.raises(GrecError, match=f"ml-1m.zip: its md5 {digest} is not the published 0{{32}}"):
        prepare(PrepareConfig(dataset="ml-1m", download=True, out=str(tmp_path / "bad")))
    assert not (tmp_path / "cache" / "grouplens" / "ml-1m").exists()
    (mirror / "ml-1m.zip.md5").write_text(f"MD5 (ml-1m.zip) = {digest}\n")
    stats = prepare(PrepareConfig(dataset="ml-1m", download=True, out=str(tmp_path / "o")))
    assert (
        stats["interactions"] == 16 and (tmp_path / "cache" / "grouplens" / "ml-1m" / "ml-1m" / "ratings.dat").is_file()
    )
    with pytest.raises(GrecError, match="--download: not available for --dataset recbole"):
        PrepareConfig(dataset="recbole", download=True, out=str(tmp_path / "x"))
