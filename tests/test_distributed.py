"""grec.base.distributed.barrier really waits under the CPU two-process launcher CI uses."""

import os
import subprocess
import sys
from pathlib import Path

from helpers import free_port

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
    launcher = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(root / "configs" / "accelerate" / "cpu_2proc.yaml"),
        "--main_process_port",
        str(free_port()),
    ]
    result = subprocess.run(
        [*launcher, str(script), str(tmp_path / "marker")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=root,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "MARKER True" in result.stdout
