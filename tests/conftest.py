import pytest

from grec.cli import main


@pytest.fixture
def grec_cli(capsys):
    """Run ``grec ARGS...`` in-process; return (exit status, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.fixture(scope="session")
def ml100k(tmp_path_factory):
    """Real MovieLens-100K prepared with the default settings."""
    from grec.prepare import PrepareConfig, prepare

    out = tmp_path_factory.mktemp("prep") / "ml-100k"
    prepare(PrepareConfig(dataset="ml-100k", out=str(out)))
    return out


@pytest.fixture(scope="session")
def ml100k_sid(ml100k, tmp_path_factory):
    """Semantic IDs of ML-100K: MiniLM embeddings, RQ-KMeans 3 x 256, dedup level (the defaults)."""
    from grec.index import IndexConfig, build_index

    out = tmp_path_factory.mktemp("sid") / "rqkmeans"
    build_index(IndexConfig(data=str(ml100k), out=str(out)))
    return out
