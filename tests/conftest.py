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
