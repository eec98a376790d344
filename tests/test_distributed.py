"""grec.base.distributed.barrier really waits under the CPU two-process launcher CI uses."""

import os
import subprocess
from pathlib import Path

from helpers import two_process_launcher

SCRIPT = """
import sys, time
from pathlib import Path
from grec.base.distributed import barrier, rank, release_processes
marker = Path(sys.argv[1])
if rank() == 1:
    time.sleep(3)
    marker.write_text("rank 1 was here")
barrier()
if rank() == 0:
    print("MARKER", marker.exists(), flush=True)
release_processes()
"""


def test_barrier_waits_for_the_slow_process(tmp_path):
    root = Path(__file__).resolve().parent.parent
    script = tmp_path / "wait.py"
    script.write_text(SCRIPT)
    result = subprocess.run(
        [*two_process_launcher(script), str(tmp_path / "marker")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=root,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "MARKER True" in result.stdout
