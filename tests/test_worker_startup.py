"""Start-up cost of a GPAW task: every MPI rank of every DFT task starts Python and imports the worker.

The worker imports GPAW, ASE and numpy only; the launch is plain `python -m hetero.engines.gpaw_worker`
with GPAW_MPI_BACKEND (not `gpaw python`, which imports every GPAW module first). No DFT runs here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

HEAVY = ("pymatgen", "pydantic", "monty", "jobflow", "yaml", "hetero.engines.base", "hetero.engines.settings",
         "hetero.schemas", "hetero.engines.gpaw")


def test_worker_imports_no_pymatgen_pydantic_or_engine_classes():
    code = ("import sys, hetero.engines.gpaw_worker\n"
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    env = dict(os.environ, GPAW_MPI_BACKEND="serial", OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_engine_names_still_import_from_the_package():
    from hetero.engines import Capability, EngineRunError, ModelFacts, SettingsError, get_engine
    from hetero.engines.base import Capability as BaseCapability

    assert Capability is BaseCapability and issubclass(EngineRunError, RuntimeError)
    assert ModelFacts and get_engine("gpaw", "demo").name == "gpaw"
    with pytest.raises(SettingsError, match="unknown engine"):
        get_engine("abinit")
    import hetero.engines

    with pytest.raises(AttributeError):
        hetero.engines.NoSuchName  # noqa: B018


@pytest.mark.parametrize("cores, launch, backend", [(2, None, "cgpaw"), (1, None, "serial"),
                                                    (2, "srun -n 2 gpaw python", None)])
def test_launch_line(tmp_path, monkeypatch, cores, launch, backend):
    """Local runs: plain python (mpiexec for >1 core) with GPAW's MPI backend set; a cluster's own launch
    line is used as given and the backend left to it."""
    import hetero.engines.gpaw as g

    seen = {}

    def fake_run(cmd, env, **kw):
        seen.update(cmd=cmd, env=env)
        (tmp_path / "result.json").write_text(json.dumps({"wall_s": 1.0, "energy_eV": -1.0}))
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(g.subprocess, "run", fake_run)
    monkeypatch.delenv("GPAW_MPI_BACKEND", raising=False)
    for var in ("PMIX_RANK", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "I_MPI_MPIRUN"):
        monkeypatch.delenv(var, raising=False)
    if launch:
        monkeypatch.setenv("HETERO_GPAW_LAUNCH", launch)
    else:
        monkeypatch.delenv("HETERO_GPAW_LAUNCH", raising=False)
    # the one-shot launch (the demo preset's persistent worker is tested in test_gpaw_server.py)
    one_shot = {"gpaw": {"persistent_worker": False}}
    result = g.GpawEngine(preset="demo", cores=cores, overrides=one_shot)._launch(tmp_path)
    cmd = seen["cmd"]
    assert cmd[-2:] == ["-m", "hetero.engines.gpaw_worker"] and result["launch_wall_s"] >= 0
    if launch:
        assert cmd[:5] == ["srun", "-n", "2", "gpaw", "python"]
        assert "GPAW_MPI_BACKEND" not in seen["env"]
    else:
        assert cmd[-3] == sys.executable and "gpaw" not in [os.path.basename(c) for c in cmd]
        assert ("mpiexec" in os.path.basename(cmd[0])) == (cores > 1)
        assert seen["env"]["GPAW_MPI_BACKEND"] == backend
